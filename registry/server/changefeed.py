"""The change feed: aios.changes.ChangeFeed/Watch, what changed on the target as it happens.

A service of our own beside aios.tools.ToolRegistry (proto/aios/changes.proto),
served on the `full` profile only (registry.server.grpc); aiOS's registry and
our `aios` profile answer UNIMPLEMENTED and a subscriber polls instead.

Each Watch stream has its own `Feed` (the hub): it starts the watcher of every
requested domain (empty: all of DOMAINS) — registry.drivers.net.monitor
(rtnetlink, resolver files, net.* sysctls), nft.monitor (`nft monitor`),
pkg.monitor (dpkg's status file), storage.monitor (/proc/self/mountinfo),
model.monitor (the model directory) — over the registry's `--root` and
netns, waits until every one is armed (listening), then sends one
`resync=True` change per domain (source `feed`: observe everything once),
then every change as it comes. Nothing is sent while nothing changes. A
watcher that cannot arm within ARM_TIMEOUT_S ends the stream with
UNAVAILABLE naming it (the subscriber falls back to polling); an unknown
domain is INVALID_ARGUMENT. When the stream ends (the client cancels, the
server stops: `ChangeFeedServicer.close()` ends every stream at once with
UNAVAILABLE `registry is shutting down`) every watcher is cancelled and its
monitor child killed with its process group.

Guarantees, per stream:

- `seq` from 1, gapless, assigned as changes are sent;
- `detail` one line of at most DETAIL_LIMIT (200) characters;
- coalescing: changes not sent yet merge by (domain, source) — the first
  detail stays, `[+N]` says how many merged into it — and the sender waits
  COALESCE_S after the first of a burst, so a 200-link apply is a change or
  two, not hundreds. A pending resync of a domain absorbs that domain's other
  changes (the subscriber looks at everything anyway);
- bounded: at most `limit` (QUEUE_LIMIT, 1000) changes wait; one more drops
  the waiting changes of its domain and queues a resync for it instead
  (`overflow: N changes dropped`) — a slow subscriber learns it missed
  something, never silently;
- a watcher that dies (its monitor child exits, an error) is logged and
  started again after a backoff (BACKOFF_MIN_S doubling to BACKOFF_MAX_S,
  reset after STABLE_S of running); once it is armed again the domain gets a
  resync (`watcher restarted: <error>`), since changes in between were not seen;
- a watcher whose directory a mount can hide (the models directory: inotify
  watches the directory under the mount) gives an `identity`; after every
  storage change the hub compares it and restarts that watcher when it
  changed, which ends in a resync for its domain.

`Feed` is independent of gRPC (tests drive it with fake watchers); the
servicer `ChangeFeedServicer` maps it to the wire. Called by
registry.server.grpc (RegistryServer, `full` profile).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import grpc

from contract._gen import changes_pb2, changes_pb2_grpc
from registry.core.watch import Emit
from registry.drivers.model import monitor as model_monitor
from registry.drivers.net import monitor as net_monitor
from registry.drivers.nft import monitor as nft_monitor
from registry.drivers.pkg import monitor as pkg_monitor
from registry.drivers.storage import monitor as storage_monitor

log = logging.getLogger(__name__)

SERVICE = "aios.changes.ChangeFeed"
DOMAINS = ("network", "firewall", "packages", "storage", "models")
QUEUE_LIMIT = 1000
DETAIL_LIMIT = 200
COALESCE_S = 0.01
ARM_TIMEOUT_S = 10.0
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 30.0
STABLE_S = 30.0
FEED = "feed"
Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")
Watch = Callable[[Emit, asyncio.Event], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Watcher:
    """How to watch one domain: `run(emit, armed)` until cancelled; `identity` (optional)
    changes when a mount hides what it watches (checked after each storage change)."""

    run: Watch
    identity: Callable[[], object] | None = None


def default_watchers(root: Path, netns: str | None) -> dict[str, Watcher]:
    """The five domains' watchers over a registry's `--root` and netns."""
    return {
        "network": Watcher(functools.partial(net_monitor.watch, root=root, netns=netns)),
        "firewall": Watcher(functools.partial(nft_monitor.watch, root=root, netns=netns)),
        "packages": Watcher(functools.partial(pkg_monitor.watch, root=root, netns=netns)),
        "storage": Watcher(functools.partial(storage_monitor.watch, root=root, netns=netns)),
        "models": Watcher(
            functools.partial(model_monitor.watch, root=root, netns=netns),
            identity=functools.partial(model_monitor.dir_identity, root),
        ),
    }


@dataclass(frozen=True)
class Change:
    seq: int
    domain: str
    source: str
    detail: str
    time_ms: int
    resync: bool


@dataclass
class _Pending:
    domain: str
    source: str
    detail: str
    time_ms: int
    resync: bool
    merged: int = 0

    def text(self) -> str:
        detail = self.detail + (f" [+{self.merged}]" if self.merged else "")
        detail = " ".join(detail.split())
        return detail if len(detail) <= DETAIL_LIMIT else detail[: DETAIL_LIMIT - 1] + "…"


class FeedUnavailable(Exception):
    """A watcher could not arm: the feed cannot promise to see its domain's changes."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Slot:
    """One domain's supervised watcher."""

    watcher: Watcher
    armed: asyncio.Event = field(default_factory=asyncio.Event)
    error: str = ""
    task: asyncio.Task[None] | None = None
    inner: asyncio.Task[None] | None = None
    restart: str = ""  # why the hub asked for a restart (not a failure)
    identity: object = None


