"""The firewall controller: observe, diff, plan (rules), effects (simulation).

nftables tables declared by Firewall resources are owned whole and replaced
atomically (one nft transaction per reconcile); see controller.py for the
map of the modules.
"""

from controllers.firewall.controller import FirewallController

CONTROLLER = FirewallController()

__all__ = ["CONTROLLER", "FirewallController"]
