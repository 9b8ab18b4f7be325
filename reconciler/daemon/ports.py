"""What the daemon offers its API: the `DaemonService` protocol and its plain data.

reconciler.daemon.core.Daemon implements it; reconciler.daemon.api serves it over
gRPC (aios.reconciler.Reconciler) on the daemon's unix socket and converts these
types to and from protobuf. Nothing here imports gRPC or the engine, so the API
can be tested against any implementation of the protocol. The plain data lives in
reconciler.sdk.daemon_types (the daemon's client, a lower layer, uses it too) and is
re-exported here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from reconciler.sdk.daemon_types import (
    ApplyOutcome,
    Event,
    EventType,
    Health,
    PendingPlan,
    StatusView,
)


class DaemonService(Protocol):
    """The daemon as its API sees it. Every method may raise an AiosError."""

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
        """`replace`: the documents become the whole set (aios rollback), not merged."""
        ...

    async def plan(
        self,
        documents: Sequence[tuple[str, bytes]],
        *,
        prune: bool = False,
        replace: bool = False,
    ) -> ApplyOutcome:
        """Plan the documents merged into (or, with `replace`, replacing) the set."""
        ...

    async def status(self) -> StatusView: ...

    async def reconcile(self, what: str = "") -> ApplyOutcome:
        """Reconcile now: everything ("") or one domain or one Kind/name."""
        ...

    def watch(self, since: int = 0) -> AsyncIterator[Event]:
        """Events with seq > since still in the buffer, then live ones, until closed."""
        ...

    async def suspend(self, what: str) -> str: ...

    async def resume(self, what: str) -> str: ...

    async def plans(self) -> list[PendingPlan]: ...

    async def approve(self, plan_id: str) -> ApplyOutcome:
        """Run a pending plan; exit_code 3 (stale) when the machine or specs moved."""
        ...

    async def reject(self, plan_id: str) -> str: ...

    def health(self) -> Health: ...


__all__ = [
    "ApplyOutcome",
    "DaemonService",
    "Event",
    "EventType",
    "Health",
    "PendingPlan",
    "StatusView",
]
