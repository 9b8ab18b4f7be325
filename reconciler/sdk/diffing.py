"""A small builder for a controller's Diff: collect changes and no-op reasons, hand them out sorted.

Generic across domains (change ids from Change.make_id; changes sorted by
resource, object, field; no-ops by resource, object, reason) so that plans
made from the same inputs are byte-identical. Used by the storage and models
controllers' diffs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.sdk.controller import Diff
from reconciler.sdk.plan import Change, NoOp


@dataclass
class Collector:
    changes: list[Change] = field(default_factory=list)
    noops: list[NoOp] = field(default_factory=list)

    def change(self, resource: str, obj: str, op: str, field_: str = "", **kw: Any) -> None:
        self.changes.append(
            Change(
                id=Change.make_id(resource, obj, field_),
                resource=resource,
                object=obj,
                op=op,
                field=field_,
                **kw,
            )
        )

    def noop(self, resource: str, obj: str, reason: str) -> None:
        self.noops.append(NoOp(resource=resource, object=obj, reason=reason))

    def result(self) -> Diff:
        return Diff(
            tuple(sorted(self.changes, key=lambda c: (c.resource, c.object, c.field))),
            tuple(sorted(self.noops, key=lambda n: (n.resource, n.object, n.reason))),
        )
