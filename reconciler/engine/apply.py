"""Apply one domain of a planned run: re-check, execute, verify; return what happened.

`apply_domain(context, work, dep_changed=...)` runs one domain and returns a
frozen `DomainOutcome` (its reports per resource, one-line summary, the
calls it executed, the inventory it changed, the statuses it marked); it
writes only the journal and the Reconciling marks of resources it is about
to change. reconciler.engine.reconcile (`Engine.apply`) folds the outcomes
into the ApplyResult and the store; nothing here holds or mutates what
another domain produced. `ApplyContext` is what every domain of one apply
reads (registry client, store, catalogue, run id, saved plan, modes).

A domain is re-observed before it runs when that is needed (a saved plan is
old; a domain whose observation depends on another domain's changes, such as
models on storage's mounts, is re-planned after it); the outcome then holds
that fresh `DomainWork`, never written back into the planned run. Stale,
altered, destructive or rejected plans are refused; the calls are executed
(journaled, undone on failure), and the domain is re-observed: the diff must
be empty. Kernel state can lag a call, so while drift remains it is observed
again after each of the short `verify_delays` (injected sleep); drift that
remains then is undone like a failed call: the domain's executed calls are
rolled back where the tools are reversible, and its reports say ResidualDrift
with "N call(s) undone" or which calls could not be undone and stay in
place (nmstate does the same with its checkpoint).

What runs is always the freshly planned `work.steps`, which
`verify_plan` checked (planning.replan): a saved plan is only a claim about
them, accepted when it equals them (`saved_domain_problem`; the binding and
the planned content are checked once, by Engine.check_saved, before any
domain runs), never executed itself.

Reports name the resource that caused a failure: a resource left out of the
plan carries its own error, a refused domain names the resources whose steps
were refused and the others say they were blocked by them, and a failed call
is charged to the resources whose steps it ran (the others were rolled back,
or needed nothing). Resources an apply is about to change are marked
Reconciling in the store before the first call (`mark_reconciling`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from contract.tooldef import ToolSpec
from reconciler.engine.execute import (
    Executed,
    Execution,
    Journal,
    ProgressFn,
    Undo,
    execute,
    undo,
)
from reconciler.engine.planning import Blame, DomainWork, plan_domain
from reconciler.engine.reader import ReadOnlyReader
from reconciler.engine.status import Outcome, Report, reconciling_status
from reconciler.engine.store import ResourceStatus, Store
from reconciler.engine.verify import describe
from reconciler.sdk.controller import Call
from reconciler.sdk.errors import AiosError
from reconciler.sdk.plan import Plan, plan_difference
from reconciler.sdk.ports import Registry
from reconciler.sdk.retry import NO_RETRY, Retry

Objects = Mapping[str, frozenset[str]]  # resource key -> object keys


def saved_domain_problem(saved: Plan, fresh: DomainWork) -> tuple[bool, str] | None:
    """Why the saved plan's part for `fresh.domain` may not run: (stale, message).

    stale True: what the plan was made from changed (run `aios plan` again);
    False: the saved plan differs from a fresh plan made from the same inputs
    (it was altered). None: it equals the fresh plan, or the domain cannot be
    planned now (it then fails on its own and nothing of it runs).
    """
    name = fresh.domain
    if fresh.plan is None:
        return None
    mine = [d for d in saved.domains if d.domain == name]
    if len(mine) > 1:
        return False, f"{name}: the saved plan holds this domain {len(mine)} times"
    if not mine:
        if saved.blocked(name):
            return True, f"{name}: the domain could not be planned when the plan was saved"
        return False, (
            f"{name}: the saved plan has no {name} domain; a fresh plan has "
            f"{len(fresh.plan.steps)} step(s) there"
        )
    if mine[0].state_fingerprint != fresh.plan.state_fingerprint:
        return True, f"{name}: the observed state changed since the saved plan was made"
    why = plan_difference(mine[0], fresh.plan)
    return (False, f"{name}: {why}") if why else None


@dataclass(frozen=True)
class ApplyContext:
    """What every domain of one `Engine.apply` reads; nothing in it changes while it runs."""

    target: str
    client: Registry
    store: Store
    catalogue: Mapping[str, ToolSpec]
    run: str
    generation: int
    modes: Mapping[str, str]  # resource key -> spec mode (enforce, audit, propose)
    saved: Plan | None = None
    assume_yes: bool = False
    progress: ProgressFn | None = None
    marked: frozenset[str] = frozenset()  # resources marked Reconciling before any domain ran
    retry: Retry = NO_RETRY  # the engine's policy for TemporaryErrors (Engine.retry)
    verify_delays: tuple[float, ...] = ()  # waits before re-observing while drift remains
    stop: Callable[[], bool] | None = None  # asked before each call (the daemon stopping)

    def reader(self, reason: str) -> ReadOnlyReader:
        return ReadOnlyReader(
            self.client, self.catalogue, reason=reason, cache=self.store, retry=self.retry
        )

    def mode(self, key: str) -> str:
        return self.modes.get(key, "enforce")


@dataclass(frozen=True)
class DomainOutcome:
    """What applying one domain did; Engine.apply folds these into its ApplyResult.

    `ok`: every resource of the domain is as declared (dependents may run).
    `changed`: the domain changed something on the target (a domain that
    observes its changes is re-planned). `work`: the plan that ran (a fresh
    re-plan when the domain was re-observed). `executed`: (call, execution
    id) of the calls that ran and stayed. `added`/`removed`: inventory
    changes. `marked`: statuses as they were before this domain marked them
    Reconciling (resources a re-plan added).
    """

    domain: str
    ok: bool
    changed: bool
    summary: str
    reports: tuple[Report, ...] = ()
    work: DomainWork | None = None
    executed: tuple[tuple[Call, str], ...] = ()
    added: Objects = field(default_factory=dict)
    removed: Objects = field(default_factory=dict)
    marked: Mapping[str, ResourceStatus | None] = field(default_factory=dict)
    stale: bool = False
    destructive_refused: bool = False


def mark_reconciling(
    store: Store, target: str, run: str, work: DomainWork, *, skip: Collection[str] = ()
) -> dict[str, ResourceStatus | None]:
    """Persist Reconciling for the resources `work`'s steps change (before they run).

    Returns their statuses as they were before (resources in `skip` are left alone).
    """
    if work.blocked or not work.steps:
        return {}
    keys = work.resources_of_steps(range(len(work.steps))) | set(work.desired.pruned)
    before: dict[str, ResourceStatus | None] = {}
    for key in sorted(keys - set(skip)):
        previous = store.status(target, key)
        before[key] = previous
        store.put_status(
            target,
            reconciling_status(key, work.domain, previous, run=run, steps=len(work.steps)),
        )
    return before


async def apply_domain(ctx: ApplyContext, work: DomainWork, *, dep_changed: bool) -> DomainOutcome:
    """Run one domain (module doc) and say what happened."""
    domain = work.domain
    marked: dict[str, ResourceStatus | None] = {}
    if work.error is None and (ctx.saved is not None or dep_changed):
        # Re-observe: a saved plan is old, and dependencies may have moved the state.
        fresh = await plan_domain(
            work.controller,
            work.declared or work.desired,
            ctx.reader("aios apply: observe"),
            ctx.catalogue,
        )
        if ctx.saved is not None:
            problem = saved_domain_problem(ctx.saved, fresh)
            if problem is not None:
                stale, message = problem
                if stale:
                    return stalled(
                        fresh, "StalePlan", f"{message}; run aios plan again", stale=True
                    )
                return stalled(
                    fresh,
                    "PlanAltered",
                    f"the saved plan does not match a fresh plan: {message}; nothing of it ran",
                )
        elif (
            fresh.plan is not None
            and work.plan is not None
            and fresh.plan.steps != work.plan.steps
            and not ctx.assume_yes
        ):
            return stalled(
                fresh,
                "PlanChanged",
                "the plan changed after its dependencies ran; review it with "
                "aios plan and apply again",
            )
        work = fresh
    if work.error is not None:
        kind: Outcome = "degraded" if work.error.retryable else "stalled"
        return DomainOutcome(
            domain,
            ok=False,
            changed=False,
            summary=f"observe/plan failed: {work.error}",
            reports=report_blocked(work, kind, type(work.error).__name__, str(work.error)),
            work=work,
        )
    if work.verdict.destructive:
        return DomainOutcome(
            domain,
            ok=False,
            changed=False,
            summary="refused: destructive step without force",
            reports=report_blocked(
                work, "stalled", "DestructiveRefused", " ".join(work.verdict.destructive)
            ),
            work=work,
            destructive_refused=True,
        )
    if work.verdict.findings:
        return DomainOutcome(
            domain,
            ok=False,
            changed=False,
            summary="plan rejected by the verifier",
            reports=report_blocked(
                work, "stalled", "PlanRejected", " ".join(work.verdict.findings)
            ),
            work=work,
        )
    left_out = report_left_out(work)
    executed: Executed = ()
    if work.steps:
        marked = mark_reconciling(ctx.store, ctx.target, ctx.run, work, skip=ctx.marked)
        execution: Execution = await execute(
            work.controller.transactions(work.steps),
            client=ctx.client,
            catalogue=ctx.catalogue,
            store=ctx.store,
            run=ctx.run,
            target=ctx.target,
            domain=domain,
            reason=f"aios apply {ctx.target} generation {ctx.generation}",
            progress=ctx.progress,
            retry=ctx.retry,
            stop=ctx.stop,
        )
        if not execution.ok:
            return DomainOutcome(
                domain,
                ok=False,
                changed=bool(execution.not_undone),
                summary=execution.summary(),
                reports=left_out + report_step_failure(ctx, work, execution),
                work=work,
                marked=marked,
            )
        executed = execution.executed
    verified = await verify_after(ctx, work, executed=executed if work.steps else None)
    summary = verified.summary
    if work.left_out:
        summary += f"; left out: {', '.join(sorted(work.left_out))}"
    stays = verified.undo.stays() if verified.undo is not None else executed
    ran = {i for call, _ in stays for i in call.steps}
    added, removed = inventory_changes(work, ran) if work.steps else ({}, {})
    return DomainOutcome(
        domain,
        ok=verified.ok and not work.left_out,
        changed=verified.changed,
        summary=summary,
        reports=left_out + verified.reports,
        work=work,
        executed=stays,
        added=added,
        removed=removed,
        marked=marked,
    )


@dataclass(frozen=True)
class Verified:
    ok: bool
    changed: bool
    summary: str
    reports: tuple[Report, ...]
    undo: Undo | None = None  # what was undone after residual drift


async def verify_after(
    ctx: ApplyContext, work: DomainWork, *, executed: Executed | None
) -> Verified:
    """Re-observe after executing; the diff must be empty. Reports per resource.

    `executed`: the calls that ran (None: nothing was executed, the planned
    state is checked). Kernel state can lag behind a call, so while drift
    remains the domain is observed again after each of `ctx.verify_delays`.
    When drift remains after the last observation, the domain's executed
    calls are undone where the tools are reversible (as after a failed
    call), and the reports say what was undone and which calls stay.
    """
    domain, controller = work.domain, work.controller
    state = work.state
    planned_resources = work.planned_resources
    after = None
    if executed is not None:
        for wait in (0.0, *ctx.verify_delays):
            if wait:
                await ctx.retry.sleep(wait)
            try:
                state = await controller.observe(ctx.reader("aios apply: verify"), work.desired)
            except AiosError as exc:
                failed = tuple(
                    Report(key, domain, "degraded", "VerifyFailed", str(exc), count(work, key))
                    for key in work.resource_keys
                )
                return Verified(False, True, f"could not re-observe: {exc}", failed)
            after = controller.diff(work.desired, state)
            if not any(c.resource in planned_resources for c in after.changes):
                break
    assert state is not None
    if after is None:
        after = controller.diff(work.desired, state)
    by_resource: dict[str, list[str]] = {}
    for change in after.changes:
        by_resource.setdefault(change.resource, []).append(describe(change))
    ok = not any(c.resource in planned_resources for c in after.changes)
    undone: Undo | None = None
    if not ok and executed:
        undone = await undo(
            executed,
            client=ctx.client,
            catalogue=ctx.catalogue,
            journal=Journal(ctx.store, ctx.run, ctx.target, domain),
            reason=f"undo after residual drift in {domain}",
        )
    drifting = {key for key in work.resource_keys if by_resource.get(key)} & planned_resources
    reverted = _reverted(work, undone)
    said = _undo_text(undone)
    reports: list[Report] = []
    for key in work.resource_keys:
        residual = by_resource.get(key, [])
        resource_changes = count(work, key)
        if key in drifting:
            message = "after apply: " + "; ".join(residual[:5]) + (f"; {said}" if said else "")
            applied = key not in reverted
            reports.append(
                Report(key, domain, "degraded", "ResidualDrift", message, len(residual), applied)
            )
        elif key in reverted:
            reports.append(
                Report(
                    key,
                    domain,
                    "degraded",
                    "RolledBack",
                    f"not applied: residual drift in {', '.join(sorted(drifting))} after "
                    f"apply; {said}",
                    resource_changes,
                    False,
                )
            )
        elif not residual:
            reason = "Reconciled" if resource_changes else "UpToDate"
            message = (
                f"{resource_changes} change(s) applied" if resource_changes else "no changes needed"
            )
            reports.append(Report(key, domain, "ready", reason, message, resource_changes))
        else:
            reports.append(unplanned_report(ctx, work, key, residual))
    summary = (f"{len(work.steps)} step(s) applied" if executed is not None else "no changes") + (
        "" if ok else "; residual drift remains"
    )
    if said:
        summary += f"; {said}"
    return Verified(ok, executed is not None, summary, tuple(reports), undone)


def _reverted(work: DomainWork, undone: Undo | None) -> set[str]:
    """Resources none of whose executed calls stay: everything of theirs was undone."""
    if undone is None:
        return set()
    steps_back = {s for i in undone.undone for s in undone.executed[i][0].steps}
    steps_stay = {s for call, _ in undone.stays() for s in call.steps}
    return work.resources_of_steps(steps_back) - work.resources_of_steps(steps_stay)


def _undo_text(undone: Undo | None) -> str:
    """What status says about an undo after residual drift ("" when there was none)."""
    if undone is None:
        return ""
    text = f"{len(undone.undone)} call(s) undone"
    if undone.kept:
        text += "; could not be undone, left in place: " + ", ".join(undone.not_undone)
    return text


def inventory_changes(work: DomainWork, ran: Collection[int]) -> tuple[Objects, Objects]:
    """Objects the steps at `ran` (whose calls stayed) created join the inventory;
    removed ones leave it."""
    added: dict[str, set[str]] = {}
    removed: dict[str, set[str]] = {}
    satisfied = {cid for i, step in enumerate(work.steps) if i in ran for cid in step.satisfies}
    for change in work.diff.changes:
        if change.id not in satisfied:
            continue
        if work.controller.created(change):
            added.setdefault(change.resource, set()).add(change.object)
        elif change.op == "remove" and not change.field:
            removed.setdefault(change.resource, set()).add(change.object)
    return _frozen(added), _frozen(removed)


def _frozen(objects: Mapping[str, set[str]]) -> dict[str, frozenset[str]]:
    return {key: frozenset(values) for key, values in objects.items()}


def count(work: DomainWork, key: str) -> int:
    """How many of the planned diff's changes belong to resource `key`."""
    return sum(1 for c in work.diff.changes if c.resource == key)


