"""Domain controllers, one package per domain, all of one shape.

`all_controllers()` instantiates them for the engine (the CLI wires them in;
the engine itself does not import controllers). A domain package that does
not export `CONTROLLER` yet (still being built) is skipped, so the others
can run; its kinds are then not reconciled.
"""

from __future__ import annotations

import importlib
from typing import Any

from reconciler.sdk.controller import Controller

DOMAIN_PACKAGES = {
    "storage": "controllers.storage",
    "packages": "controllers.packages",
    "models": "controllers.models",
    "network": "controllers.network",
    "firewall": "controllers.firewall",
}


def all_controllers(domains: tuple[str, ...] | None = None) -> dict[str, Controller[Any]]:
    """Domain -> controller instance, importing only the requested domains."""
    out: dict[str, Controller[Any]] = {}
    for domain, module in DOMAIN_PACKAGES.items():
        if domains is not None and domain not in domains:
            continue
        controller = getattr(importlib.import_module(module), "CONTROLLER", None)
        if controller is None:
            continue  # a domain under construction
        assert isinstance(controller, Controller)
        out[domain] = controller
    return out
