"""The reconcile engine: merge specs into a target's set, plan, apply, report.

`Engine.plan()` observes every involved domain once (concurrently; reads
only), diffs, plans by rules and verifies; the resulting `Plan` is what
`aios plan` prints and saves. `Engine.apply()` executes such a plan domain by
domain in dependency order (independent domains concurrently; one failing
domain never stops the others, but its dependents wait), journals every
call, undoes a failed domain's calls, re-observes and requires an empty
diff, then records status, inventory and the generation.

Apply semantics: resources are keyed by Kind/name; applying a set creates or
updates those resources; resources applied earlier and absent from the set
stay unless `prune`, which removes what they created. `replace` (used by
`aios rollback GEN`) makes the target's set exactly the given one.
Used by the CLI (reconciler.cli.engine_cmds) and, later, the daemon.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.controller import Controller, Desired
from reconciler.engine.execute import ExecOutcome, Executor, ProgressFn, execute
from reconciler.engine.order import DOMAINS, KIND_DOMAIN, dependencies, domain_of
from reconciler.engine.planning import DomainWork, plan_domain
from reconciler.engine.reader import ReadOnlyReader
from reconciler.engine.status import Outcome, Report, next_status
from reconciler.engine.store import Generation, Store
from reconciler.engine.verify import describe
from reconciler.errors import AiosError, StalePlan
from reconciler.plan import Plan, PlanBinding, canonical_digest
from registry.tooling import ToolSpec
from specs.base import Resource
from specs.kinds import KIND_MODELS
from specs.specset import SpecSet


@dataclass(frozen=True)
class Target:
    """Where specs are applied: a registry address and a state directory."""

    name: str
    address: str
    state_dir: Path
    agent_id: str = "aios-reconciler"
    sandbox: str | None = None


@dataclass(frozen=True)
class Merge:
    """The target's resource set after applying a spec set."""

    specset: SpecSet
    pruned: Mapping[str, frozenset[str]]  # resource key -> objects it created
    previous: Generation | None
    generation: int  # the generation this set is, or would become

    def documents(self) -> list[dict[str, Any]]:
        return [
            r.model_dump(mode="json", by_alias=True, exclude_unset=True)
            for r in self.specset.resources
        ]


@dataclass
class Planned:
    plan: Plan
    merge: Merge
    works: dict[str, DomainWork]
    catalogue: Mapping[str, ToolSpec]


@dataclass
class ApplyResult:
    generation: int
    reports: list[Report] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # domain -> one-line summary
    stale: list[str] = field(default_factory=list)
    destructive_refused: list[str] = field(default_factory=list)

    @property
    def all_ready(self) -> bool:
        return all(r.outcome == "ready" for r in self.reports)


Confirm = Callable[[Plan], bool]


