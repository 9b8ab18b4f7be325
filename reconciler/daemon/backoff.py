"""Per-key retry timing for the daemon's work queue.

Each key (a resource, "Kind/name") backs off on its own: the first temporary
failure waits `base` (100 ms), each further one doubles it up to `cap`
(5 min); a success resets the key. The wait is never shorter than the delay
the error itself asked for (TemporaryError.delay). A permanent failure is
remembered by spec digest: the key is not retried until its digest changes.
The clock is injected so tests need no sleeping. Used by the daemon's queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

BASE_S = 0.1
CAP_S = 300.0


@dataclass
class Backoff:
    clock: Callable[[], float]
    base: float = BASE_S
    cap: float = CAP_S
    _failures: dict[str, int] = field(default_factory=dict)
    _not_before: dict[str, float] = field(default_factory=dict)
    _failed_digest: dict[str, str] = field(default_factory=dict)

    def temporary(self, key: str, delay: float = 0.0) -> float:
        """Record a temporary failure of `key`; return the seconds to wait."""
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        wait = max(min(self.cap, self.base * 2.0**count), min(self.cap, max(delay, 0.0)))
        self._not_before[key] = self.clock() + wait
        return wait

    def permanent(self, key: str, digest: str) -> None:
        """Record that `key` failed for good at spec `digest`."""
        self._failed_digest[key] = digest
        self._failures.pop(key, None)
        self._not_before.pop(key, None)

    def success(self, key: str) -> None:
        """`key` converged: forget its failures."""
        self._failures.pop(key, None)
        self._not_before.pop(key, None)
        self._failed_digest.pop(key, None)

    def ready(self, key: str, digest: str) -> bool:
        """May `key` at spec `digest` be worked on now?"""
        if self._failed_digest.get(key) == digest:
            return False
        return self.clock() >= self._not_before.get(key, float("-inf"))

    def remaining(self, key: str) -> float:
        """Seconds until `key` may be retried (0 when it may now)."""
        return max(0.0, self._not_before.get(key, float("-inf")) - self.clock())
