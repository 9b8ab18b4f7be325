"""The tool catalogue: every built-in tool, by name, for the `full` profile.

Collects the TOOLS tuples of the modules in registry.handlers. The engine's
pure layers and tests read `specs()` as the offline catalogue (names, JSON
Schemas, risk, flags); the server and pipeline instantiate handlers from
`tool_classes()`. Profiles (registry.server.profiles) derive their view from this.
"""

from __future__ import annotations

import importlib
from functools import cache

from contract.tooldef import ToolSpec
from registry.core.tool import Tool

TOOL_MODULES = (
    "registry.handlers.net",
    "registry.handlers.firewall",
    "registry.handlers.pkg",
    "registry.handlers.storage",
    "registry.handlers.model",
    "registry.handlers.fs",
    "registry.handlers.meta",
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
