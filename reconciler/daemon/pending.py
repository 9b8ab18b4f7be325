"""Plans waiting for an operator: resources in `propose` mode.

reconciler.daemon.core.Daemon records here the plan a propose-mode domain
would run (planned with those resources approved) when a reconcile finds it
has changes; `aios plans` lists them, `aios approve ID` runs one (the daemon
plans again and refuses with exit 3 when the fresh plan differs: stale),
`aios reject ID` drops it. One pending plan per domain: a newer one replaces
the older (the older could no longer run as it was). The id is a digest of
the domain and the plan's steps, so the same proposal keeps its id across
reconciles (an event is emitted only for a new one).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from reconciler.daemon.ports import PendingPlan
from reconciler.sdk.plan import Plan


def plan_id(domain: str, plan: Plan) -> str:
    part = plan.domain(domain)
    steps = [s.model_dump(mode="json") for s in part.steps] if part is not None else []
    raw = json.dumps([domain, steps], sort_keys=True).encode()
    return hashlib.sha256(raw).hexdigest()[:12]


@dataclass
class PendingPlans:
    by_domain: dict[str, PendingPlan] = field(default_factory=dict)

    def offer(self, plan: PendingPlan) -> bool:
        """Record `plan` for its domain; True when it is new (not the one already there)."""
        old = self.by_domain.get(plan.domain)
        self.by_domain[plan.domain] = plan
        return old is None or old.id != plan.id

    def get(self, plan_id: str) -> PendingPlan | None:
        return next((p for p in self.by_domain.values() if p.id == plan_id), None)

    def drop(self, plan_id: str) -> PendingPlan | None:
        plan = self.get(plan_id)
        if plan is not None:
            self.by_domain.pop(plan.domain, None)
        return plan

    def drop_domain(self, domain: str) -> None:
        self.by_domain.pop(domain, None)

    def all(self) -> list[PendingPlan]:
        return sorted(self.by_domain.values(), key=lambda p: (p.created, p.id))
