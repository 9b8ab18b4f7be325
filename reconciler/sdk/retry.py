"""One retry policy for registry calls: TemporaryErrors, after max(delay, backoff).

`Retry(retries, backoff_s, sleep).run(op, safe=...)` awaits `op()`; when it
raises a TemporaryError that `safe(error)` allows, it waits
max(error.delay, backoff_s * 2**(n-1)) through `sleep` (injected: tests pass
a recorder, so no test sleeps) and tries again, at most `retries` times.
A PermanentError (or any other exception) is never retried. When the last
attempt fails too, the error records how often it was retried
(`TemporaryError.gave_up`: "... (retried N times)") unless `say` is False.

Used by the engine (reconciler.engine.reader for an observe's reads,
reconciler.engine.execute for writes the registry refused before running)
and by reconciler.client for its own retry of idempotent tools (which the
engine's client leaves off, so no call is retried by two layers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from reconciler.sdk.errors import TemporaryError

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


def always(_error: TemporaryError) -> bool:
    """Any TemporaryError may be retried (reads: running one twice changes nothing)."""
    return True


def refused_before_run(error: TemporaryError) -> bool:
    """Only a call the registry refused before running it (writes)."""
    return error.before_run


@dataclass(frozen=True)
class Retry:
    """At most `retries` retries after a TemporaryError, waiting max(delay, backoff)."""

    retries: int = 3
    backoff_s: float = 0.2
    sleep: Sleep = asyncio.sleep  # injected; tests record the waits instead of sleeping

    def wait(self, error: TemporaryError, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        return max(error.delay, self.backoff_s * 2.0 ** (retry - 1))

    async def run(
        self,
        op: Callable[[], Awaitable[T]],
        *,
        safe: Callable[[TemporaryError], bool] = always,
        say: bool = True,
    ) -> T:
        retry = 0
        while True:
            try:
                return await op()
            except TemporaryError as exc:
                if not safe(exc) or retry >= self.retries:
                    if say:
                        exc.gave_up(retry)
                    raise
                retry += 1
                await self.sleep(self.wait(exc, retry))


NO_RETRY = Retry(retries=0)

__all__ = ["NO_RETRY", "Retry", "Sleep", "always", "refused_before_run"]
