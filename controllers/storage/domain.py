"""The storage domain's declaration: its kinds, its controller, what it runs after.

Pydantic-free data, read by controllers.DEFAULT_DOMAINS (and so by the
engine's order, the loader's kind table and the CLI) and by
StorageController itself (domain, kinds).
Storage runs first: packages and models may need its filesystems mounted.
"""

from __future__ import annotations

from specs.domains import Domain

DOMAIN = Domain(
    name="storage",
    kinds={"Storage": "specs.storage:Storage"},
    controller="controllers.storage:CONTROLLER",
)