def stalled(work: DomainWork, reason: str, message: str, *, stale: bool = False) -> DomainOutcome:
    """The domain did not run: every resource reports Stalled with `reason`."""
    return DomainOutcome(
        work.domain,
        ok=False,
        changed=False,
        summary=f"{reason}: {message}",
        reports=report_all(work, "stalled", reason, message),
        work=work,
        stale=stale,
    )


def unplanned_report(ctx: ApplyContext, work: DomainWork, key: str, residual: list[str]) -> Report:
    """A resource in audit or propose mode whose drift was reported, not planned."""
    mode = ctx.mode(key)
    drift: Outcome = "drifted" if mode == "audit" else "proposed"
    reason = "DriftDetected" if mode == "audit" else "AwaitingApproval"
    return Report(key, work.domain, drift, reason, "; ".join(residual[:5]), len(residual))


def report_all(work: DomainWork, outcome: Outcome, reason: str, message: str) -> tuple[Report, ...]:
    """The same report for every resource of the domain; none of them was applied."""
    return tuple(
        Report(key, work.domain, outcome, reason, message, count(work, key), False)
        for key in work.all_keys
    )


def report_blocked(
    work: DomainWork, outcome: Outcome, reason: str, message: str
) -> tuple[Report, ...]:
    """A domain that may not run: the blamed resources carry their own error, the
    others say which resources blocked them (all carry the error when none is known)."""
    culprits = work.blamed
    if not culprits:
        return report_all(work, outcome, reason, message)
    names = ", ".join(sorted(culprits))
    reports: list[Report] = []
    for key in work.all_keys:
        blame = culprits.get(key)
        if blame is not None:
            report = Report(
                key,
                work.domain,
                kind_of(blame, outcome),
                blame.reason,
                blame.message,
                count(work, key),
                False,
            )
        else:
            report = Report(
                key,
                work.domain,
                "stalled",
                "Blocked",
                f"not applied: the {work.domain} domain could not run because of "
                f"{names} ({reason})",
                count(work, key),
                False,
            )
        reports.append(report)
    return tuple(reports)


