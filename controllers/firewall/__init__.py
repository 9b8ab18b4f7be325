"""The firewall controller: observe, diff, plan (rules), effects (simulation).

nftables tables declared by Firewall resources are owned whole and replaced
atomically (one nft transaction per reconcile); see controller.py for the
map of the modules.

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed, via controllers.load_controller) and `FirewallController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controllers.firewall.domain import DOMAIN

if TYPE_CHECKING:
    from controllers.firewall.controller import FirewallController

    CONTROLLER: FirewallController


def __getattr__(name: str) -> Any:
    if name == "CONTROLLER":
        from controllers import load_controller

        return load_controller(DOMAIN)
    if name == "FirewallController":
        from controllers.firewall.controller import FirewallController

        return FirewallController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CONTROLLER", "DOMAIN", "FirewallController"]