class Engine:
    def __init__(
        self,
        target: Target,
        store: Store,
        client: Any,
        controllers: Mapping[str, Controller[Any]],
    ) -> None:
        self.target = target
        self.store = store
        self.client = client
        self.controllers = controllers
        self._catalogue: dict[str, ToolSpec] | None = None

    # --- inputs ----------------------------------------------------------------

    async def catalogue(self) -> dict[str, ToolSpec]:
        if self._catalogue is None:
            self._catalogue = dict(await self.client.list_tools())
        return self._catalogue

    def merge(
        self, applied: SpecSet | None, *, prune: bool = False, replace: bool = False
    ) -> Merge:
        """Combine `applied` with the target's current set (see module doc)."""
        previous = self.store.current_generation(self.target.name)
        before = generation_documents(previous)
        incoming = {r.key: r for r in applied.resources} if applied else {}
        dropped = set(before) - set(incoming) if (prune or replace) else set()
        # Only resources the incoming set does not replace are rebuilt (validated again).
        kept = () if replace else (k for k in before if k not in incoming and k not in dropped)
        merged = {**{k: load_document(before[k]) for k in kept}, **incoming}
        specset = SpecSet.from_resources(tuple(merged.values()))
        owned = self.store.inventory(self.target.name)
        pruned = {key: owned.get(key, frozenset()) for key in sorted(dropped)}
        same = previous is not None and previous.digest == specset.digest and not pruned
        number = (
            previous.generation
            if (same and previous)
            else ((previous.generation if previous else 0) + 1)
        )
        return Merge(specset, pruned, previous, number)

    def desired(self, domain: str, merge: Merge) -> Desired:
        kinds = {k for k, d in KIND_DOMAIN.items() if d == domain}
        owned = self.store.inventory(self.target.name, domain)
        return Desired(
            domain=domain,
            resources=tuple(r for r in merge.specset.resources if r.kind in kinds),
            owned={k: v for k, v in owned.items() if k not in merge.pruned},
            pruned={k: v for k, v in merge.pruned.items() if domain_of(k) == domain},
        )

    def involved(self, merge: Merge) -> list[str]:
        """Domains with resources or objects to prune; others are not even observed.

        Only these domains' controllers are looked up (a lazy mapping imports
        nothing else).
        """
        wanted = {KIND_DOMAIN[r.kind] for r in merge.specset.resources}
        wanted.update(domain_of(k) for k in merge.pruned)
        return [d for d in DOMAINS if d in wanted and d in self.controllers]

    # --- plan --------------------------------------------------------------------

    async def plan(self, merge: Merge) -> Planned:
        catalogue = await self.catalogue()
        reader = ReadOnlyReader(
            self.client, catalogue, reason="aios plan: observe", cache=self.store
        )
        domains = self.involved(merge)
        works = await asyncio.gather(
            *(
                plan_domain(self.controllers[d], self.desired(d, merge), reader, catalogue)
                for d in domains
            )
        )
        binding = PlanBinding(
            target=self.target.name,
            spec_digest=merge.specset.digest,
            catalogue_hash=catalogue_hash(catalogue),
            aios_version=__version__,
            generation=merge.generation,
        )
        plans = tuple(w.plan for w in works if w.plan is not None)
        return Planned(
            Plan(binding=binding, domains=plans), merge, {w.domain: w for w in works}, catalogue
        )

    def check_binding(self, saved: Plan, planned: Planned) -> None:
        fresh = planned.plan.binding
        problems = [
            f"{name} was {old!r}, now {new!r}"
            for name, old, new in (
                ("target", saved.binding.target, fresh.target),
                ("spec digest", saved.binding.spec_digest, fresh.spec_digest),
                ("tool catalogue", saved.binding.catalogue_hash, fresh.catalogue_hash),
                ("aios version", saved.binding.aios_version, fresh.aios_version),
            )
            if old != new
        ]
        if problems:
            raise StalePlan("saved plan is stale: " + "; ".join(problems) + "; run aios plan again")

    # --- apply -------------------------------------------------------------------

    async def apply(
        self,
        planned: Planned,
        *,
        assume_yes: bool,
        saved: Plan | None = None,
        progress: ProgressFn | None = None,
    ) -> ApplyResult:
        """Execute `planned` (or the `saved` plan it was checked against)."""
        if saved is not None:
            self.check_binding(saved, planned)
        merge = planned.merge
        with self.store.writer():
            generation = self._record_generation(merge)
            run = uuid.uuid4().hex[:12]
            self.store.start_run(run, self.target.name, generation)
            result = ApplyResult(generation)
            deps = dependencies(merge.specset.resources)
            done: dict[str, asyncio.Event] = {d: asyncio.Event() for d in planned.works}
            ok: dict[str, bool] = {}
            changed: dict[str, bool] = {}

            async def run_domain(domain: str) -> None:
                try:
                    waits = [d for d in deps.get(domain, ()) if d in done]
                    for dep in waits:
                        await done[dep].wait()
                    failed = [d for d in waits if not ok.get(d, False)]
                    work = planned.works[domain]
                    if failed:
                        self._stall(
                            result,
                            work,
                            "DependencyNotReady",
                            f"waiting for domain(s) {', '.join(failed)} to be Ready",
                        )
                        ok[domain] = False
                        return
                    dep_changed = any(changed.get(d) for d in waits)
                    ok[domain], changed[domain] = await self._run_domain(
                        work,
                        planned,
                        result,
                        run=run,
                        saved=saved,
                        assume_yes=assume_yes,
                        dep_changed=dep_changed,
                        progress=progress,
                    )
                except Exception:
                    ok[domain] = False
                    raise
                finally:
                    done[domain].set()

            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(run_domain(d) for d in planned.works), return_exceptions=True
            )
            for domain, outcome in zip(planned.works, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    work = planned.works[domain]
                    self._stall(
                        result, work, "InternalError", f"{type(outcome).__name__}: {outcome}"
                    )
            for key in merge.pruned:
                if ok.get(domain_of(key), False):
                    self.store.forget_resource(self.target.name, key)
            self._write_statuses(
                result, merge, generation, int((time.monotonic() - started) * 1000)
            )
            self.store.finish_run(
                run,
                "ready" if result.all_ready else "not-ready",
                "; ".join(f"{d}: {s}" for d, s in sorted(result.outcomes.items())),
            )
        return result

    def _record_generation(self, merge: Merge) -> int:
        previous = merge.previous
        if previous is not None and merge.generation == previous.generation:
            return previous.generation
        gen = self.store.add_generation(
            self.target.name,
            merge.specset.digest,
            merge.documents(),
            note=f"pruned {', '.join(merge.pruned)}" if merge.pruned else "",
        )
        return gen.generation

    async def _run_domain(
        self,
        work: DomainWork,
        planned: Planned,
        result: ApplyResult,
        *,
        run: str,
        saved: Plan | None,
        assume_yes: bool,
        dep_changed: bool,
        progress: ProgressFn | None,
    ) -> tuple[bool, bool]:
        """Run one domain; returns (ok, changed anything)."""
        domain, controller = work.domain, work.controller
        catalogue = planned.catalogue
        shown = saved.domain(domain) if saved is not None else work.plan
        if work.error is None and (saved is not None or dep_changed):
            # Re-observe: a saved plan is old, and dependencies may have moved the state.
            fresh = await plan_domain(
                controller,
                work.desired,
                ReadOnlyReader(
                    self.client, catalogue, reason="aios apply: observe", cache=self.store
                ),
                catalogue,
            )
            if fresh.error is None and fresh.plan is not None and shown is not None:
                same_state = fresh.plan.state_fingerprint == shown.state_fingerprint
                same_steps = fresh.plan.steps == shown.steps
                if saved is not None and not same_state:
                    result.stale.append(domain)
                    self._stall(
                        result,
                        fresh,
                        "StalePlan",
                        "the observed state changed since the saved plan was made; "
                        "run aios plan again",
                    )
                    return False, False
                if not same_steps and not assume_yes:
                    self._stall(
                        result,
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
            self._report_all(result, work, kind, type(work.error).__name__, str(work.error))
            result.outcomes[domain] = f"observe/plan failed: {work.error}"
            return False, False
        steps = work.steps
        if saved is not None and shown is not None:
            steps = shown.steps  # execute exactly what was reviewed (the state matched)
        if work.verdict.destructive:
            result.destructive_refused.append(domain)
            self._report_all(
                result, work, "stalled", "DestructiveRefused", " ".join(work.verdict.destructive)
            )
            result.outcomes[domain] = "refused: destructive step without force"
            return False, False
        if work.verdict.findings:
            self._report_all(
                result, work, "stalled", "PlanRejected", " ".join(work.verdict.findings)
            )
            result.outcomes[domain] = "plan rejected by the verifier"
            return False, False
        if steps:
            client: Executor = self.client
            outcome: ExecOutcome = await execute(
                controller.transactions(steps),
                client=client,
                catalogue=catalogue,
                store=self.store,
                run=run,
                target=self.target.name,
                domain=domain,
                reason=f"aios apply {self.target.name} generation {planned.merge.generation}",
                progress=progress,
            )
            if not outcome.ok:
                self._report_all(result, work, "degraded", "StepFailed", outcome.summary())
                result.outcomes[domain] = outcome.summary()
                return False, bool(outcome.not_undone)
            self._record_inventory(work)
        return await self._verify_after(work, planned, result, executed=bool(steps))

    async def _verify_after(
        self, work: DomainWork, planned: Planned, result: ApplyResult, *, executed: bool
    ) -> tuple[bool, bool]:
        domain, controller = work.domain, work.controller
        state = work.state
        if executed:
            reader = ReadOnlyReader(
                self.client, planned.catalogue, reason="aios apply: verify", cache=self.store
            )
            try:
                state = await controller.observe(reader, work.desired)
            except AiosError as exc:
                self._report_all(result, work, "degraded", "VerifyFailed", str(exc))
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
                mode = self._mode(planned.merge, key)
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

    def _record_inventory(self, work: DomainWork) -> None:
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
            self.store.update_inventory(self.target.name, work.domain, added=added, removed=removed)

    def _mode(self, merge: Merge, key: str) -> str:
        resource = merge.specset.get(key)
        return resource.spec.mode if resource is not None else "enforce"

    def _stall(self, result: ApplyResult, work: DomainWork, reason: str, message: str) -> None:
        self._report_all(result, work, "stalled", reason, message)
        result.outcomes[work.domain] = f"{reason}: {message}"

    def _report_all(
        self, result: ApplyResult, work: DomainWork, outcome: Outcome, reason: str, message: str
    ) -> None:
        for key in work.resource_keys:
            changes = sum(1 for c in work.diff.changes if c.resource == key)
            result.reports.append(Report(key, work.domain, outcome, reason, message, changes))

    def _write_statuses(
        self, result: ApplyResult, merge: Merge, generation: int, duration_ms: int
    ) -> None:
        for report in result.reports:
            if report.resource in merge.pruned:
                continue
            resource = merge.specset.get(report.resource)
            revision = (
                canonical_digest(
                    resource.model_dump(mode="json", by_alias=True, exclude_unset=True)
                )[:12]
                if resource is not None
                else ""
            )
            previous = self.store.status(self.target.name, report.resource)
            self.store.put_status(
                self.target.name,
                next_status(
                    report,
                    previous,
                    generation=generation,
                    revision=revision,
                    duration_ms=duration_ms,
                ),
            )


def load_generation(generation: Generation | None) -> list[Resource]:
    """Rebuild the validated resources a stored generation holds."""
    if generation is None:
        return []
    return [load_document(doc) for doc in generation.documents]


def load_document(doc: Mapping[str, Any]) -> Resource:
    """One stored document, validated again into its kind's model."""
    return KIND_MODELS[doc["kind"]].model_validate(doc)


def generation_documents(generation: Generation | None) -> dict[str, Mapping[str, Any]]:
    """A stored generation's documents by resource key (Kind/name), not validated."""
    if generation is None:
        return {}
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in generation.documents}


def catalogue_hash(catalogue: Mapping[str, ToolSpec]) -> str:
    return canonical_digest(
        {
            name: {
                "in": dict(spec.input_schema),
                "out": dict(spec.output_schema),
                "risk": spec.risk,
                "caps": list(spec.capabilities),
                "version": spec.version,
                "reversible": spec.reversible,
                "idempotent": spec.idempotent,
            }
            for name, spec in sorted(catalogue.items())
        }
    )
