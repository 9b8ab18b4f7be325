"""SpecSet: one immutable, validated set of resources with a content digest.

The loader (specs.loader) returns one; the engine reconciles one generation
per SpecSet, stores its digest and resources, and rebuilds it with
`SpecSet.from_resources` when it reloads a generation. Resources are sorted
by (kind, name). The digest is the sha256 of a canonical JSON of all
resources (dumped by YAML name, defaults included, keys sorted), so it does
not change with file layout, file order, comments or formatting, nor with
spellings that validate to the same value (`10.0.0.1/255.255.255.0` and
`10.0.0.1/24`). A SpecSet also remembers where each resource came from:
`origin(key)` and `locate(key, loc)` give file:line:col for messages.

Imports no pydantic models at run time (they are only type-checked here), so
importing specs.loader stays cheap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, cast

from specs.positions import Entry, locate, walk

if TYPE_CHECKING:
    from typing import TypeAlias

    from specs.base import Resource
    from specs.firewall import Firewall
    from specs.models import Models
    from specs.network import Network
    from specs.packages import Packages
    from specs.storage import Storage

    # The spec language's kind models (specs.kinds.DEFAULT_KINDS), for annotations only.
    AnyResource: TypeAlias = Network | Firewall | Packages | Storage | Models


@dataclass(frozen=True, slots=True)
class Origin:
    """Where something is in the spec files (1-based; line 0: position unknown)."""

    path: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.path or "<unknown>"
        return f"{self.path}:{self.line}:{self.col}"


def compute_digest(resources: Iterable[AnyResource]) -> str:
    """sha256 hex of the canonical JSON of `resources` (in the order given)."""
    docs = [r.model_dump(mode="json", by_alias=True) for r in resources]
    text = json.dumps(docs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sort_key(resource: AnyResource) -> tuple[str, str]:
    return (resource.kind, resource.metadata.name)


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True, eq=False)
class SpecSet:
    """A validated, immutable set of resources. Build it with `from_resources`
    (or the loader), which sorts the resources and computes the digest."""

    resources: tuple[AnyResource, ...]
    digest: str
    _index: Mapping[str, AnyResource] = field(repr=False)
    _places: Mapping[str, tuple[str, Entry]] = field(repr=False)
    _origins: Mapping[str, Origin] = field(repr=False)

    @classmethod
    def from_resources(
        cls,
        resources: Iterable[Resource],
        *,
        origins: Mapping[str, Origin] | None = None,
        places: Mapping[str, tuple[str, Entry]] | None = None,
    ) -> SpecSet:
        """A SpecSet of already-validated resources (keys must be unique).

        Resources are instances of the kind models (specs.kinds.KindTable.model).

        `origins` (Kind/name -> Origin) says where each came from, if known;
        `places` (Kind/name -> (path, position tree)) is what the loader
        passes so that `locate` can find any field.
        """
        ordered = tuple(sorted(cast("Iterable[AnyResource]", resources), key=_sort_key))
        index = {r.key: r for r in ordered}
        if len(index) != len(ordered):
            keys = [r.key for r in ordered]
            dupes = sorted({key for key in keys if keys.count(key) > 1})
            raise ValueError(f"a SpecSet cannot hold a resource twice: {', '.join(dupes)}")
        places = dict(places or {})
        found = dict(origins or {})
        for key, (path, root) in places.items():
            found.setdefault(key, Origin(path, root[2], root[3]))
        return cls(
            resources=ordered,
            digest=compute_digest(ordered),
            _index=MappingProxyType(index),
            _places=MappingProxyType(places),
            _origins=MappingProxyType(found),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SpecSet) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __len__(self) -> int:
        return len(self.resources)

    def __iter__(self) -> Iterator[AnyResource]:
        return iter(self.resources)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def keys(self) -> tuple[str, ...]:
        """Kind/name of every resource, sorted by (kind, name)."""
        return tuple(self._index)

    def get(self, key: str) -> AnyResource | None:
        """The resource `Kind/name`, or None."""
        return self._index.get(key)

    def by_kind(self, kind: str) -> tuple[AnyResource, ...]:
        """Resources of one kind, sorted by name."""
        return tuple(r for r in self.resources if r.kind == kind)

    def origin(self, key: str) -> Origin:
        """Where resource `key` starts; KeyError if the set has no such resource."""
        if key not in self._index:
            raise KeyError(key)
        return self._origins.get(key, Origin(""))

    def locate(self, key: str, loc: Sequence[str | int]) -> Origin:
        """Where field `loc` of resource `key` is, e.g. ("spec", "links", 0, "mtu").

        Keys are YAML names (`dependsOn`); Python names (`depends_on`) work
        too. A field the document does not spell out (a default) is reported
        at the nearest enclosing mapping; without recorded positions, at the
        resource's origin.
        """
        origin = self.origin(key)
        if key not in self._places:
            return origin
        path, root = self._places[key]
        camel = tuple(_camel(p) if isinstance(p, str) else p for p in loc)
        best = camel if walk(root, camel)[2] > walk(root, loc)[2] else tuple(loc)
        line, col = locate(root, best)
        return Origin(path, line, col)
