"""The reconcile engine: merge specs into a target's set, plan, apply, report.

`Engine.plan()` observes every involved domain once (concurrently; reads
only), diffs, plans by rules and verifies; the resulting `Plan` is what
`aios plan` prints and saves. `Engine.apply()` executes such a plan domain by
domain in dependency order (independent domains concurrently; one failing
domain never stops the others, but its dependents wait), journals every
call, undoes a failed domain's calls, re-observes (briefly again while drift
remains) and requires an empty diff, undoing the domain's reversible calls
when drift stays, then records status, inventory and the generation.

Apply semantics: resources are keyed by Kind/name; applying a set creates or
updates those resources; resources applied earlier and absent from the set
stay unless `prune`, which removes what they created. `replace` (used by
`aios rollback GEN`) makes the target's set exactly the given one.

A generation is the spec set that was applied: it is recorded when the apply
ends, and a resource whose spec did not take effect (it could not be planned,
was refused or blocked, or its calls failed, or drifted after them, and were
undone) keeps the spec of the previous generation, or is not in the set at all
if it is new. So a
failed resource never poisons later applies of other specs (they plan from
the set that holds), and `aios rollback` never replays a spec that did not
apply. Statuses of resources that are in no generation and were not part of
this run are dropped. A saved plan runs only when it equals a fresh plan for
the same binding (`check_saved`): stale (exit 3) when what it was made from
changed, refused as altered (exit 1) when its content differs.
Used by the CLI (reconciler.cli.plan_cmds) and, later, the daemon.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from contract.tooldef import ToolSpec
from reconciler import __version__
from reconciler.engine.apply import (
    ApplyContext,
    DomainOutcome,
    apply_domain,
    mark_reconciling,
    saved_domain_problem,
    stalled,
)
from reconciler.engine.execute import ProgressFn
from reconciler.engine.order import dependencies
from reconciler.engine.planning import DomainWork, plan_domain
from reconciler.engine.reader import ReadOnlyReader
from reconciler.engine.status import Report, next_status
from reconciler.engine.store import Generation, ResourceStatus, Store
from reconciler.sdk.controller import Controller, Desired
from reconciler.sdk.errors import PlanRejected, StalePlan
from reconciler.sdk.plan import Plan, PlanBinding, PlanFailure, canonical_digest
from reconciler.sdk.ports import Registry
from reconciler.sdk.retry import Retry, Sleep
from specs.base import Resource
from specs.domains import Domains
from specs.kinds import KindTable
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
        return documents(self.specset)


@dataclass(frozen=True)
class Planned:
    """What Engine.plan made: the plan, the merge it is for, each domain's work.

    `saved`: a saved plan Engine.check_saved accepted for this one (its
    binding and content are then not checked again by Engine.apply).
    `complete`: False when only some involved domains were planned (the daemon's
    dirty ones); applying it records the others' resources unchanged.
    """

    plan: Plan
    merge: Merge
    works: Mapping[str, DomainWork]
    catalogue: Mapping[str, ToolSpec]
    saved: Plan | None = None
    complete: bool = True  # False: planned for some domains only (Engine.plan's `only`)
    approved: frozenset[str] = frozenset()  # propose-mode resources planned as enforce
    held: frozenset[str] = frozenset()  # suspended resources: diffed, not planned


@dataclass(frozen=True)
class ApplyResult:
    """What Engine.apply concluded: the generation, reports per resource, and per
    domain a one-line summary; `stale` and `destructive_refused` name domains."""

    generation: int
    reports: list[Report] = field(default_factory=list)
    summaries: dict[str, str] = field(default_factory=dict)  # domain -> one-line summary
    stale: list[str] = field(default_factory=list)
    destructive_refused: list[str] = field(default_factory=list)

    @property
    def all_ready(self) -> bool:
        return all(r.outcome == "ready" for r in self.reports)


Confirm = Callable[[Plan], bool]
VERIFY_DELAYS = (0.05, 0.1, 0.2)  # kernel state can lag a call: observe again after these


class Engine:
    def __init__(
        self,
        target: Target,
        store: Store,
        client: Registry,
        controllers: Mapping[str, Controller[Any]],
        domains: Domains,
        *,
        retries: int = 3,
        backoff_s: float = 0.2,
        sleep: Sleep = asyncio.sleep,
        verify_delays: tuple[float, ...] = VERIFY_DELAYS,
    ) -> None:
        """`retries`, `backoff_s`, `sleep`: how a TemporaryError of a read or of a
        write the registry refused before running it is retried (reconciler.sdk.retry);
        `client` must not retry on its own (the CLI makes it with attempts=1).
        `verify_delays`: while drift remains after executing, the domain is observed
        again after each of these waits (through `sleep`) before its calls are undone."""
        self.target = target
        self.store = store
        self.client = client
        self.controllers = controllers
        self.domains = domains  # kinds, order, default dependencies (specs.domains)
        self.retry = Retry(retries=retries, backoff_s=backoff_s, sleep=sleep)
        self.verify_delays = verify_delays
        self._catalogue: dict[str, ToolSpec] | None = None
        self.stop: Callable[[], bool] | None = None  # the daemon's "shutting down" (execute)

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
        kinds = self.domains.kinds
        merged = {**{k: load_document(before[k], kinds) for k in kept}, **incoming}
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

    def desired(
        self,
        domain: str,
        merge: Merge,
        approved: frozenset[str] = frozenset(),
        held: frozenset[str] = frozenset(),
    ) -> Desired:
        kinds = set(self.domains[domain].kinds)
        owned = self.store.inventory(self.target.name, domain)
        return Desired(
            domain=domain,
            resources=tuple(r for r in merge.specset.resources if r.kind in kinds),
            owned={k: v for k, v in owned.items() if k not in merge.pruned},
            pruned={k: v for k, v in merge.pruned.items() if self.domains.domain_of(k) == domain},
            approved=approved,
            held=held,
        )

    def involved(self, merge: Merge) -> list[str]:
        """Domains with resources or objects to prune; others are not even observed.

        Only these domains' controllers are looked up (a lazy mapping imports
        nothing else).
        """
        wanted = self._wanted(merge)
        return [d for d in self.domains.names if d in wanted and d in self.controllers]

    def _wanted(self, merge: Merge) -> set[str]:
        wanted = {self.domains.kind_domain[r.kind] for r in merge.specset.resources}
        wanted.update(self.domains.domain_of(k) for k in merge.pruned)
        return wanted

    def uncontrolled(self, merge: Merge) -> dict[str, tuple[str, ...]]:
        """Domains the set involves that this aios has no controller for -> their resources."""
        wanted = self._wanted(merge)
        missing = [d for d in self.domains.names if d in wanted and d not in self.controllers]
        keys = [r.key for r in merge.specset.resources] + list(merge.pruned)
        of = self.domains.domain_of
        return {d: tuple(sorted(k for k in keys if of(k) == d)) for d in missing}

    # --- plan --------------------------------------------------------------------

    async def plan(
        self,
        merge: Merge,
        *,
        only: Collection[str] | None = None,
        approved: Collection[str] = (),
        held: Collection[str] = (),
        reason: str = "aios plan",
    ) -> Planned:
        """Observe, diff, plan and verify every involved domain (or the `only` ones:
        the daemon plans the domains that are dirty; the others are not observed, and
        an apply of such a plan keeps their resources' previous specs). `approved`:
        propose-mode resources planned (and then applied) as if enforced; `held`:
        resources diffed but not planned (suspended), reported as drift."""
        allowed = frozenset(approved)
        holding = frozenset(held)
        catalogue = await self.catalogue()
        reader = ReadOnlyReader(
            self.client, catalogue, reason=f"{reason}: observe", cache=self.store, retry=self.retry
        )
        domains = [d for d in self.involved(merge) if only is None or d in only]
        works = await asyncio.gather(
            *(
                plan_domain(
                    self.controllers[d], self.desired(d, merge, allowed, holding), reader, catalogue
                )
                for d in domains
            )
        )
        binding = PlanBinding(
            target=self.target.name,
            spec_digest=merge.specset.digest,
            catalogue_hash=catalogue_hash(catalogue),
            aios_version=__version__,
            generation=merge.generation,
            inventory_digest=canonical_digest(
                {k: sorted(v) for k, v in sorted(self.store.inventory(self.target.name).items())}
            ),
        )
        plans = tuple(w.plan for w in works if w.plan is not None)
        failures = [f for w in works for f in w.failures()]
        failures.extend(
            PlanFailure(
                domain=domain,
                reason="NoController",
                message=f"this aios has no controller for the {domain} domain "
                f"({', '.join(keys)}); nothing of it can be planned",
            )
            for domain, keys in self.uncontrolled(merge).items()
            if only is None or domain in only
        )
        return Planned(
            Plan(binding=binding, domains=plans, failures=tuple(failures)),
            merge,
            {w.domain: w for w in works},
            catalogue,
            complete=only is None,
            approved=allowed,
            held=holding,
        )

    def check_binding(self, saved: Plan, planned: Planned) -> None:
        """StalePlan when the saved plan was made for another target, spec set,
        catalogue, aios version, generation or inventory."""
        fresh = planned.plan.binding
        problems = [
            f"{name} was {old!r}, now {new!r}"
            for name, old, new in (
                ("target", saved.binding.target, fresh.target),
                ("spec digest", saved.binding.spec_digest, fresh.spec_digest),
                ("tool catalogue", saved.binding.catalogue_hash, fresh.catalogue_hash),
                ("aios version", saved.binding.aios_version, fresh.aios_version),
                ("generation", saved.binding.generation, fresh.generation),
                ("inventory", saved.binding.inventory_digest, fresh.inventory_digest),
            )
            if old != new
        ]
        if problems:
            raise StalePlan("saved plan is stale: " + "; ".join(problems) + "; run aios plan again")

    def check_saved(self, saved: Plan, planned: Planned, *, state: bool = True) -> Planned:
        """Accept `saved` only when it equals the fresh `planned` for the same binding.

        Raises StalePlan (exit 3) when the binding or (with `state`) any
        domain's observed state differs, PlanRejected (exit 1) when the
        content differs (an altered plan), naming the first difference.
        Returns `planned` with `saved` accepted: `apply` of it does not check
        again. Nothing is executed from `saved` itself: the apply runs the
        fresh, verified steps. Without `state`, a domain whose state moved is
        left to `apply`, which re-observes it and stalls it as StalePlan.
        """
        self.check_binding(saved, planned)
        stale: list[str] = []
        altered: list[str] = []
        for domain in sorted({d.domain for d in saved.domains} - set(planned.works)):
            altered.append(f"{domain}: the saved plan has a {domain} domain, which these specs "
                           "do not involve")  # fmt: skip
        for work in planned.works.values():
            problem = saved_domain_problem(saved, work)
            if problem is not None:
                (stale if problem[0] else altered).append(problem[1])
        if stale and state:
            raise StalePlan("saved plan is stale: " + "; ".join(stale) + "; run aios plan again")
        if altered:
            raise PlanRejected(
                [
                    "saved plan does not match a fresh plan for the same binding (altered?): "
                    f"{altered[0]}; nothing was run; make a new one with aios plan --out"
                ]
            )
        return replace(planned, saved=saved)

    # --- apply -------------------------------------------------------------------

    async def apply(
        self,
        planned: Planned,
        *,
        assume_yes: bool,
        saved: Plan | None = None,
        progress: ProgressFn | None = None,
    ) -> ApplyResult:
        """Execute `planned`; with `saved`, only if the saved plan equals it (check_saved).

        Each domain's `apply_domain` returns a DomainOutcome; they are folded
        here: inventory as each domain ends, then reports, generation,
        statuses and the run's summary.
        """
        if saved is not None and planned.saved is not saved:
            planned = self.check_saved(saved, planned, state=False)
        merge = planned.merge
        with self.store.writer():
            run = uuid.uuid4().hex[:12]
            self.store.start_run(run, self.target.name, merge.generation)
            before: dict[str, ResourceStatus | None] = {}
            for work in planned.works.values():  # persisted before the first call runs
                before.update(mark_reconciling(self.store, self.target.name, run, work))
            context = ApplyContext(
                target=self.target.name,
                client=self.client,
                store=self.store,
                catalogue=planned.catalogue,
                run=run,
                generation=merge.generation,
                modes={
                    r.key: "audit"
                    if r.key in planned.held
                    else ("enforce" if r.key in planned.approved else r.spec.mode)
                    for r in merge.specset.resources
                },
                saved=saved,
                assume_yes=assume_yes,
                progress=progress,
                marked=frozenset(before),
                retry=self.retry,
                verify_delays=self.verify_delays,
                stop=self.stop,
            )
            uncontrolled = [
                Report(key, domain, "stalled", "NoController",
                       f"this aios has no controller for the {domain} domain", 0, False)
                for domain, keys in self.uncontrolled(merge).items()
                for key in keys
            ]  # fmt: skip
            deps = dependencies(merge.specset.resources, self.domains)
            done: dict[str, asyncio.Event] = {d: asyncio.Event() for d in planned.works}
            outcomes: dict[str, DomainOutcome] = {}

            async def run_domain(domain: str) -> None:
                work = planned.works[domain]
                outcome: DomainOutcome | None = None
                try:
                    waits = [d for d in deps.get(domain, ()) if d in done]
                    for dep in waits:
                        await done[dep].wait()
                    failed = [d for d in waits if not (d in outcomes and outcomes[d].ok)]
                    try:
                        if failed and work.error is None:  # its own planning error says more
                            outcome = stalled(
                                work,
                                "DependencyNotReady",
                                f"waiting for domain(s) {', '.join(failed)} to be Ready",
                            )
                        else:
                            observes = self.domains[domain].observes_changes_of
                            dep_changed = any(outcomes[d].changed for d in waits if d in observes)
                            outcome = await apply_domain(context, work, dep_changed=dep_changed)
                        self._record_inventory(outcome)
                    except Exception as exc:  # one domain's bug never stops the others
                        outcome = stalled(work, "InternalError", f"{type(exc).__name__}: {exc}")
                finally:
                    if outcome is not None:
                        outcomes[domain] = outcome
                    done[domain].set()

            started = time.monotonic()
            await asyncio.gather(*(run_domain(d) for d in planned.works))
            ran = [outcomes[d] for d in planned.works]  # in domain order
            for outcome in ran:
                before.update(outcome.marked)
            ok = {o.domain: o.ok for o in ran}
            result = ApplyResult(
                merge.generation,
                reports=uncontrolled + [r for o in ran for r in o.reports],
                summaries={o.domain: o.summary for o in ran},
                stale=[o.domain for o in ran if o.stale],
                destructive_refused=[o.domain for o in ran if o.destructive_refused],
            )
            forgotten = [key for key in merge.pruned if ok.get(self.domains.domain_of(key), False)]
            for key in forgotten:
                self.store.forget_resource(self.target.name, key)
            partial = None if planned.complete else set(planned.works)
            applied = self.applied_set(merge, result, forgotten, partial)
            result = replace(result, generation=self._record_generation(merge, applied, forgotten))
            self._write_statuses(
                result,
                merge,
                result.generation,
                int((time.monotonic() - started) * 1000),
                before=before,
                forgotten=set(forgotten),
            )
            self._drop_unmanaged_statuses(applied, result)
            self.store.finish_run(
                run,
                "ready" if result.all_ready else "not-ready",
                "; ".join(f"{d}: {s}" for d, s in sorted(result.summaries.items())),
            )
        return result

    def _record_inventory(self, outcome: DomainOutcome) -> None:
        """Objects a domain's calls created join the inventory; removed ones leave it."""
        if outcome.added or outcome.removed:
            self.store.update_inventory(
                self.target.name,
                outcome.domain,
                added={k: set(v) for k, v in outcome.added.items()},
                removed={k: set(v) for k, v in outcome.removed.items()},
            )

    def applied_set(
        self,
        merge: Merge,
        result: ApplyResult,
        forgotten: list[str],
        planned_domains: Collection[str] | None = None,
    ) -> SpecSet:
        """The spec set that took effect (see the module doc): merge's resources, except
        that one whose report says it was not applied keeps its previous spec (or is
        absent when new), and a pruned resource whose removal failed stays."""
        not_applied = {r.resource for r in result.reports if not r.applied}
        if planned_domains is not None:  # a partial plan: other domains did not run
            of = self.domains.domain_of
            not_applied.update(
                r.key for r in merge.specset.resources if of(r.key) not in planned_domains
            )
        if not not_applied and len(forgotten) == len(merge.pruned):
            return merge.specset  # everything took effect (the usual case: no re-digest)
        before = generation_documents(merge.previous)
        resources: list[Resource] = []
        for resource in merge.specset.resources:
            if resource.key not in not_applied:
                resources.append(resource)
            elif resource.key in before:
                kept = _revalidated(before[resource.key], self.domains.kinds)
                if kept is not None:
                    resources.append(kept)
        for key in merge.pruned:
            if key not in forgotten and key in before:
                kept = _revalidated(before[key], self.domains.kinds)
                if kept is not None:
                    resources.append(kept)
        return SpecSet.from_resources(resources)

    def _record_generation(self, merge: Merge, applied: SpecSet, forgotten: list[str]) -> int:
        """The generation `applied` is: the previous one when unchanged, else a new one."""
        previous = merge.previous
        if previous is not None and previous.digest == applied.digest:
            return previous.generation
        if previous is None and not applied.resources:
            return 0
        gen = self.store.add_generation(
            self.target.name,
            applied.digest,
            documents(applied),
            note=f"pruned {', '.join(forgotten)}" if forgotten else "",
        )
        return gen.generation

    def _write_statuses(
        self,
        result: ApplyResult,
        merge: Merge,
        generation: int,
        duration_ms: int,
        *,
        before: Mapping[str, ResourceStatus | None],
        forgotten: set[str],
    ) -> None:
        for report in result.reports:
            if report.resource in forgotten:
                continue
            resource = merge.specset.get(report.resource)
            revision = (
                canonical_digest(
                    resource.model_dump(mode="json", by_alias=True, exclude_unset=True)
                )[:12]
                if resource is not None
                else ""
            )
            previous = (
                before[report.resource]
                if report.resource in before
                else self.store.status(self.target.name, report.resource)
            )
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

    def _drop_unmanaged_statuses(self, applied: SpecSet, result: ApplyResult) -> None:
        """Statuses of resources in no generation that this run did not report on
        (an earlier apply that failed or was interrupted) go: nothing manages them."""
        keep = set(applied.keys()) | {r.resource for r in result.reports}
        for status in self.store.statuses(self.target.name):
            if status.resource not in keep:
                self.store.drop_status(self.target.name, status.resource)


def documents(specset: SpecSet) -> list[dict[str, Any]]:
    """A spec set's resources as the documents a generation stores."""
    return [r.model_dump(mode="json", by_alias=True, exclude_unset=True) for r in specset.resources]


def _revalidated(doc: Mapping[str, Any], kinds: KindTable) -> Resource | None:
    """A stored document as a resource again; None when it no longer validates."""
    try:
        return load_document(doc, kinds)
    except ValueError:
        return None


def load_generation(generation: Generation | None, kinds: KindTable) -> list[Resource]:
    """Rebuild the validated resources a stored generation holds (`kinds`: the engine's
    kind table, Engine.domains.kinds)."""
    if generation is None:
        return []
    return [load_document(doc, kinds) for doc in generation.documents]


def load_document(doc: Mapping[str, Any], kinds: KindTable) -> Resource:
    """One stored document, validated again into its kind's model (`kinds`: the
    engine's kind table, Engine.domains.kinds)."""
    return kinds.model(doc["kind"], Resource).model_validate(doc)


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
