"""What the daemon wants the target to hold: its sources' set plus what the CLI applied.

reconciler.daemon.core.Daemon keeps one `DesiredSet`. Two kinds of resources
make the target's desired set:

- **source resources**, declared by the spec files of the daemon's specs
  directories. The directory is the truth for them: a file deleted is a
  resource pruned.
- **extras**, applied through the daemon's API (`aios apply -f X` while the
  daemon runs). They stay until a later `aios apply --prune` or `aios rollback`
  drops them.

A resource a source declares cannot be applied differently through the API:
the apply is refused naming both places (`conflicts`). Which resources came
from a source is kept in the store (Store.set_source_resources), so a daemon
that restarts after a spec file was deleted while it was down prunes that
resource instead of mistaking it for one the CLI applied (`restore`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler.engine.reconcile import Engine, generation_documents, load_document
from specs.base import Resource
from specs.specset import Origin, SpecSet, compute_digest


def same_spec(a: Resource, b: Resource) -> bool:
    return compute_digest([a]) == compute_digest([b])  # type: ignore[list-item]


@dataclass
class DesiredSet:
    """The source set (last good load) and the extras, for one engine's target."""

    engine: Engine
    source: SpecSet | None = None  # None until the first good load
    extras: dict[str, Resource] = field(default_factory=dict)
    extra_origins: dict[str, Origin] = field(default_factory=dict)

    def restore(self) -> None:
        """At start-up: extras are the current generation's resources no source declared.

        Called after the first load of the sources (good or not): keys the store
        says a source declared are not extras even when no source declares them
        now (their file went away while no daemon ran: they are pruned).
        """
        store, target = self.engine.store, self.engine.target.name
        owned = store.source_resources(target)
        declared = set(self.source.keys()) if self.source is not None else set()
        before = generation_documents(store.current_generation(target))
        for key, doc in before.items():
            if key in owned or key in declared:
                continue
            self.extras[key] = load_document(doc, self.engine.domains.kinds)
            self.extra_origins[key] = Origin("applied through the daemon's API")

    def set_source(self, specset: SpecSet) -> list[str]:
        """Take a new good load; extras the sources now declare become theirs.

        Returns the keys taken over (the daemon reports them)."""
        self.source = specset
        taken = [k for k in self.extras if k in specset]
        for key in taken:
            self.extras.pop(key)
            self.extra_origins.pop(key, None)
        self.engine.store.set_source_resources(
            self.engine.target.name, {r.key: str(specset.origin(r.key)) for r in specset.resources}
        )
        return taken

    def combined(self, extras: Mapping[str, Resource] | None = None) -> SpecSet:
        """Source resources plus `extras` (default: the current ones) as one set."""
        chosen = self.extras if extras is None else extras
        source = self.source
        resources: dict[str, Resource] = dict(chosen)
        origins: dict[str, Origin] = {k: self.extra_origins.get(k, Origin("")) for k in chosen}
        if source is not None:
            for resource in source.resources:
                resources[resource.key] = resource
                origins[resource.key] = source.origin(resource.key)
        return SpecSet.from_resources(tuple(resources.values()), origins=origins)

    def conflicts(self, incoming: SpecSet) -> list[str]:
        """Incoming resources a source declares differently: one line each, both places."""
        source = self.source
        if source is None:
            return []
        lines = []
        for resource in incoming.resources:
            declared = source.get(resource.key)
            if declared is not None and not same_spec(declared, resource):
                lines.append(
                    f"{incoming.origin(resource.key)}: {resource.key} is declared differently "
                    f"by the daemon's source at {source.origin(resource.key)}; edit that file "
                    "instead (the daemon would undo this apply)"
                )
        return lines

    def with_applied(
        self, incoming: SpecSet, *, prune: bool, replace: bool
    ) -> tuple[dict[str, Resource], dict[str, Origin]]:
        """The extras after an API apply of `incoming` (not yet taken: see `commit`).

        Resources a source declares the same way are not extras. `prune` and
        `replace` drop the extras `incoming` does not hold (source resources
        are never dropped through the API: their files hold them).
        """
        source = self.source
        extras = {} if (prune or replace) else dict(self.extras)
        origins = {} if (prune or replace) else dict(self.extra_origins)
        for resource in incoming.resources:
            if source is not None and resource.key in source:
                continue
            extras[resource.key] = resource
            origins[resource.key] = incoming.origin(resource.key)
        return extras, origins

    def commit(self, extras: dict[str, Resource], origins: dict[str, Origin]) -> None:
        self.extras = extras
        self.extra_origins = origins
