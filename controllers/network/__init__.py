"""The network controller: observe, diff, plan (rules), effects (simulation).

Modules: state (the typed actual state and object keys), observe (one
net.state read), desired (the declared objects), diff and diff_links,
plan, plan_addresses and steps (the rules planner), effects, effects_ip and
world (the effect model), export, controller (the wiring).

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed: DOMAIN.controller names it) and `NetworkController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controllers.network.domain import DOMAIN

if TYPE_CHECKING:
    from controllers.network.controller import NetworkController

    CONTROLLER: NetworkController


def __getattr__(name: str) -> Any:
    if name not in ("CONTROLLER", "NetworkController"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from controllers.network.controller import NetworkController

    if name == "CONTROLLER":
        globals()["CONTROLLER"] = NetworkController()  # made once: later lookups find the global
        return globals()["CONTROLLER"]
    return NetworkController


__all__ = ["CONTROLLER", "DOMAIN", "NetworkController"]
