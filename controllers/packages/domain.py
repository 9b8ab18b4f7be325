"""The packages domain's declaration: its kinds, its controller, what it runs after.

Pydantic-free data, read by controllers.DEFAULT_DOMAINS (and so by the
engine's order, the loader's kind table and the CLI) and by
PackagesController itself (domain, kinds).
Packages run after storage (a mount may hold what they install) and observe
again when storage changed something.
"""

from __future__ import annotations

from specs.domains import Domain

DOMAIN = Domain(
    name="packages",
    kinds={"Packages": "specs.packages:Packages"},
    controller="controllers.packages:CONTROLLER",
    after=frozenset({"storage"}),
    observes_changes_of=frozenset({"storage"}),
)
