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
from reconciler.engine.apply import ApplyRun
from reconciler.engine.execute import ProgressFn
from reconciler.engine.order import DOMAINS, KIND_DOMAIN, dependencies, domain_of
from reconciler.engine.planning import DomainWork, plan_domain
from reconciler.engine.reader import ReadOnlyReader
from reconciler.engine.status import Report, next_status
from reconciler.engine.store import Generation, Store
from reconciler.errors import StalePlan
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
            runner = ApplyRun(
                target=self.target.name,
                client=self.client,
                store=self.store,
                planned=planned,
                result=result,
                run=run,
                saved=saved,
                assume_yes=assume_yes,
                progress=progress,
            )
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
                        runner.stall(
                            work,
                            "DependencyNotReady",
                            f"waiting for domain(s) {', '.join(failed)} to be Ready",
                        )
                        ok[domain] = False
                        return
                    observes = work.controller.observes_changes_of
                    dep_changed = any(changed.get(d) for d in waits if d in observes)
                    ok[domain], changed[domain] = await runner.domain(work, dep_changed=dep_changed)
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
                    runner.stall(
                        planned.works[domain],
                        "InternalError",
                        f"{type(outcome).__name__}: {outcome}",
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
