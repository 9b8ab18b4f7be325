"""Plan one domain: observe once, diff, plan by rules, verify.

`plan_domain` is the read-only half of a reconcile. It makes registry reads
only (through ReadOnlyReader), never writes, and returns everything the apply
half needs: the observed state, the diff, the verified steps, the verdict,
and the `DomainPlan` that `aios plan` shows. Resources in `audit` or
`propose` mode are diffed but their changes are not planned. Used by
reconciler.engine.reconcile.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from reconciler.controller import Controller, Desired, Diff, StateReader
from reconciler.engine.verify import Memo, Verdict, verify_plan
from reconciler.errors import AiosError
from reconciler.plan import DomainPlan, Step
from registry.tooling import ToolSpec


@dataclass
class DomainWork:
    """One domain's plan and the facts it was made from."""

    domain: str
    controller: Controller[Any]
    desired: Desired
    state: BaseModel | None = None
    diff: Diff = field(default_factory=Diff)
    steps: tuple[Step, ...] = ()
    verdict: Verdict = field(default_factory=Verdict)
    plan: DomainPlan | None = None
    error: AiosError | None = None
    planned_resources: frozenset[str] = frozenset()
    observe_ms: int = 0

    @property
    def resource_keys(self) -> tuple[str, ...]:
        return tuple(sorted({r.key for r in self.desired.resources} | set(self.desired.pruned)))


def plannable(desired: Desired) -> frozenset[str]:
    """Resources whose changes become steps: mode enforce, and pruned ones."""
    keys = {r.key for r in desired.resources if r.spec.mode == "enforce"}
    return frozenset(keys | set(desired.pruned))


async def plan_domain(
    controller: Controller[Any],
    desired: Desired,
    reader: StateReader,
    catalogue: Mapping[str, ToolSpec],
) -> DomainWork:
    work = DomainWork(controller.domain, controller, desired)
    work.planned_resources = plannable(desired)
    started = time.monotonic()
    try:
        work.state = await controller.observe(reader, desired)
    except AiosError as exc:
        work.error = exc
        return work
    finally:
        work.observe_ms = int((time.monotonic() - started) * 1000)
    return replan(work, catalogue, memo=reader)


def replan(
    work: DomainWork, catalogue: Mapping[str, ToolSpec], *, memo: Memo | None = None
) -> DomainWork:
    """Diff, plan and verify against `work.state` (already observed)."""
    controller, desired, state = work.controller, work.desired, work.state
    assert state is not None
    try:
        work.diff = controller.diff(desired, state)
        to_plan = Diff(
            tuple(c for c in work.diff.changes if c.resource in work.planned_resources),
            work.diff.noops,
        )
        work.steps = controller.plan(to_plan, desired, state) if to_plan.changes else ()
    except AiosError as exc:
        work.error = exc
        return work
    work.verdict = verify_plan(
        controller,
        desired,
        state,
        work.steps,
        catalogue,
        planned_resources=work.planned_resources,
        memo=memo,
    )
    work.plan = DomainPlan(
        domain=work.domain,
        resources=work.resource_keys,
        state_fingerprint=controller.fingerprint(state),
        changes=work.diff.changes,
        steps=work.steps,
        noops=work.diff.noops,
        planner="rules" if work.steps else "none",
    )
    return work
