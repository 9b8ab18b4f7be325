"""The network controller: observe, diff, plan (rules), effects (simulation).

Modules: state (the typed actual state and object keys), observe (one
net.state read), desired (the declared objects), diff and diff_links,
plan, plan_addresses and steps (the rules planner), effects, effects_ip and
world (the effect model), export, controller (the wiring).
"""

from controllers.network.controller import NetworkController

CONTROLLER = NetworkController()

__all__ = ["CONTROLLER", "NetworkController"]
