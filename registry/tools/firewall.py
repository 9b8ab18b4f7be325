"""Tools of the `firewall` namespace: catalogue entries now, handlers being written.

The ToolSpecs live in registry.fwschema (data the engine builds against);
each class here binds one spec to its handler.
"""

from __future__ import annotations

from registry import fwschema
from registry.tooling import JSON, Tool, ToolContext, ToolError, ToolSpec


class _Pending(Tool):
    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        raise ToolError(f"{self.spec.name} is not implemented yet")


def _pending(spec: ToolSpec) -> type[Tool]:
    return type(spec.name.replace(".", "_"), (_Pending,), {"spec": spec})


TOOLS: tuple[type[Tool], ...] = tuple(
    _pending(s)
    for s in (
        fwschema.FIREWALL_RULES,
        fwschema.FIREWALL_ADD_RULE,
        fwschema.FIREWALL_DELETE_RULE,
        fwschema.FIREWALL_RULESET,
        fwschema.FIREWALL_APPLY,
        fwschema.FIREWALL_CHECK,
        fwschema.FIREWALL_CANONICALIZE,
    )
)
