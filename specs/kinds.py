"""The table of spec kinds: kind name -> the pydantic model that validates it.

A `KindTable` names each kind's model by import path ("specs.network:Network")
and imports a model only when asked (`model(kind, Resource)`), so the table
itself is pydantic-free and imports nothing from specs (specs.base imports
it): `aios validate`'s command module reads kind names from it without
importing any model, and a document of one kind imports only its kind's model.

`DEFAULT_KINDS` is the spec language's own table, in the order messages, the
JSON Schema and `aios schema` list the kinds. It is the one table specs keeps
by hand: specs sits below the controllers and cannot import their domain
declarations (controllers/<domain>/domain.py), from which every other table
derives (specs.domains.Domains). tests/unit/test_domains.py fails when this
table and the declarations disagree.

Used by specs.base (KINDS), specs.validation and specs.loader (the `kinds`
parameter: which model validates a document), specs.schema, specs.domains,
the engine (revalidating stored generations), reconciler.cli.validate and
reconciler.cli.warm.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TypeVar

M = TypeVar("M", bound=type)


class KindTable(Mapping[str, str]):
    """Kind -> "module:Class" of its Resource model, in listing order; immutable."""

    __slots__ = ("_models", "_paths")

    def __init__(self, paths: Mapping[str, str]) -> None:
        for kind, path in paths.items():
            module, _, attr = path.partition(":")
            if not (kind[:1].isupper() and kind.isalnum() and module and attr):
                raise ValueError(f"kind {kind!r}: model path {path!r} is not 'module:Class'")
        self._paths = dict(paths)
        self._models: dict[str, object] = {}

    def __getitem__(self, kind: str) -> str:
        return self._paths[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        return f"KindTable({self._paths!r})"

    @property
    def names(self) -> tuple[str, ...]:
        """The kind names in listing order."""
        return tuple(self._paths)

    def model(self, kind: str, base: M) -> M:
        """The model of `kind` (checked to subclass `base`, e.g. specs.base.Resource),
        imported on first use; KeyError for an unknown kind."""
        found = self._models.get(kind)
        if found is None:
            module, _, attr = self._paths[kind].partition(":")
            found = getattr(importlib.import_module(module), attr)
            self._models[kind] = found
        if not (isinstance(found, type) and issubclass(found, base)):
            raise TypeError(f"{self._paths[kind]} is not a {base.__name__}")
        return found  # type: ignore[return-value]  # checked just above

    def models(self, base: M) -> dict[str, M]:
        """Every kind's model (imports them all)."""
        return {kind: self.model(kind, base) for kind in self._paths}


DEFAULT_KINDS = KindTable(
    {
        "Network": "specs.network:Network",
        "Firewall": "specs.firewall:Firewall",
        "Packages": "specs.packages:Packages",
        "Storage": "specs.storage:Storage",
        "Models": "specs.models:Models",
    }
)

__all__ = ["DEFAULT_KINDS", "KindTable"]
