"""Collects a diff's changes and no-op reasons, and hands them out sorted.

Used by controllers.storage.diff and controllers.storage.diff_paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.controller import Diff
from reconciler.plan import Change, NoOp


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
