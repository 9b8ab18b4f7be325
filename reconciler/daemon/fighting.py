"""Fighting another writer: the same object healed K times within T seconds.

reconciler.daemon.core.Daemon tells the detector of every heal (a reconcile
not caused by a spec change that still had to change something), naming the
resource and what the change feed said changed it back. When a resource has
been healed `heals` times within `window` seconds, it is Fighting: the
detector answers with how long to hold that resource's domain before the next
heal — `hold` seconds, doubling with every further heal while it fights, up to
`cap` — so two writers that disagree cost one heal per hold, never a spin.
A resource is calm again when it was not healed for a whole window, or its
spec changed (`forget`).
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fight:
    resource: str
    heals: int  # heals within the window
    hold: float  # seconds before the next heal
    by: str  # what changed it back, as the change feed saw it ("" when unknown)


@dataclass
class Fighting:
    clock: Callable[[], float]
    heals: int = 3
    window: float = 60.0
    hold: float = 1.0
    cap: float = 300.0
    _times: dict[str, collections.deque[float]] = field(default_factory=dict)
    _holds: dict[str, float] = field(default_factory=dict)
    _by: dict[str, str] = field(default_factory=dict)

    def healed(self, resource: str, by: str = "") -> Fight | None:
        """Record a heal of `resource`; a Fight when it is now fighting."""
        now = self.clock()
        times = self._times.setdefault(resource, collections.deque())
        times.append(now)
        while times and now - times[0] > self.window:
            times.popleft()
        if by:
            self._by[resource] = by
        if len(times) < self.heals:
            return None
        hold = min(self.cap, self._holds.get(resource, self.hold / 2) * 2)
        self._holds[resource] = hold
        return Fight(resource, len(times), hold, self._by.get(resource, ""))

    def fighting(self) -> dict[str, Fight]:
        """Resources fighting now (healed `heals` times within the last window)."""
        now = self.clock()
        found: dict[str, Fight] = {}
        for resource, times in list(self._times.items()):
            while times and now - times[0] > self.window:
                times.popleft()
            if not times:
                self.forget(resource)
            elif resource in self._holds:
                hold = self._holds[resource]
                found[resource] = Fight(resource, len(times), hold, self._by.get(resource, ""))
        return found

    def calm(self, resource: str) -> bool:
        """Whether a resource that was fighting has not been healed for a window."""
        return resource not in self.fighting()

    def forget(self, resource: str) -> None:
        self._times.pop(resource, None)
        self._holds.pop(resource, None)
        self._by.pop(resource, None)
