"""The tool catalogue: every built-in tool, by name, for the `full` profile.

Collects the TOOLS tuples of the modules in registry.tools. The engine's
pure layers and tests read `specs()` as the offline catalogue (names, JSON
Schemas, risk, flags); the server and pipeline instantiate handlers from
`tool_classes()`. Profiles (registry.profiles) derive their view from this.
"""

from __future__ import annotations

import importlib
from functools import cache

from registry.tooling import Tool, ToolSpec

TOOL_MODULES = (
    "registry.tools.net",
    "registry.tools.firewall",
    "registry.tools.pkg",
    "registry.tools.storage",
    "registry.tools.model",
    "registry.tools.fs",
    "registry.tools.meta",
)


@cache
def tool_classes() -> dict[str, type[Tool]]:
    """Every built-in tool class by tool name; duplicate names are a bug."""
    found: dict[str, type[Tool]] = {}
    for module_name in TOOL_MODULES:
        module = importlib.import_module(module_name)
        for cls in module.TOOLS:
            name = cls.spec.name
            if name in found:
                raise RuntimeError(f"tool {name} defined twice ({module_name})")
            found[name] = cls
    return dict(sorted(found.items()))


def specs() -> dict[str, ToolSpec]:
    """The catalogue as data: tool name -> ToolSpec."""
    return {name: cls.spec for name, cls in tool_classes().items()}
