"""The daemon's event log: a bounded ring of recent events and live subscribers.

reconciler.daemon.core.Daemon records every event here (and logs it);
reconciler.daemon.api streams them to `aios events -f` through `watch`. A slow
subscriber never slows the daemon: each has a bounded queue, and when it is
full the subscriber's oldest pending events are dropped and counted
(`dropped`, exported as aios_events_dropped_total); the subscriber then gets a
Warning event EventsDropped saying how many it missed.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Callable

from reconciler.daemon.ports import Event, EventType

RING = 1000
QUEUE = 1000


class EventLog:
    def __init__(
        self,
        *,
        ring: int = RING,
        queue: int = QUEUE,
        clock: Callable[[], float] = time.time,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self._ring: collections.deque[Event] = collections.deque(maxlen=ring)
        self._subscribers: set[_Subscriber] = set()
        self._queue = queue
        self._clock = clock
        self._seq = 0
        self._on_drop = on_drop
        self.dropped = 0

    @property
    def seq(self) -> int:
        return self._seq

    def emit(
        self,
        type_: EventType,
        reason: str,
        resource: str,
        message: str,
        generation: int = 0,
    ) -> Event:
        self._seq += 1
        event = Event(self._seq, self._clock(), type_, reason, resource, message, generation)
        self._ring.append(event)
        for sub in list(self._subscribers):
            lost = sub.put(event)
            if lost:
                self.dropped += lost
                if self._on_drop is not None:
                    self._on_drop(lost)
        return event

    def recent(self, since: int = 0) -> list[Event]:
        return [e for e in self._ring if e.seq > since]

    async def watch(self, since: int = 0) -> AsyncIterator[Event]:
        """Buffered events after `since`, then live ones, until the caller stops."""
        sub = _Subscriber(self._queue)
        self._subscribers.add(sub)  # before reading the ring: nothing falls in between
        try:
            last = since
            for event in self.recent(since):
                last = event.seq
                yield event
            while True:
                event, lost = await sub.get()
                if lost:
                    yield Event(
                        0, self._clock(), "Warning", "EventsDropped", "",
                        f"this watcher was too slow: {lost} event(s) dropped",
                    )  # fmt: skip
                if event.seq > last:
                    last = event.seq
                    yield event
        finally:
            self._subscribers.discard(sub)


class _Subscriber:
    def __init__(self, size: int) -> None:
        self._items: collections.deque[Event] = collections.deque()
        self._size = size
        self._lost = 0
        self._ready = asyncio.Event()

    def put(self, event: Event) -> int:
        lost = 0
        if len(self._items) >= self._size:
            self._items.popleft()
            self._lost += 1
            lost = 1
        self._items.append(event)
        self._ready.set()
        return lost

    async def get(self) -> tuple[Event, int]:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        lost, self._lost = self._lost, 0
        return self._items.popleft(), lost
