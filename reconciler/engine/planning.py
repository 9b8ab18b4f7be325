"""Plan one domain: observe once, diff, plan by rules, verify; blame what failed.

`plan_domain` is the read-only half of a reconcile. It makes registry reads
only (through ReadOnlyReader), never writes, and returns everything the apply
half needs: the observed state, the diff, the verified steps, the verdict,
and the `DomainPlan` that `aios plan` shows. Resources in `audit` or
`propose` mode are diffed but their changes are not planned. Used by
reconciler.engine.reconcile and reconciler.engine.apply.

Errors are attributed to the resource that causes them. When a domain cannot
be planned (observe or plan raised, or the verifier found the plan wrong),
each resource is planned on its own; the ones that fail alone are tried
again next to the rest, and those that still fail are left out: the domain
is planned without them (nothing of theirs is touched) and each carries its
own error. Tried only when useful: the error is not a temporary one (an
unreachable registry is nobody's fault) and the domain has 2 to MAX_ISOLATE
units. Left out only when that is safe: no resource of the domain has `prune:
true` (it would remove what a left-out resource declares). Otherwise the
domain fails whole, and the resources that failed alone are named as the
cause (`DomainWork.blamed`).
A destructive step without `force` is never isolated: the domain is refused
and the resources whose changes need the step are blamed.

Each planned step's risk comes from the live catalogue the engine got from
the registry (`with_risk`), not from the controller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from contract.tooldef import ToolSpec
from reconciler.engine.verify import Verdict, verify_plan
from reconciler.sdk.controller import Controller, Desired, Diff, StateReader
from reconciler.sdk.errors import AiosError
from reconciler.sdk.plan import DomainPlan, PlanFailure, Step
from reconciler.sdk.ports import Cache

MAX_ISOLATE = 24  # units (resources, pruned or owned keys) tried one by one, at most


@dataclass(frozen=True)
class Blame:
    """Why one resource could not be planned, or what of it blocks its domain."""

    reason: str  # the error class: ToolFailed, PlanRejected, DestructiveRefused, ...
    message: str
    retryable: bool = False


@dataclass
class DomainWork:
    """One domain's plan and the facts it was made from.

    `declared` is everything the domain should hold; `desired` is what was
    planned (the same, unless resources were left out). `blamed`: with
    `blocked`, the resources that caused the failure (empty when no single
    resource could be named); without, the resources left out of the plan.
    """

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
    declared: Desired | None = None
    blamed: dict[str, Blame] = field(default_factory=dict)

    @property
    def resource_keys(self) -> tuple[str, ...]:
        """Keys of the resources this plan covers (left-out ones excluded)."""
        return _keys(self.desired)

    @property
    def all_keys(self) -> tuple[str, ...]:
        """Keys of every resource of the domain, planned or left out."""
        return _keys(self.declared or self.desired)

    @property
    def blocked(self) -> bool:
        """Nothing of this domain may run: planning failed or the verifier refused."""
        return self.error is not None or not self.verdict.ok

    @property
    def left_out(self) -> Mapping[str, Blame]:
        return {} if self.blocked else self.blamed

    def failures(self) -> tuple[PlanFailure, ...]:
        """What `aios plan` reports about this domain (empty: planned and verified)."""
        out: list[PlanFailure] = []
        if self.error is not None:
            out.append(
                PlanFailure(
                    domain=self.domain,
                    reason=type(self.error).__name__,
                    message=str(self.error),
                    retryable=self.error.retryable,
                )
            )
        elif self.verdict.findings:
            out.append(
                PlanFailure(
                    domain=self.domain,
                    reason="PlanRejected",
                    message="\n".join(self.verdict.findings),
                )
            )
        elif self.verdict.destructive:
            out.append(
                PlanFailure(
                    domain=self.domain,
                    reason="DestructiveRefused",
                    message="\n".join(self.verdict.destructive),
                )
            )
        for key, blame in sorted(self.blamed.items()):
            out.append(
                PlanFailure(
                    domain=self.domain,
                    resource=key,
                    reason=blame.reason,
                    message=blame.message,
                    retryable=blame.retryable,
                )
            )
        return tuple(out)

    def resources_of_steps(self, indexes: Iterable[int]) -> set[str]:
        """The resources whose changes the steps at `indexes` satisfy."""
        owner = {c.id: c.resource for c in self.diff.changes}
        wanted = set(indexes)
        return {
            owner[cid]
            for i, step in enumerate(self.steps)
            if i in wanted
            for cid in step.satisfies
            if cid in owner
        }


def _keys(desired: Desired) -> tuple[str, ...]:
    return tuple(sorted({r.key for r in desired.resources} | set(desired.pruned)))


def plannable(desired: Desired) -> frozenset[str]:
    """Resources whose changes become steps: mode enforce, and pruned ones."""
    keys = {
        r.key
        for r in desired.resources
        if (r.spec.mode == "enforce" or r.key in desired.approved) and r.key not in desired.held
    }
    return frozenset(keys | set(desired.pruned))


async def plan_domain(
    controller: Controller[Any],
    desired: Desired,
    reader: StateReader,
    catalogue: Mapping[str, ToolSpec],
) -> DomainWork:
    """Plan `desired`; when that fails, find the resources that cause it (module doc)."""
    work = await _plan_once(controller, desired, reader, catalogue)
    if work.error is None and not work.verdict.findings:
        if work.verdict.destructive:
            work.blamed = _verdict_blame(work)
        return work
    units = _units(desired)
    safe = not any(getattr(r.spec, "prune", False) for r in desired.resources)
    temporary = work.error is not None and work.error.retryable  # nobody's fault: no retries
    if len(units) < 2 or len(units) > MAX_ISOLATE or temporary:
        work.blamed = {} if work.error is not None else _verdict_blame(work)
        return work
    solos = await asyncio.gather(
        *(_plan_once(controller, subset(desired, {u}), reader, catalogue) for u in units)
    )
    suspects = [u for u, solo in zip(units, solos, strict=True) if _refused(solo)]
    if not suspects:  # each resource plans alone: the failure needs them together
        work.blamed = {} if work.error is not None else _verdict_blame(work)
        return work
    if not safe:  # named, but the domain is not planned without them
        work.blamed = {u: _blame(s) for u, s in zip(units, solos, strict=True) if _refused(s)}
        return work
    good = [u for u in units if u not in suspects]
    current: DomainWork | None = None
    if good:
        current = await _plan_once(controller, subset(desired, set(good)), reader, catalogue)
        if _refused(current):
            work.blamed = {u: _blame(s) for u, s in zip(units, solos, strict=True) if _refused(s)}
            return work
    culprits: dict[str, Blame] = {}
    for suspect in suspects:  # a resource that fails alone may only need the others
        trial = await _plan_once(controller, subset(desired, {*good, suspect}), reader, catalogue)
        if _refused(trial):
            culprits[suspect] = _blame(trial)
        else:
            good.append(suspect)
            current = trial
    if current is None:  # every resource fails: the domain fails, each with its own error
        work.blamed = culprits
        return work
    current.declared = desired
    current.blamed = culprits
    if current.verdict.destructive:
        current.blamed = {**_verdict_blame(current), **culprits}
    return current


def subset(desired: Desired, keys: set[str]) -> Desired:
    """`desired` restricted to the resources (and owned or pruned keys) in `keys`."""
    return Desired(
        domain=desired.domain,
        resources=tuple(r for r in desired.resources if r.key in keys),
        owned={k: v for k, v in desired.owned.items() if k in keys},
        pruned={k: v for k, v in desired.pruned.items() if k in keys},
    )


def _units(desired: Desired) -> list[str]:
    return sorted({r.key for r in desired.resources} | set(desired.owned) | set(desired.pruned))


def _refused(work: DomainWork) -> bool:
    return work.error is not None or bool(work.verdict.findings)


def _blame(work: DomainWork) -> Blame:
    if work.error is not None:
        return Blame(type(work.error).__name__, str(work.error), work.error.retryable)
    return Blame("PlanRejected", "; ".join(work.verdict.findings))


def _verdict_blame(work: DomainWork) -> dict[str, Blame]:
    """The resources whose steps (or missing changes) the verifier's findings name."""
    verdict = work.verdict
    reason = "PlanRejected" if verdict.findings else "DestructiveRefused"
    lines = verdict.findings or verdict.destructive
    out: dict[str, list[str]] = {}
    for index in verdict.blamed_steps:
        mine = [line for line in lines if line.startswith(f"step {index + 1} (")]
        for key in work.resources_of_steps([index]):
            out.setdefault(key, []).extend(mine or lines)
    for change in verdict.residual:
        out.setdefault(change.resource, []).extend(
            line for line in lines if line.startswith("simulation:")
        )
    return {
        key: Blame(reason, "; ".join(dict.fromkeys(found)) or "; ".join(lines))
        for key, found in out.items()
    }


async def _plan_once(
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


def with_risk(steps: Iterable[Step], catalogue: Mapping[str, ToolSpec]) -> tuple[Step, ...]:
    """`steps` with each step's risk taken from the live catalogue (the registry's ListTools).

    Controllers do not look risk up: the engine stamps it here, before the
    verifier, the DomainPlan (what `aios plan` renders and saves) and the
    saved-plan comparison see the steps, so a plan shows the risk the
    registry it runs on declares. A tool the catalogue lacks keeps the
    step's own value (the verifier refuses such a plan anyway).
    """
    out: list[Step] = []
    for step in steps:
        spec = catalogue.get(step.tool)
        if spec is not None and spec.risk != step.risk:
            step = step.model_copy(update={"risk": spec.risk})
        out.append(step)
    return tuple(out)


def replan(
    work: DomainWork, catalogue: Mapping[str, ToolSpec], *, memo: Cache | None = None
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
        planned = controller.plan(to_plan, desired, state) if to_plan.changes else ()
        work.steps = with_risk(planned, catalogue)
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