def report_left_out(work: DomainWork) -> tuple[Report, ...]:
    """Resources planned out of this apply: each with its own error."""
    return tuple(
        Report(
            key,
            work.domain,
            kind_of(blame, "stalled"),
            blame.reason,
            f"{blame.message} (not applied; the rest of the {work.domain} domain "
            "went ahead without it)",
            0,
            False,
        )
        for key, blame in sorted(work.left_out.items())
    )


def report_step_failure(
    ctx: ApplyContext, work: DomainWork, execution: Execution
) -> tuple[Report, ...]:
    """A failed call is charged to the resources whose steps it ran."""
    summary = execution.summary()
    failed = execution.failed.steps if execution.failed is not None else ()
    culprits = work.resources_of_steps(failed) or set(work.resource_keys)
    touched = work.resources_of_steps(range(len(work.steps))) | set(work.desired.pruned)
    names = ", ".join(sorted(culprits))
    reports: list[Report] = []
    for key in work.resource_keys:
        changes = count(work, key)
        if key in culprits:
            report = Report(key, work.domain, "degraded", "StepFailed", summary, changes, False)
        elif key in touched or execution.not_undone:
            report = Report(
                key,
                work.domain,
                "degraded",
                "RolledBack" if not execution.not_undone else "StepFailed",
                f"not applied: a call for {names} failed; {summary}",
                changes,
                False,
            )
        elif changes:  # drift of a resource in audit or propose mode, as observed
            residual = [describe(c) for c in work.diff.changes if c.resource == key]
            report = unplanned_report(ctx, work, key, residual)
        else:
            report = Report(key, work.domain, "ready", "UpToDate", "no changes needed")
        reports.append(report)
    return tuple(reports)


def kind_of(blame: Blame, default: Outcome) -> Outcome:
    return "degraded" if blame.retryable else default
