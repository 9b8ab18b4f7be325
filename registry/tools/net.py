"""Tools of the `net` namespace: catalogue entries now, handlers being written.

The ToolSpecs live in registry.netspecs (data the engine builds against);
each class here binds one spec to its handler.
"""

from __future__ import annotations

from registry import netspecs
from registry.tooling import JSON, Tool, ToolContext, ToolError, ToolSpec


class _Pending(Tool):
    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        raise ToolError(f"{self.spec.name} is not implemented yet")


def _pending(spec: ToolSpec) -> type[Tool]:
    return type(spec.name.replace(".", "_"), (_Pending,), {"spec": spec})


TOOLS: tuple[type[Tool], ...] = tuple(
    _pending(s)
    for s in (
        netspecs.NET_INTERFACES,
        netspecs.NET_STATE,
        *netspecs.WRITE_SPECS.values(),
        netspecs.NET_APPLY,
        netspecs.NET_PING,
        netspecs.NET_DNS,
        netspecs.NET_HTTP_GET,
        netspecs.NET_PORT_SCAN,
    )
)
