"""The one builder of a controller's Diff: collect changes and no-op reasons, hand them out.

Every domain's diff writes into a `Collector`: `change(...)` makes a Change
with its stable id (Change.make_id over resource, object, field), `noop(...)`
records why a declared item needs nothing. `result()` gives the Diff, in one
of two orders, so plans made from the same inputs are byte-identical:
- sorted (the default): changes by resource, object, field; no-ops by
  resource, object, reason (storage, models, packages);
- as written (`Collector(sort=False)`): the order the diff wrote them in,
  when that order means something (network: links to recreate first, then
  each declared item in declaration order, then removals; firewall: declared
  tables in resource and declaration order, then removals).
Used by every controller's diff (controllers/<domain>/diff*.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.sdk.controller import Diff
from reconciler.sdk.plan import Change, NoOp, Op


@dataclass
class Collector:
    sort: bool = True  # False: result() keeps the order things were written in
    changes: list[Change] = field(default_factory=list)
    noops: list[NoOp] = field(default_factory=list)

    def change(self, resource: str, obj: str, op: Op, field_: str = "", **kw: Any) -> Change:
        """Record (and return) a change of `field_` of `obj` (whole object when empty)."""
        made = Change(
            id=Change.make_id(resource, obj, field_),
            resource=resource,
            object=obj,
            op=op,
            field=field_,
            **kw,
        )
        self.changes.append(made)
        return made

    def noop(self, resource: str, obj: str, reason: str) -> None:
        self.noops.append(NoOp(resource=resource, object=obj, reason=reason))

    def result(self) -> Diff:
        if not self.sort:
            return Diff(tuple(self.changes), tuple(self.noops))
        return Diff(
            tuple(sorted(self.changes, key=lambda c: (c.resource, c.object, c.field))),
            tuple(sorted(self.noops, key=lambda n: (n.resource, n.object, n.reason))),
        )
