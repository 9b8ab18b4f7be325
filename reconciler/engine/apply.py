"""Apply one domain of a planned run: re-check, execute, verify, report.

`ApplyRun` holds what one `Engine.apply` call shares between its domains (the
registry client, the store, the plan, the result being built, the saved plan
being executed). `domain()` re-observes when needed (a saved plan is old; a
domain whose observation depends on another domain's changes, such as models
on storage's mounts, is re-planned after it), refuses stale, destructive or
rejected plans, executes the calls (journaled, undone on failure), records
the inventory, re-observes and requires an empty diff, and reports per
resource. Used by reconciler.engine.reconcile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reconciler.engine.execute import ExecOutcome, Executor, ProgressFn, execute
from reconciler.engine.planning import DomainWork, plan_domain
from reconciler.engine.reader import ReadOnlyReader
from reconciler.engine.status import Outcome, Report
from reconciler.engine.store import Store
from reconciler.engine.verify import describe
from reconciler.errors import AiosError
from reconciler.plan import Plan

if TYPE_CHECKING:
    from reconciler.engine.reconcile import ApplyResult, Planned


@dataclass
class ApplyRun:
    target: str
    client: Any
    store: Store
    planned: Planned
    result: ApplyResult
    run: str
    saved: Plan | None
    assume_yes: bool
    progress: ProgressFn | None

    async def domain(self, work: DomainWork, *, dep_changed: bool) -> tuple[bool, bool]:
        """Run one domain; returns (ok, changed anything)."""
        domain, controller = work.domain, work.controller
        planned, result, saved = self.planned, self.result, self.saved
        catalogue = planned.catalogue
        shown = saved.domain(domain) if saved is not None else work.plan
        if work.error is None and (saved is not None or dep_changed):
            # Re-observe: a saved plan is old, and dependencies may have moved the state.
            reader = ReadOnlyReader(
                self.client, catalogue, reason="aios apply: observe", cache=self.store
            )
            fresh = await plan_domain(controller, work.desired, reader, catalogue)
            if fresh.error is None and fresh.plan is not None and shown is not None:
                same_state = fresh.plan.state_fingerprint == shown.state_fingerprint
                same_steps = fresh.plan.steps == shown.steps
                if saved is not None and not same_state:
                    result.stale.append(domain)
                    self.stall(
                        fresh,
                        "StalePlan",
                        "the observed state changed since the saved plan was made; "
                        "run aios plan again",
                    )
                    return False, False
                if not same_steps and not self.assume_yes:
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
            self.report_all(work, kind, type(work.error).__name__, str(work.error))
            result.outcomes[domain] = f"observe/plan failed: {work.error}"
            return False, False
        steps = work.steps
        if saved is not None and shown is not None:
            steps = shown.steps  # execute exactly what was reviewed (the state matched)
        if work.verdict.destructive:
            result.destructive_refused.append(domain)
            self.report_all(
                work, "stalled", "DestructiveRefused", " ".join(work.verdict.destructive)
            )
            result.outcomes[domain] = "refused: destructive step without force"
            return False, False
        if work.verdict.findings:
            self.report_all(work, "stalled", "PlanRejected", " ".join(work.verdict.findings))
            result.outcomes[domain] = "plan rejected by the verifier"
            return False, False
        if steps:
            client: Executor = self.client
            outcome: ExecOutcome = await execute(
                controller.transactions(steps),
                client=client,
                catalogue=catalogue,
                store=self.store,
                run=self.run,
                target=self.target,
                domain=domain,
                reason=f"aios apply {self.target} generation {planned.merge.generation}",
                progress=self.progress,
            )
            if not outcome.ok:
                self.report_all(work, "degraded", "StepFailed", outcome.summary())
                result.outcomes[domain] = outcome.summary()
                return False, bool(outcome.not_undone)
            self.record_inventory(work)
        return await self.verify_after(work, executed=bool(steps))

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
                self.report_all(work, "degraded", "VerifyFailed", str(exc))
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
            resource_changes = sum(1 for c in work.diff.changes if c.resource == key)
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
                mode = self.mode(key)
                drift: Outcome = "drifted" if mode == "audit" else "proposed"
                reason = "DriftDetected" if mode == "audit" else "AwaitingApproval"
                result.reports.append(
                    Report(
                        key,
                        domain,
                        drift,
                        reason,
                        "; ".join(residual[:5]),
                        len(residual),
                    )
                )
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

    def stall(self, work: DomainWork, reason: str, message: str) -> None:
        self.report_all(work, "stalled", reason, message)
        self.result.outcomes[work.domain] = f"{reason}: {message}"

    def report_all(self, work: DomainWork, outcome: Outcome, reason: str, message: str) -> None:
        for key in work.resource_keys:
            changes = sum(1 for c in work.diff.changes if c.resource == key)
            self.result.reports.append(Report(key, work.domain, outcome, reason, message, changes))
