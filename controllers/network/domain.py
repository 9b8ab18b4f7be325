"""The network domain's declaration: its kinds, its controller, what it runs after.

Pydantic-free data, read by controllers.DEFAULT_DOMAINS (and so by the
engine's order, the loader's kind table and the CLI) and by
NetworkController itself (domain, kinds).
Network depends on no other domain.
"""

from __future__ import annotations

from specs.domains import Domain

DOMAIN = Domain(
    name="network",
    kinds={"Network": "specs.network:Network"},
    controller="controllers.network:CONTROLLER",
)
