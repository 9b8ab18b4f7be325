"""The firewall domain's declaration: its kinds, its controller, what it runs after.

Pydantic-free data, read by controllers.DEFAULT_DOMAINS (and so by the
engine's order, the loader's kind table and the CLI) and by
FirewallController itself (domain, kinds).
The firewall runs after the network (rules name interfaces); it is not
observed again when the network changed something.
"""

from __future__ import annotations

from specs.domains import Domain

DOMAIN = Domain(
    name="firewall",
    kinds={"Firewall": "specs.firewall:Firewall"},
    controller="controllers.firewall:CONTROLLER",
    after=frozenset({"network"}),
)
