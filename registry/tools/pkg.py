"""Tools of the `pkg` namespace: definitions in registry.tools.pkg_defs, handlers being written.

Until the handlers land, every tool is listed with its final ToolSpec and
answers "not implemented yet", so the engine can read the catalogue.
"""

from __future__ import annotations

from registry.tooling import JSON, Tool, ToolContext, ToolError, ToolSpec
from registry.tools.pkg_defs import ALL


def _pending(tool_spec: ToolSpec) -> type[Tool]:
    class Pending(Tool):
        spec = tool_spec

        async def run(self, ctx: ToolContext, args: JSON) -> JSON:
            raise ToolError(f"{tool_spec.name}: not implemented yet")

    Pending.__name__ = Pending.__qualname__ = "Pending_" + tool_spec.name.replace(".", "_")
    return Pending


TOOLS: tuple[type[Tool], ...] = tuple(_pending(s) for s in ALL)
