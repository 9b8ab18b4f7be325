"""The models domain's declaration: its kinds, its controller, what it runs after.

Pydantic-free data, read by controllers.DEFAULT_DOMAINS (and so by the
engine's order, the loader's kind table and the CLI) and by
ModelsController itself (domain, kinds).
Models live on storage's mounts and may need packages (a model server);
they observe again when either changed something.
"""

from __future__ import annotations

from specs.domains import Domain

DOMAIN = Domain(
    name="models",
    kinds={"Models": "specs.models:Models"},
    controller="controllers.models:CONTROLLER",
    after=frozenset({"storage", "packages"}),
    observes_changes_of=frozenset({"storage", "packages"}),
)
