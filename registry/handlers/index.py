"""Every built-in tool's handler class, by tool name, checked against the contract catalogue.

`tool_classes()` collects the TOOLS tuples of the handler modules of
registry.handlers and checks them against contract.catalogue (the tool
definitions as data): each handler's `spec` must be the very ToolSpec object
the catalogue has under that name (`is`, not `==`: a handler never carries a
copy or a definition of its own), no tool may have two handlers, and every
catalogue tool must have one. Called by registry.server.profiles (the served
tables), the tests and the benches that run handlers in-process. Whoever
needs tool *data* (names, schemas, risk, flags) reads contract.catalogue's
`catalogue()` instead and imports no registry module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

from contract.catalogue import catalogue
from contract.tooldef import ToolSpec
from registry.core.tool import Tool


def collect(
    modules: Iterable[tuple[str, Iterable[type[Tool]]]], definitions: Mapping[str, ToolSpec]
) -> dict[str, type[Tool]]:
    """Handler class per tool name from (module name, TOOLS) pairs, sorted by name.

    RuntimeError when a tool has two handlers, a handler's spec is not the
    definition of that name in `definitions`, or a definition has no handler.
    """
    found: dict[str, type[Tool]] = {}
    for module_name, tools in modules:
        for cls in tools:
            name = cls.spec.name
            if name in found:
                raise RuntimeError(f"tool {name} has two handlers ({module_name})")
            if definitions.get(name) is not cls.spec:
                raise RuntimeError(
                    f"handler {module_name}.{cls.__qualname__} of {name} does not carry the "
                    "contract catalogue's definition of it"
                )
            found[name] = cls
    missing = sorted(set(definitions) - set(found))
    if missing:
        raise RuntimeError(f"no handler for {', '.join(missing)}")
    return dict(sorted(found.items()))


@cache
def tool_classes() -> dict[str, type[Tool]]:
    """Every built-in tool class by tool name (see the module docstring)."""
    from registry.handlers import firewall, fs, meta, model, model_runtime, net, pkg, storage

    modules = (net, firewall, pkg, storage, model, model_runtime, fs, meta)
    return collect(((m.__name__, m.TOOLS) for m in modules), catalogue())
