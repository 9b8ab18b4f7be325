"""The built-in tool catalogue as data: every ToolSpec the registry serves, by name.

One module per tool namespace, each a list of constants made by
contract.tooldef.define and collected in its `ALL`: net (+ netschema, links:
the net value and link schemas), firewall, pkg, storage, model, fs, meta
(`registry.*`); parts holds the schema pieces and helpers they share; aios holds
aiOS's own definitions of its 26 tools (the registry's `aios` profile), which are not
part of `catalogue()`.
`catalogue()` is the whole of it, sorted by name, without importing the
registry (or pydantic, grpc, specs, reconciler, controllers, sandbox): the
engine's tests, benches and offline tools read definitions here, and the
registry's handlers carry these very objects (registry.handlers.index checks
that every handler's `spec` *is* the catalogue's, and that every tool here
has exactly one handler). Importing this package imports no domain module;
`catalogue()` imports them on first use, so `contract.catalogue.parts` stays
cheap for the controllers that only need a helper.
"""

from __future__ import annotations

from functools import cache

from contract.tooldef import ToolSpec


@cache
def _build() -> tuple[tuple[str, ToolSpec], ...]:
    from contract.catalogue import firewall, fs, meta, model, net, pkg, storage

    found: dict[str, ToolSpec] = {}
    for module in (net, firewall, pkg, storage, model, fs, meta):
        for spec in module.ALL:
            if spec.name in found:
                raise RuntimeError(f"tool {spec.name} defined twice ({module.__name__})")
            found[spec.name] = spec
    for spec in found.values():
        if spec.rollback_tool and spec.rollback_tool not in found:
            raise RuntimeError(f"tool {spec.name}: rollback tool {spec.rollback_tool} is unknown")
    return tuple(sorted(found.items()))


def catalogue() -> dict[str, ToolSpec]:
    """Every built-in tool's ToolSpec by name, sorted by name (a fresh dict per call)."""
    return dict(_build())