class Feed:
    """The hub of one Watch stream: supervised watchers, a coalescing bounded queue."""

    def __init__(
        self,
        domains: Iterable[str],
        watchers: Mapping[str, Watcher],
        *,
        limit: int = QUEUE_LIMIT,
        coalesce_s: float = COALESCE_S,
        arm_timeout_s: float = ARM_TIMEOUT_S,
        backoff_min_s: float = BACKOFF_MIN_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        stable_s: float = STABLE_S,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.domains = tuple(dict.fromkeys(domains))
        self.slots = {d: _Slot(watchers[d]) for d in self.domains}
        self.limit = limit
        self.coalesce_s = coalesce_s
        self.arm_timeout_s = arm_timeout_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.stable_s = stable_s
        self.clock = clock
        self.pending: collections.OrderedDict[tuple[str, str, bool], _Pending] = (
            collections.OrderedDict()
        )
        self.dropped = 0  # changes dropped on overflow (merged into a resync)
        self.seq = 0
        self._wake = asyncio.Event()

    # -- lifetime --

    async def __aenter__(self) -> Feed:
        for domain, slot in self.slots.items():
            slot.task = asyncio.create_task(self._supervise(domain), name=f"feed:{domain}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        tasks = [s.task for s in self.slots.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    async def ready(self) -> bool:
        """Until every watcher is armed (True); FeedUnavailable after arm_timeout_s."""
        waits = [asyncio.ensure_future(s.armed.wait()) for s in self.slots.values()]
        try:
            _done, pending = await asyncio.wait(waits, timeout=self.arm_timeout_s)
        finally:
            for w in waits:
                w.cancel()
        if pending:
            missing = [
                f"{d} ({s.error or 'not listening yet'})"
                for d, s in self.slots.items()
                if not s.armed.is_set()
            ]
            raise FeedUnavailable(
                f"change feed: watcher not armed after {self.arm_timeout_s:g} s: "
                + ", ".join(missing)
            )
        return True

    # -- the watchers --

    async def _supervise(self, domain: str) -> None:
        slot = self.slots[domain]
        loop = asyncio.get_running_loop()
        delay = self.backoff_min_s
        restarted = ""
        while True:
            armed = asyncio.Event()
            slot.inner = asyncio.create_task(
                slot.watcher.run(self._emitter(domain), armed), name=f"watch:{domain}"
            )
            arm_wait = asyncio.ensure_future(armed.wait())
            started = loop.time()
            try:
                await asyncio.wait({slot.inner, arm_wait}, return_when=asyncio.FIRST_COMPLETED)
                if armed.is_set():
                    started = loop.time()
                    slot.identity = slot.watcher.identity() if slot.watcher.identity else None
                    if slot.armed.is_set():  # a restart: what happened meanwhile is unknown
                        self.push(domain, FEED, f"watcher restarted: {restarted}", True)
                    slot.armed.set()
                await slot.inner
                error = "watcher returned"
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if (task is not None and task.cancelling()) or not slot.restart:
                    await self._stop_inner(slot)
                    raise
                error, slot.restart = slot.restart, ""
                delay = self.backoff_min_s
                restarted = error
                log.info("change feed: restarting the %s watcher: %s", domain, error)
                continue
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            finally:
                arm_wait.cancel()
            slot.error = error
            restarted = error
            log.warning(
                "change feed: the %s watcher stopped (%s); starting it again in %.1f s",
                domain,
                error,
                delay,
            )
            if loop.time() - started >= self.stable_s:
                delay = self.backoff_min_s
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)

    @staticmethod
    async def _stop_inner(slot: _Slot) -> None:
        if slot.inner is not None and not slot.inner.done():
            slot.inner.cancel()
            with contextlib.suppress(BaseException):
                await slot.inner

    def _emitter(self, domain: str) -> Emit:
        def emit(source: str, detail: str, resync: bool) -> None:
            self.push(domain, source, detail, resync)
            if domain == "storage" and not resync:
                self._check_identities()

        return emit

    def _check_identities(self) -> None:
        for domain, slot in self.slots.items():
            identity = slot.watcher.identity
            if identity is None or not slot.armed.is_set() or slot.inner is None:
                continue
            if slot.inner.done() or slot.restart:
                continue
            now = identity()
            if now != slot.identity:
                slot.restart = "its directory was mounted over or replaced"
                slot.inner.cancel()
                log.debug("change feed: %s watcher's directory changed", domain)

    # -- the queue --

    def push(self, domain: str, source: str, detail: str, resync: bool) -> None:
        """Queue one change (merged, absorbed or overflowing as the module says)."""
        if (domain, FEED, True) in self.pending and not resync:
            self.pending[(domain, FEED, True)].merged += 1
            return
        if resync:  # one per domain, whatever its source: it stands for everything
            absorbed = self._drop(domain)
            self.pending[(domain, FEED, True)] = _Pending(
                domain, source, detail, self.clock(), True, absorbed
            )
        else:
            key = (domain, source, False)
            entry = self.pending.get(key)
            if entry is not None:
                entry.merged += 1
                return
            if len(self.pending) >= self.limit:
                dropped = self._drop(domain) + 1
                self.dropped += dropped
                log.warning(
                    "change feed: %d changes waiting; dropped %d of %s for a resync",
                    self.limit,
                    dropped,
                    domain,
                )
                self.pending[(domain, FEED, True)] = _Pending(
                    domain, FEED, f"overflow: {dropped} changes dropped", self.clock(), True
                )
            else:
                self.pending[key] = _Pending(domain, source, detail, self.clock(), False)
        self._wake.set()

    def _drop(self, domain: str) -> int:
        """Remove the waiting changes of `domain`; how many they stood for."""
        keys = [k for k in self.pending if k[0] == domain]
        count = 0
        for k in keys:
            count += 1 + self.pending.pop(k).merged
        return count

    async def next(self) -> Change:
        """The next change to send (waits; bursts coalesce for coalesce_s)."""
        if not self.pending:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            if self.coalesce_s > 0:  # the first of a burst: let the rest of it merge
                await asyncio.sleep(self.coalesce_s)
        _key, entry = self.pending.popitem(last=False)
        self.seq += 1
        return Change(
            seq=self.seq,
            domain=entry.domain,
            source=entry.source,
            detail=entry.text(),
            time_ms=entry.time_ms,
            resync=entry.resync,
        )

    async def changes(self) -> AsyncGenerator[Change, None]:
        """Once armed: a resync per domain, then every change, until cancelled."""
        await self.ready()
        for domain in self.domains:
            self.push(domain, FEED, "watch started: observe everything once", True)
        while True:
            yield await self.next()


class ChangeFeedServicer(changes_pb2_grpc.ChangeFeedServicer):
    """aios.changes.ChangeFeed over a registry's `--root` and netns.

    `close()` (the registry shutting down) ends every stream with UNAVAILABLE
    `registry is shutting down` at once: a Watch never ends by itself, and the
    server's grace period would otherwise wait for it."""

    def __init__(
        self,
        watchers: Callable[[], Mapping[str, Watcher]],
        *,
        limit: int = QUEUE_LIMIT,
    ) -> None:
        self.watchers = watchers
        self.limit = limit
        self._closing = asyncio.Event()

    def close(self) -> None:
        self._closing.set()

    async def _or_closing(self, step: Coroutine[Any, Any, T]) -> T | None:
        """`step`'s result, or None (and `step` cancelled) once the servicer closes."""
        task = asyncio.ensure_future(step)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        return None if task.cancelled() else task.result()

    async def Watch(
        self, request: changes_pb2.WatchRequest, context: Context
    ) -> AsyncIterator[changes_pb2.Change]:
        domains = list(dict.fromkeys(request.domains)) or list(DOMAINS)
        unknown = [d for d in domains if d not in DOMAINS]
        if unknown:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown domain {', '.join(map(repr, unknown))}: one of {', '.join(DOMAINS)}",
            )
        log.info(
            "change feed: %s watches %s", request.agent_id or "(no agent_id)", ", ".join(domains)
        )
        async with Feed(domains, self.watchers(), limit=self.limit) as feed:
            try:
                armed = await self._or_closing(feed.ready())
            except FeedUnavailable as exc:
                log.warning("%s", exc)
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            if armed is None and self._closing.is_set():
                await context.abort(grpc.StatusCode.UNAVAILABLE, "registry is shutting down")
            for domain in feed.domains:
                feed.push(domain, FEED, "watch started: observe everything once", True)
            while True:
                change = await self._or_closing(feed.next())
                if change is None:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "registry is shutting down")
                yield changes_pb2.Change(
                    seq=change.seq,
                    domain=change.domain,
                    source=change.source,
                    detail=change.detail,
                    time_ms=change.time_ms,
                    resync=change.resync,
                )
