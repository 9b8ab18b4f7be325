"""Apply one domain of a planned run: re-check, execute, verify, report.

`ApplyRun` holds what one `Engine.apply` call shares between its domains (the
registry client, the store, the plan, the result being built, the saved plan
being executed). `domain()` re-observes when needed (a saved plan is old; a
domain whose observation depends on another domain's changes, such as models
on storage's mounts, is re-planned after it), refuses stale, altered,
destructive or rejected plans, executes the calls (journaled, undone on
failure), records the inventory, re-observes and requires an empty diff, and
reports per resource. Used by reconciler.engine.reconcile.

What runs is always the freshly planned `work.steps`, which `verify_plan`
checked (planning.replan): a saved plan is only a claim about them, accepted
when it equals them (`saved_domain_problem`), never executed itself.

Reports name the resource that caused a failure: a resource left out of the
plan carries its own error, a refused domain names the resources whose steps
were refused and the others say they were blocked by them, and a failed call
is charged to the resources whose steps it ran (the others were rolled back,
or needed nothing). Resources an apply is about to change are marked
Reconciling in the store before the first call (`mark_reconciling`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.engine.execute import ExecOutcome, ProgressFn, execute
from reconciler.engine.planning import Blame, DomainWork, plan_domain
from reconciler.engine.reader import ReadOnlyReader
from reconciler.engine.status import Outcome, Report, reconciling_status
from reconciler.engine.store import ResourceStatus, Store
from reconciler.engine.verify import describe
from reconciler.sdk.errors import AiosError
from reconciler.sdk.plan import Plan, plan_difference
from reconciler.sdk.ports import Registry

if TYPE_CHECKING:
    from reconciler.engine.reconcile import ApplyResult, Planned


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


@dataclass
class ApplyRun:
    target: str
    client: Registry
    store: Store
    planned: Planned
    result: ApplyResult
    run: str
    saved: Plan | None
    assume_yes: bool
    progress: ProgressFn | None
    # Statuses as they were before this run marked their resources Reconciling.
    before: dict[str, ResourceStatus | None] = field(default_factory=dict)

    def mark_reconciling(self, work: DomainWork) -> None:
        """Persist Reconciling for the resources `work`'s steps change (before they run)."""
        if work.blocked or not work.steps:
            return
        keys = work.resources_of_steps(range(len(work.steps))) | set(work.desired.pruned)
        for key in sorted(keys - set(self.before)):
            previous = self.store.status(self.target, key)
            self.before[key] = previous
            self.store.put_status(
                self.target,
                reconciling_status(key, work.domain, previous, run=self.run, steps=len(work.steps)),
            )

    async def domain(self, work: DomainWork, *, dep_changed: bool) -> tuple[bool, bool]:
        """Run one domain; returns (ok, changed anything)."""
        domain, controller = work.domain, work.controller
        planned, result, saved = self.planned, self.result, self.saved
        catalogue = planned.catalogue
        if work.error is None and (saved is not None or dep_changed):
            # Re-observe: a saved plan is old, and dependencies may have moved the state.
            reader = ReadOnlyReader(
                self.client, catalogue, reason="aios apply: observe", cache=self.store
            )
            fresh = await plan_domain(controller, work.declared or work.desired, reader, catalogue)
            if saved is not None:
                problem = saved_domain_problem(saved, fresh)
                if problem is not None:
                    stale, message = problem
                    if stale:
                        result.stale.append(domain)
                        self.stall(fresh, "StalePlan", f"{message}; run aios plan again")
                    else:
                        self.stall(
                            fresh,
                            "PlanAltered",
                            f"the saved plan does not match a fresh plan: {message}; "
                            "nothing of it ran",
                        )
                    return False, False
            elif (
                fresh.plan is not None
                and work.plan is not None
                and fresh.plan.steps != work.plan.steps
                and not self.assume_yes
            ):
                self.stall(
                    fresh,
                    "PlanChanged",
                    "the plan changed after its dependencies ran; review it with "
                    "aios plan and apply again",
                )
                return False, False
            work = fresh
            planned.works[domain] = fresh
        if work.error is not None:
            kind: Outcome = "degraded" if work.error.retryable else "stalled"
            self.report_blocked(work, kind, type(work.error).__name__, str(work.error))
            result.outcomes[domain] = f"observe/plan failed: {work.error}"
            return False, False
        if work.verdict.destructive:
            result.destructive_refused.append(domain)
            self.report_blocked(
                work, "stalled", "DestructiveRefused", " ".join(work.verdict.destructive)
            )
            result.outcomes[domain] = "refused: destructive step without force"
            return False, False
        if work.verdict.findings:
            self.report_blocked(work, "stalled", "PlanRejected", " ".join(work.verdict.findings))
            result.outcomes[domain] = "plan rejected by the verifier"
            return False, False
        self.report_left_out(work)
        if work.steps:
            self.mark_reconciling(work)
            outcome: ExecOutcome = await execute(
                controller.transactions(work.steps),
                client=self.client,
                catalogue=catalogue,
                store=self.store,
                run=self.run,
                target=self.target,
                domain=domain,
                reason=f"aios apply {self.target} generation {planned.merge.generation}",
                progress=self.progress,
            )
            if not outcome.ok:
                self.report_step_failure(work, outcome)
                result.outcomes[domain] = outcome.summary()
                return False, bool(outcome.not_undone)
            self.record_inventory(work)
        ok, changed = await self.verify_after(work, executed=bool(work.steps))
        if work.left_out:
            result.outcomes[domain] += f"; left out: {', '.join(sorted(work.left_out))}"
        return ok and not work.left_out, changed

    async def verify_after(self, work: DomainWork, *, executed: bool) -> tuple[bool, bool]:
        """Re-observe after executing; the diff must be empty. Reports per resource."""
        domain, controller = work.domain, work.controller
        planned, result = self.planned, self.result
        state = work.state
        if executed:
            reader = ReadOnlyReader(
                self.client, planned.catalogue, reason="aios apply: verify", cache=self.store
            )
            try:
                state = await controller.observe(reader, work.desired)
            except AiosError as exc:
                for key in work.resource_keys:
                    result.reports.append(
                        Report(
                            key, domain, "degraded", "VerifyFailed", str(exc), self.count(work, key)
                        )
                    )
                result.outcomes[domain] = f"could not re-observe: {exc}"
                return False, True
        assert state is not None
        after = controller.diff(work.desired, state)
        by_resource: dict[str, list[str]] = {}
        for change in after.changes:
            by_resource.setdefault(change.resource, []).append(describe(change))
        planned_keys = work.planned_resources
        for key in work.resource_keys:
            residual = by_resource.get(key, [])
            resource_changes = self.count(work, key)
            if not residual:
                reason = "Reconciled" if resource_changes else "UpToDate"
                result.reports.append(
                    Report(
                        key,
                        domain,
                        "ready",
                        reason,
                        f"{resource_changes} change(s) applied"
                        if resource_changes
                        else "no changes needed",
                        resource_changes,
                    )
                )
            elif key not in planned_keys:
                result.reports.append(self.unplanned_report(work, key, residual))
            else:
                result.reports.append(
                    Report(
                        key,
                        domain,
                        "degraded",
                        "ResidualDrift",
                        "after apply: " + "; ".join(residual[:5]),
                        len(residual),
                    )
                )
        ok = not any(c.resource in planned_keys for c in after.changes)
        result.outcomes[domain] = (
            f"{len(work.steps)} step(s) applied" if executed else "no changes"
        ) + ("" if ok else "; residual drift remains")
        return ok, executed

    def unplanned_report(self, work: DomainWork, key: str, residual: list[str]) -> Report:
        """A resource in audit or propose mode whose drift was reported, not planned."""
        mode = self.mode(key)
        drift: Outcome = "drifted" if mode == "audit" else "proposed"
        reason = "DriftDetected" if mode == "audit" else "AwaitingApproval"
        return Report(key, work.domain, drift, reason, "; ".join(residual[:5]), len(residual))

    def record_inventory(self, work: DomainWork) -> None:
        """Objects this run created join the inventory; removed ones leave it."""
        added: dict[str, set[str]] = {}
        removed: dict[str, set[str]] = {}
        satisfied = {cid for step in work.steps for cid in step.satisfies}
        for change in work.diff.changes:
            if change.id not in satisfied:
                continue
            if work.controller.created(change):
                added.setdefault(change.resource, set()).add(change.object)
            elif change.op == "remove" and not change.field:
                removed.setdefault(change.resource, set()).add(change.object)
        if added or removed:
            self.store.update_inventory(self.target, work.domain, added=added, removed=removed)

    def mode(self, key: str) -> str:
        resource = self.planned.merge.specset.get(key)
        return resource.spec.mode if resource is not None else "enforce"

    @staticmethod
    def count(work: DomainWork, key: str) -> int:
        return sum(1 for c in work.diff.changes if c.resource == key)

    def stall(self, work: DomainWork, reason: str, message: str) -> None:
        self.report_all(work, "stalled", reason, message)
        self.result.outcomes[work.domain] = f"{reason}: {message}"

    def report_all(self, work: DomainWork, outcome: Outcome, reason: str, message: str) -> None:
        """The same report for every resource of the domain; none of them was applied."""
        for key in work.all_keys:
            self.result.reports.append(
                Report(key, work.domain, outcome, reason, message, self.count(work, key), False)
            )

    def report_blocked(self, work: DomainWork, outcome: Outcome, reason: str, message: str) -> None:
        """A domain that may not run: the blamed resources carry their own error, the
        others say which resources blocked them (all carry the error when none is known)."""
        culprits = work.blamed
        if not culprits:
            self.report_all(work, outcome, reason, message)
            return
        names = ", ".join(sorted(culprits))
        for key in work.all_keys:
            blame = culprits.get(key)
            if blame is not None:
                report = Report(
                    key,
                    work.domain,
                    self.kind(blame, outcome),
                    blame.reason,
                    blame.message,
                    self.count(work, key),
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
                    self.count(work, key),
                    False,
                )
            self.result.reports.append(report)

    def report_left_out(self, work: DomainWork) -> None:
        """Resources planned out of this apply: each with its own error."""
        for key, blame in sorted(work.left_out.items()):
            self.result.reports.append(
                Report(
                    key,
                    work.domain,
                    self.kind(blame, "stalled"),
                    blame.reason,
                    f"{blame.message} (not applied; the rest of the {work.domain} domain "
                    "went ahead without it)",
                    0,
                    False,
                )
            )

    def report_step_failure(self, work: DomainWork, outcome: ExecOutcome) -> None:
        """A failed call is charged to the resources whose steps it ran."""
        summary = outcome.summary()
        failed = outcome.failed.steps if outcome.failed is not None else ()
        culprits = work.resources_of_steps(failed) or set(work.resource_keys)
        touched = work.resources_of_steps(range(len(work.steps))) | set(work.desired.pruned)
        names = ", ".join(sorted(culprits))
        for key in work.resource_keys:
            changes = self.count(work, key)
            if key in culprits:
                report = Report(key, work.domain, "degraded", "StepFailed", summary, changes, False)
            elif key in touched or outcome.not_undone:
                report = Report(
                    key,
                    work.domain,
                    "degraded",
                    "RolledBack" if not outcome.not_undone else "StepFailed",
                    f"not applied: a call for {names} failed; {summary}",
                    changes,
                    False,
                )
            elif changes:  # drift of a resource in audit or propose mode, as observed
                residual = [describe(c) for c in work.diff.changes if c.resource == key]
                report = self.unplanned_report(work, key, residual)
            else:
                report = Report(key, work.domain, "ready", "UpToDate", "no changes needed")
            self.result.reports.append(report)

    @staticmethod
    def kind(blame: Blame, default: Outcome) -> Outcome:
        return "degraded" if blame.retryable else default
