"""The firewall controller: observe, diff, plan (rules), effects (simulation).

nftables tables declared by Firewall resources are owned whole and replaced
atomically (one nft transaction per reconcile); see controller.py for the
map of the modules.

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed: DOMAIN.controller names it) and `FirewallController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controllers.firewall.domain import DOMAIN
from reconciler.sdk.lazy import lazy_controller

if TYPE_CHECKING:
    from controllers.firewall.controller import FirewallController

    CONTROLLER: FirewallController

__getattr__ = lazy_controller(globals(), "controllers.firewall.controller:FirewallController")

__all__ = ["CONTROLLER", "DOMAIN", "FirewallController"]
