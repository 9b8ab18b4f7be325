"""The daemon: keep the target matching its specs directories, event by event.

reconciler.cli.daemon_cmd builds one `Daemon` over an Engine (handed in: this
package never imports controllers, the registry or the sandbox), a SpecSource
and, when the registry has one, its change feed; `run()` works until `stop()`.
The daemon's API (reconciler.daemon.api) serves it as a DaemonService.

How work flows:

- **Dirty domains.** Every cause of work marks one or more domains dirty with
  a reason: `start`, `spec` (a spec file changed: the domains whose resources
  changed), `drift` (the change feed reported a change in that domain),
  `resync` (the feed (re)connected, or the long safety interval passed),
  `poll` (no feed: the fallback interval), `manual` (aios reconcile), `resume`.
  The queue is keyed by domain, not by resource: a domain is observed,
  diffed, planned and proven as a whole (its planner and effect model see the
  whole domain), so one dirty resource costs its domain's observe anyway;
  de-duplication per domain is the same work with fewer batches. Backoff,
  suspension and Fighting holds are per domain too; a suspended resource is
  held (diffed, not planned) inside its domain.
- **Batches.** The worker takes every dirty domain that is ready (not backing
  off, not held, not suspended) into one batch and plans only those
  (Engine.plan `only=`); the engine runs the batch's domains concurrently and
  in dependsOn order. One batch at a time, under the lock that the API's
  apply/approve also take: the daemon is the one writer of the target.
- **Supersede.** A spec change for a domain of the batch being planned
  cancels that batch (nothing ran yet) and the work starts again on the new
  set; a batch already executing finishes (its steps are journaled) and the
  domain runs again at once.
- **Quiet batches.** When the fresh observe shows no difference, the spec
  set did not change and every resource of those domains is Ready, nothing
  is written: no run, no generation, no status row (an idle poll costs one
  observe and nothing else).
- **Backoff.** A domain with a Degraded resource backs off exponentially
  (reconciler.daemon.backoff); a Stalled one (a permanent error) is not
  retried until its spec digest changes; a success resets it. One failing
  domain never blocks another.
- **Heals and Fighting.** A batch that changed something without a spec
  change healed drift; the resources healed are counted by
  reconciler.daemon.fighting, and a resource healed `fightingHeals` times
  within `fightingWindow` is Fighting: a Warning event and a condition name it
  and what the feed last saw change it, and its domain is held for an
  exponentially growing time before the next heal — never a spin.
- **Modes.** enforce heals; audit resources are reported (DriftDetected,
  status Drifted) and never planned; propose resources get a pending plan
  (reconciler.daemon.pending) that `aios approve ID` runs after checking it is
  still the plan a fresh observe gives (else exit 3, stale).
- **Stop.** `stop()` makes the engine's stop hook answer True: the step in
  flight finishes, the rest is journaled skipped, and the status says
  Interrupted; a batch still planning is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from reconciler.config import DriftSettings
from reconciler.daemon.backoff import Backoff
from reconciler.daemon.desired import DesiredSet
from reconciler.daemon.events import EventLog
from reconciler.daemon.fighting import Fighting
from reconciler.daemon.pending import PendingPlans, plan_id
from reconciler.daemon.ports import (
    ApplyOutcome,
    Event,
    EventType,
    Health,
    PendingPlan,
    StatusView,
)
from reconciler.daemon.source import SpecSource
from reconciler.engine.reconcile import ApplyResult, Engine, Merge, Planned
from reconciler.render import render_plan
from reconciler.sdk.errors import AiosError, PermanentError, StalePlan, TemporaryError
from reconciler.sdk.plan import Plan
from specs.errors import SpecError
from specs.loader import load_documents
from specs.specset import SpecSet, compute_digest

EXIT_FAILED, EXIT_CHANGES, EXIT_STALE, EXIT_DESTRUCTIVE = 1, 2, 3, 4
FEED_RETRY_CAP_S = 60.0  # reconnecting to a lost change feed backs off up to this
SPEC_REASONS = frozenset({"start", "spec", "api", "manual", "resume"})


class FeedChange(Protocol):
    """One change the registry's feed reported (reconciler.sdk.ports.Change)."""

    @property
    def domain(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def resync(self) -> bool: ...


class Feed(Protocol):
    """The registry's change feed (RegistryClient.changes); raises a TemporaryError
    (FeedUnavailable) when the registry has none or the stream broke."""

    def changes(self, domains: Sequence[str]) -> AsyncIterator[FeedChange]: ...


class MetricsSink(Protocol):
    """What the daemon records (reconciler.daemon.metrics.Metrics)."""

    def reconciled(self, domain: str, result: str, seconds: float) -> None: ...
    def drift_detected(self, domain: str) -> None: ...
    def drift_healed(self, domain: str) -> None: ...
    def set_queue_depth(self, depth: int) -> None: ...
    def set_fighting(self, count: int) -> None: ...
    def set_generation(self, generation: int) -> None: ...
    def set_feed_connected(self, connected: bool) -> None: ...
    def set_spec_errors(self, count: int) -> None: ...
    def events_dropped(self, count: int) -> None: ...


class Daemon:
    """The DaemonService (reconciler.daemon.ports) the daemon's API serves."""

    def __init__(
        self,
        engine: Engine,
        source: SpecSource,
        *,
        feed: Feed | None = None,
        settings: DriftSettings | None = None,
        metrics: MetricsSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        self.engine = engine
        self.source = source
        self.feed = feed
        self.settings = settings or DriftSettings()
        self.metrics = metrics
        self.clock = clock
        self.log = log or logging.getLogger("aios.daemon")
        self.events = EventLog(on_drop=self._dropped)
        self.desired = DesiredSet(engine)
        self.backoff = Backoff(clock)
        self.fighting = Fighting(
            clock, heals=self.settings.fighting_heals, window=self.settings.fighting_window
        )
        self.pending = PendingPlans()
        self.spec_errors: tuple[str, ...] = ()
        self.feed_state = "connecting" if feed is not None else "polling"
        self.ready = False
        self.batches = 0  # batches that planned (tests and the bench read it)
        self._dirty: dict[str, set[str]] = {}
        self._changed_by: dict[str, str] = {}  # domain -> what the feed last saw change
        self._hold_until: dict[str, float] = {}
        self._fights: dict[str, str] = {}  # resource -> condition message
        self._suspended: set[str] = set()  # domains and Kind/names
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._batch: asyncio.Task[None] | None = None
        self._batch_domains: frozenset[str] = frozenset()
        self._phase = "idle"  # idle | planning | executing
        self._executing: frozenset[str] = frozenset()  # domains whose calls run now
        self._combined: SpecSet | None = None
        self._tasks: list[asyncio.Future[None]] = []
        self._watchers: list[asyncio.Future[None]] = []
        engine.stop = lambda: self._stopping

    # --- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Load, reconcile everything once, then follow specs and drift until stop()."""
        self._load(first=True)
        self.desired.restore()
        self._combined = None
        self._mark(self.engine.domains.names, "start")
        worker = asyncio.ensure_future(self._worker())
        self._start_watchers()
        if self.feed is not None:
            self._tasks.append(asyncio.ensure_future(self._follow_feed()))
        try:
            await self._stop.wait()
            self._stopping = True
            self._wake.set()
            if self._batch is not None and self._phase == "planning":
                self._batch.cancel()  # nothing ran yet
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
        finally:
            worker.cancel()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(worker, *self._tasks, return_exceptions=True)

    def _start_watchers(self) -> None:
        self._watchers = [
            asyncio.ensure_future(c)
            for c in (self._watch_specs(), self._resync_timer(), self._poll_timer())
        ]
        self._tasks.extend(self._watchers)

    def reconfigure(self, source: SpecSource, settings: DriftSettings) -> None:
        """SIGHUP: new specs directories and drift settings; the set is loaded again."""
        self.source = source
        self.settings = settings
        self.fighting.heals = settings.fighting_heals
        self.fighting.window = settings.fighting_window
        for task in self._watchers:
            task.cancel()
            self._tasks.remove(task)
        self._start_watchers()
        self._emit("Normal", "Reconfigured", "", f"watching {', '.join(source.describe())}")
        self._load()

    def stop(self) -> None:
        """Finish the step in flight, start nothing new, and let run() return."""
        self._stopping = True
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def _worker(self) -> None:
        while not self._stopping:
            ready, wait = self._take_ready()
            if not ready:
                self._publish_queue()
                if not self.ready and not self._dirty:
                    self.ready = True
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            self._batch = asyncio.ensure_future(self._run_batch(ready))
            self._batch_domains = frozenset(ready)
            await asyncio.wait({self._batch})
            if self._batch.cancelled():  # superseded while planning: its reasons are back
                self.log.debug("batch %s superseded", sorted(ready))
            elif (exc := self._batch.exception()) is not None:
                self._emit("Warning", "InternalError", "", f"{type(exc).__name__}: {exc}")
                for domain in ready:
                    self.backoff.temporary(domain)
                    self._dirty.setdefault(domain, set()).update(ready[domain])
            self._batch = None
            self._batch_domains = frozenset()

    def _take_ready(self) -> tuple[dict[str, set[str]], float | None]:
        now = self.clock()
        ready: dict[str, set[str]] = {}
        wait: float | None = None
        for domain in list(self._dirty):
            if domain in self._suspended:
                continue
            held = self._hold_until.get(domain, 0.0) - now
            if not self.backoff.ready(domain, self._domain_digest(domain)):
                remaining = self.backoff.remaining(domain)
                if remaining > 0:  # 0: failed for good at this digest; waits for a change
                    wait = remaining if wait is None else min(wait, remaining)
                continue
            if held > 0:
                wait = held if wait is None else min(wait, held)
                continue
            ready[domain] = self._dirty.pop(domain)
        return ready, wait

    def _mark(self, domains: Iterable[str], reason: str, *, supersede: bool = False) -> None:
        marked = set(domains)
        for domain in marked:
            self._dirty.setdefault(domain, set()).add(reason)
        if (
            supersede
            and self._batch is not None
            and self._phase == "planning"
            and marked & self._batch_domains
        ):
            self._batch.cancel()
        self._publish_queue()
        self._wake.set()

    # --- one batch --------------------------------------------------------------------

    async def _run_batch(self, ready: dict[str, set[str]]) -> None:
        async with self._lock:
            try:
                await self._reconcile(ready)
            except asyncio.CancelledError:
                for domain, reasons in ready.items():
                    self._dirty.setdefault(domain, set()).update(reasons)
                raise
            finally:
                self._phase = "idle"

    async def _reconcile(
        self, ready: dict[str, set[str]]
    ) -> tuple[Planned | None, ApplyResult | None]:
        self._phase = "planning"
        merge = self.engine.merge(self._current(), replace=True)
        involved = set(self.engine.involved(merge))
        only = [d for d in self.engine.domains.names if d in ready and d in involved]
        if not only:
            return None, None
        reasons = sorted(set().union(*(ready[d] for d in only)))
        started = self.clock()
        self.batches += 1
        try:
            planned = await self.engine.plan(
                merge, only=only, held=self._held(), reason=f"aios daemon ({', '.join(reasons)})"
            )
        except AiosError as exc:
            self._failed(only, exc, started)
            return None, None
        if self._quiet(planned, merge):
            for domain in only:
                self.backoff.success(domain)
                self._record(domain, "noop", started)
            return planned, None
        self._phase = "executing"
        self.log.info(
            "reconciling %s (%s)", ", ".join(only), ", ".join(reasons),
            extra={"reason": "Reconciling", "domains": only},
        )  # fmt: skip
        try:
            with self._running(planned.works):
                result = await self.engine.apply(planned, assume_yes=True)
        except AiosError as exc:
            self._failed(only, exc, started)
            return planned, None
        self._settle(result, {d: ready[d] for d in only}, started)
        await self._propose(result, only)
        return planned, result

    @contextlib.contextmanager
    def _running(self, domains: Iterable[str]) -> Iterator[None]:
        """While these domains' calls run, what the feed reports is likely their echo."""
        self._executing = frozenset(domains)
        try:
            yield
        finally:
            self._executing = frozenset()

    def _quiet(self, planned: Planned, merge: Merge) -> bool:
        """Nothing to do and nothing to record: same set, no difference, all Ready."""
        previous = merge.previous
        if previous is None or previous.generation != merge.generation or merge.pruned:
            return False
        if planned.plan.has_changes or planned.plan.failures:
            return False
        if any(w.error is not None or w.diff.changes or w.blamed for w in planned.works.values()):
            return False
        domains = set(planned.works)
        statuses = self.engine.store.statuses(self.engine.target.name)
        mine = {s.resource: s for s in statuses if s.domain in domains}
        wanted = [r.key for r in merge.specset.resources if self._domain_of(r.key) in domains]
        return all(key in mine and mine[key].ready for key in wanted)

    def _failed(self, domains: Sequence[str], exc: AiosError, started: float) -> None:
        for domain in domains:
            if exc.retryable:  # TemporaryError, a busy or full state store
                delay = exc.delay if isinstance(exc, TemporaryError) else 0.0
                wait = self.backoff.temporary(domain, delay)
                self._dirty.setdefault(domain, set()).add("retry")
                message = f"{exc}; retrying in {wait:.1f} s"
            else:
                self.backoff.permanent(domain, self._domain_digest(domain))
                message = f"{exc}; not retried until its specs change"
            self._record(domain, "error", started)
            self._emit("Warning", "ReconcileFailed", domain, message)

    def _settle(self, result: ApplyResult, reasons: dict[str, set[str]], started: float) -> None:
        """Events, metrics, backoff and Fighting from one batch's reports."""
        by_domain: dict[str, list[str]] = {}
        for report in result.reports:
            domain = report.domain
            if domain not in reasons:
                continue
            by_domain.setdefault(domain, []).append(report.outcome)
            spec_caused = bool(reasons[domain] & SPEC_REASONS)
            where = report.resource
            if report.outcome == "ready" and report.changes:
                if spec_caused:
                    self._emit(
                        "Normal",
                        "Applied",
                        where,
                        f"{report.changes} change(s) applied",
                        result.generation,
                    )
                else:
                    self._healed(domain, where, report.changes, result.generation)
            elif report.outcome == "drifted":
                if self.metrics:
                    self.metrics.drift_detected(domain)
                self._emit(
                    "Warning",
                    "DriftDetected",
                    where,
                    f"{report.message} (mode audit: reported, not changed)",
                    result.generation,
                )
            elif report.outcome in ("degraded", "reconciling", "stalled"):
                self._emit(
                    "Warning",
                    "ReconcileFailed",
                    where,
                    f"{report.outcome} ({report.reason}): {report.message}",
                    result.generation,
                )
        for domain in reasons:
            outcomes = by_domain.get(domain, [])
            if "stalled" in outcomes:
                self.backoff.permanent(domain, self._domain_digest(domain))
                result_name = "stalled"
            elif "degraded" in outcomes or "reconciling" in outcomes:
                self.backoff.temporary(domain)
                self._dirty.setdefault(domain, set()).add("retry")
                result_name = "degraded"
            else:
                self.backoff.success(domain)
                result_name = "drifted" if "drifted" in outcomes else "ready"
            self._record(domain, result_name, started)
        if self.metrics:
            self.metrics.set_generation(result.generation)

    def _healed(self, domain: str, resource: str, changes: int, generation: int) -> None:
        by = self._changed_by.get(domain, "")
        if self.metrics:
            self.metrics.drift_detected(domain)
            self.metrics.drift_healed(domain)
        self._emit(
            "Normal",
            "Healed",
            resource,
            f"{changes} change(s) made to undo drift" + (f" (changed by {by})" if by else ""),
            generation,
        )
        fight = self.fighting.healed(resource, by)
        if fight is None:
            return
        self._hold_until[domain] = self.clock() + fight.hold
        message = (
            f"{resource} was changed back {fight.heals} times within "
            f"{self.settings.fighting_window:g} s"
            + (f", last by {fight.by}" if fight.by else "")
            + f"; another writer is fighting aios: next heal in {fight.hold:g} s"
        )
        self._fights[resource] = message
        self._emit("Warning", "Fighting", resource, message, generation)
        if self.metrics:
            self.metrics.set_fighting(len(self._fights))

    async def _propose(self, result: ApplyResult, domains: Sequence[str]) -> None:
        """A pending plan for every domain whose propose-mode resources have changes."""
        proposed: dict[str, list[str]] = {}
        for report in result.reports:
            if report.outcome == "proposed" and report.domain in domains:
                proposed.setdefault(report.domain, []).append(report.resource)
        for domain in domains:
            if domain not in proposed:
                self.pending.drop_domain(domain)
        for domain, keys in proposed.items():
            merge = self.engine.merge(self._current(), replace=True)
            try:
                planned = await self.engine.plan(
                    merge,
                    only=[domain],
                    approved=keys,
                    held=self._held(),
                    reason="aios daemon (propose)",
                )
            except AiosError as exc:
                self._emit("Warning", "ReconcileFailed", domain, f"cannot plan the proposal: {exc}")
                continue
            part = planned.plan.domain(domain)
            if part is None or part.empty:
                self.pending.drop_domain(domain)
                continue
            pending = PendingPlan(
                id=plan_id(domain, planned.plan),
                domain=domain,
                resources=tuple(sorted(keys)),
                created=time.time(),
                generation=merge.generation,
                summary=render_plan(planned.plan),
                plan_json=planned.plan.to_json(),
            )
            if self.pending.offer(pending):
                self._emit(
                    "Normal",
                    "PlanPending",
                    domain,
                    f"plan {pending.id} waits for "
                    f"aios approve {pending.id} (resources {', '.join(keys)})",
                    merge.generation,
                )

    # --- specs ------------------------------------------------------------------------

    def _load(self, *, first: bool = False) -> bool:
        loaded = self.source.load()
        if loaded.specset is None:
            self.spec_errors = loaded.errors
            shown = "; ".join(loaded.errors[:5]) + (
                f" (+{len(loaded.errors) - 5} more)" if len(loaded.errors) > 5 else ""
            )
            kept = "nothing applied yet" if self.desired.source is None else "last good set kept"
            self._emit("Warning", "SpecsInvalid", "", f"{shown}; {kept}")
            if self.metrics:
                self.metrics.set_spec_errors(len(loaded.errors))
            return False
        old = self._current() if not first else None
        was_invalid = bool(self.spec_errors)
        self.spec_errors = ()
        if self.metrics:
            self.metrics.set_spec_errors(0)
        taken = self.desired.set_source(loaded.specset)
        self._combined = None
        for key in taken:
            self._emit("Normal", "SourceTookOver", key, "a spec file now declares it")
        new = self._current()
        if old is not None:
            changed = self._changed_domains(old, new)
            for key in self._changed_keys(old, new):
                self.fighting.forget(key)
                self._fights.pop(key, None)
            for domain in changed:
                self.pending.drop_domain(domain)
            if changed:
                self._mark(changed, "spec", supersede=True)
            self._emit(
                "Normal",
                "SpecsLoaded",
                "",
                f"{len(new)} resource(s); changed: {', '.join(changed) or 'nothing'}",
            )
        elif was_invalid or first:
            self._emit("Normal", "SpecsLoaded", "", f"{len(new)} resource(s)")
        return True

    async def _watch_specs(self) -> None:
        async for paths in self.source.changes(self._stop):
            self.log.debug("spec files changed: %s", ", ".join(paths))
            self._load()

    def _current(self) -> SpecSet:
        if self._combined is None:
            self._combined = self.desired.combined()
        return self._combined

    def _domain_of(self, key: str) -> str:
        return self.engine.domains.domain_of(key)

    def _domain_digest(self, domain: str) -> str:
        current = self._current()
        return compute_digest(r for r in current.resources if self._domain_of(r.key) == domain)

    def _changed_keys(self, old: SpecSet, new: SpecSet) -> set[str]:
        keys = set(old.keys()) | set(new.keys())
        return {
            k
            for k in keys
            if (a := old.get(k)) is None
            or (b := new.get(k)) is None
            or compute_digest([a]) != compute_digest([b])
        }

    def _changed_domains(self, old: SpecSet, new: SpecSet) -> list[str]:
        changed = {self._domain_of(k) for k in self._changed_keys(old, new)}
        return [d for d in self.engine.domains.names if d in changed]

    def _held(self) -> frozenset[str]:
        return frozenset(k for k in self._suspended if "/" in k)

    # --- drift: the feed, the safety resync, the poll fallback --------------------------

    async def _follow_feed(self) -> None:
        assert self.feed is not None
        delay = 1.0
        while not self._stopping:
            try:
                async for change in self.feed.changes(list(self.engine.domains.names)):
                    if self.feed_state != "events":
                        self.feed_state = "events"
                        self._emit("Normal", "FeedConnected", "", "drift arrives as events")
                        if self.metrics:
                            self.metrics.set_feed_connected(True)
                    delay = 1.0
                    if change.domain not in self.engine.domains:
                        continue
                    if change.resync:
                        self._mark([change.domain], "resync")
                    else:
                        if change.domain not in self._executing:
                            # not the echo of our own calls: what changed the domain last
                            self._changed_by[change.domain] = f"{change.source}: {change.detail}"
                        self._mark([change.domain], "drift")
                raise TemporaryError("the registry ended the change feed")
            except AiosError as exc:
                if self.feed_state != "polling":
                    self._emit(
                        "Warning",
                        "FeedLost",
                        "",
                        f"{exc}; observing every "
                        f"{self.settings.poll_interval:g} s until it is back",
                    )
                    self.feed_state = "polling"
                    if self.metrics:
                        self.metrics.set_feed_connected(False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, FEED_RETRY_CAP_S)

    async def _poll_timer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            if self.feed_state != "events":
                self._mark(self.engine.domains.names, "poll")

    async def _resync_timer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_interval)
            self._mark(self.engine.domains.names, "resync")

    # --- events, metrics --------------------------------------------------------------

    def _emit(
        self, type_: EventType, reason: str, resource: str, message: str, generation: int = 0
    ) -> Event:
        event = self.events.emit(type_, reason, resource, message, generation)
        level = logging.WARNING if type_ == "Warning" else logging.INFO
        self.log.log(
            level,
            "%s",
            message,
            extra={
                "reason": reason,
                "resource": resource,
                "generation": generation,
                "seq": event.seq,
            },
        )
        return event

    def _dropped(self, count: int) -> None:
        if self.metrics:
            self.metrics.events_dropped(count)

    def _record(self, domain: str, result: str, started: float) -> None:
        if self.metrics:
            self.metrics.reconciled(domain, result, max(0.0, self.clock() - started))

    def _publish_queue(self) -> None:
        if self.metrics:
            self.metrics.set_queue_depth(len(self._dirty))

    # --- the DaemonService --------------------------------------------------------------

    async def apply(
        self,
        documents: Sequence[tuple[str, bytes]],
        *,
        dry_run: bool,
        prune: bool,
        assume_yes: bool,
        plan_json: str = "",
        replace: bool = False,
    ) -> ApplyOutcome:
        """An apply through the daemon: the documents join the daemon's set as extras."""
        generation = self._generation()
        try:
            incoming = load_documents(list(documents), self.engine.domains.kinds)
        except SpecError as exc:
            return ApplyOutcome(EXIT_FAILED, generation, errors=tuple(str(i) for i in exc.issues))
        conflicts = self.desired.conflicts(incoming)
        if conflicts:
            return ApplyOutcome(EXIT_FAILED, generation, errors=tuple(conflicts))
        extras, origins = self.desired.with_applied(incoming, prune=prune, replace=replace)
        async with self._lock:
            self._phase = "planning"
            try:
                specset = self.desired.combined(extras)
                merge = self.engine.merge(specset, replace=True)
                planned = await self.engine.plan(merge, held=self._held(), reason="aios apply")
                saved = None
                if plan_json:
                    try:
                        saved = Plan.from_json(plan_json)
                    except ValueError as exc:
                        raise PermanentError(f"not a saved plan: {exc}") from None
                    try:
                        planned = self.engine.check_saved(saved, planned)
                    except StalePlan as exc:
                        return ApplyOutcome(EXIT_STALE, generation, errors=(str(exc),))
                shown = render_plan(planned.plan)
                pending = planned.plan.has_changes or bool(merge.pruned)
                if dry_run:
                    code = (
                        EXIT_FAILED if planned.plan.failures else (EXIT_CHANGES if pending else 0)
                    )
                    return ApplyOutcome(code, generation, shown, plan_json=planned.plan.to_json())
                if pending and not assume_yes and saved is None:
                    return ApplyOutcome(
                        EXIT_FAILED,
                        generation,
                        shown,
                        errors=("refusing to apply without confirmation; use --yes",),
                    )
                self._phase = "executing"
                started = self.clock()
                with self._running(planned.works):
                    result = await self.engine.apply(planned, assume_yes=True, saved=saved)
                self.desired.commit(extras, origins)
                self._combined = None
                self._settle(result, {d: {"api"} for d in planned.works}, started)
                return self._outcome(result, shown, planned.plan.to_json())
            finally:
                self._phase = "idle"

    async def plan(
        self, documents: Sequence[tuple[str, bytes]], *, prune: bool = False, replace: bool = False
    ) -> ApplyOutcome:
        return await self.apply(
            documents, dry_run=True, prune=prune, assume_yes=False, replace=replace
        )

    async def reconcile(self, what: str = "") -> ApplyOutcome:
        domains = self._resolve(what) if what else list(self.engine.domains.names)
        if any(d in self._suspended for d in domains) and what:
            raise PermanentError(f"{what} is suspended; aios resume {what} first")
        domains = [d for d in domains if d not in self._suspended]
        for domain in domains:
            self.backoff.success(domain)  # asked for now: no backoff, no permanent hold
            self._hold_until.pop(domain, None)
            self._dirty.pop(domain, None)
        async with self._lock:
            try:
                planned, result = await self._reconcile({d: {"manual"} for d in domains})
            finally:
                self._phase = "idle"
        if planned is None:
            return ApplyOutcome(0, self._generation(), "nothing to reconcile\n")
        shown = render_plan(planned.plan)
        if result is None:
            failed = planned.plan.failures or any(w.error for w in planned.works.values())
            return ApplyOutcome(EXIT_FAILED if failed else 0, self._generation(), shown)
        return self._outcome(result, shown, planned.plan.to_json())

    def _outcome(self, result: ApplyResult, shown: str, plan_json: str) -> ApplyOutcome:
        lines = [f"{d}: {s}" for d, s in sorted(result.summaries.items())]
        not_ready = [r for r in result.reports if r.outcome != "ready"]
        errors = tuple(f"{r.resource}: {r.outcome} ({r.reason}): {r.message}" for r in not_ready)
        lines.append(
            f"generation {result.generation}: "
            + ("all resources Ready" if not not_ready else f"{len(not_ready)} not Ready")
        )
        code = (
            EXIT_STALE
            if result.stale
            else EXIT_DESTRUCTIVE
            if result.destructive_refused
            else (0 if result.all_ready else EXIT_FAILED)
        )
        return ApplyOutcome(
            code, result.generation, shown + "\n".join(lines) + "\n", errors, plan_json
        )

    def _resolve(self, what: str) -> list[str]:
        if what in self.engine.domains:
            return [what]
        if "/" in what:
            try:
                return [self._domain_of(what)]
            except KeyError:
                pass
        raise PermanentError(
            f"{what!r} is neither a domain ({', '.join(self.engine.domains.names)}) nor Kind/name"
        )

    def _generation(self) -> int:
        current = self.engine.store.current_generation(self.engine.target.name)
        return current.generation if current else 0

    async def status(self) -> StatusView:
        rows = self.engine.store.statuses(self.engine.target.name)
        resources = tuple(s.as_json() for s in rows)
        return StatusView(
            generation=self._generation(),
            resources=resources,
            conditions=tuple(self._conditions()),
            suspended=tuple(sorted(self._suspended)),
            sources=self.source.describe(),
        )

    def _conditions(self) -> list[dict[str, Any]]:
        now = time.time()
        found: list[dict[str, Any]] = [
            {
                "type": "SpecsValid",
                "status": "False" if self.spec_errors else "True",
                "reason": "SpecsInvalid" if self.spec_errors else "Loaded",
                "message": "; ".join(self.spec_errors),
            },
            {
                "type": "ChangeFeed",
                "status": "True" if self.feed_state == "events" else "False",
                "reason": self.feed_state.capitalize(),
                "message": "drift arrives as events"
                if self.feed_state == "events"
                else f"observing every {self.settings.poll_interval:g} s",
            },
        ]
        fighting = self.fighting.fighting()
        for resource in list(self._fights):
            if resource not in fighting:
                self._fights.pop(resource)
        for resource, message in sorted(self._fights.items()):
            found.append(
                {
                    "type": "Fighting",
                    "status": "True",
                    "reason": "Fighting",
                    "resource": resource,
                    "message": message,
                    "time": now,
                }
            )
        if self.metrics:
            self.metrics.set_fighting(len(self._fights))
        return found

    def watch(self, since: int = 0) -> AsyncIterator[Event]:
        return self.events.watch(since)

    async def suspend(self, what: str) -> str:
        self._resolve(what)
        if what in self._suspended:
            return f"{what} was already suspended"
        self._suspended.add(what)
        self._emit("Normal", "Suspended", what, "not reconciled until aios resume; events kept")
        return f"suspended {what}"

    async def resume(self, what: str) -> str:
        domains = self._resolve(what)
        if what not in self._suspended:
            return f"{what} was not suspended"
        self._suspended.discard(what)
        self._emit("Normal", "Resumed", what, "reconciled again")
        self._mark(domains, "resume")
        return f"resumed {what}"

    async def plans(self) -> list[PendingPlan]:
        return self.pending.all()

    async def approve(self, plan_id: str) -> ApplyOutcome:
        pending = self.pending.get(plan_id)
        if pending is None:
            raise PermanentError(f"no pending plan {plan_id}; see aios plans")
        async with self._lock:
            self._phase = "planning"
            try:
                merge = self.engine.merge(self._current(), replace=True)
                planned = await self.engine.plan(
                    merge,
                    only=[pending.domain],
                    approved=pending.resources,
                    held=self._held(),
                    reason=f"aios approve {plan_id}",
                )
                saved = Plan.from_json(pending.plan_json)
                try:
                    planned = self.engine.check_saved(saved, planned)
                except StalePlan as exc:
                    self.pending.drop(plan_id)
                    self._mark([pending.domain], "manual")
                    self._emit("Warning", "PlanStale", pending.domain, f"plan {plan_id}: {exc}")
                    return ApplyOutcome(
                        EXIT_STALE,
                        self._generation(),
                        errors=(
                            f"plan {plan_id} is stale: {exc}; a fresh one is being made, "
                            "see aios plans",
                        ),
                    )
                self._phase = "executing"
                started = self.clock()
                with self._running(planned.works):
                    result = await self.engine.apply(planned, assume_yes=True, saved=saved)
            finally:
                self._phase = "idle"
        self.pending.drop(plan_id)
        self._emit(
            "Normal", "PlanApproved", pending.domain, f"plan {plan_id} ran", result.generation
        )
        self._settle(result, {pending.domain: {"manual"}}, started)
        return self._outcome(result, render_plan(planned.plan), planned.plan.to_json())

    async def reject(self, plan_id: str) -> str:
        pending = self.pending.drop(plan_id)
        if pending is None:
            raise PermanentError(f"no pending plan {plan_id}; see aios plans")
        self._emit("Normal", "PlanRejected", pending.domain, f"plan {plan_id} dropped")
        return f"rejected plan {plan_id}"

    def health(self) -> Health:
        message = (
            "stopping"
            if self._stopping
            else "ready"
            if self.ready
            else "reconciling the loaded specs for the first time"
        )
        if self.spec_errors:
            message += f"; specs invalid ({len(self.spec_errors)} error(s))"
        return Health(
            ready=self.ready and not self._stopping,
            live=not self._stopping,
            message=message,
            generation=self._generation(),
            queue_depth=len(self._dirty),
            feed=self.feed_state,
        )
