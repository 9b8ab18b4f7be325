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

from typing import TYPE_CHECKING

from controllers.network.domain import DOMAIN
from reconciler.sdk.lazy import lazy_controller

if TYPE_CHECKING:
    from controllers.network.controller import NetworkController

    CONTROLLER: NetworkController

__getattr__ = lazy_controller(globals(), "controllers.network.controller:NetworkController")

__all__ = ["CONTROLLER", "DOMAIN", "NetworkController"]
