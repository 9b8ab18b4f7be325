"""The firewall controller: observe, diff, plan (rules), effects (simulation).

nftables tables declared by Firewall resources are owned whole and replaced
atomically (one nft transaction per reconcile); see controller.py for the
map of the modules.

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed: DOMAIN.controller names it) and `FirewallController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controllers.firewall.domain import DOMAIN

if TYPE_CHECKING:
    from controllers.firewall.controller import FirewallController

    CONTROLLER: FirewallController


def __getattr__(name: str) -> Any:
    if name not in ("CONTROLLER", "FirewallController"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from controllers.firewall.controller import FirewallController

    if name == "CONTROLLER":
        globals()["CONTROLLER"] = FirewallController()  # made once: later lookups find the global
        return globals()["CONTROLLER"]
    return FirewallController


__all__ = ["CONTROLLER", "DOMAIN", "FirewallController"]
