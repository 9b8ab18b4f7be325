"""What the daemon offers its API: the `DaemonService` protocol and its plain data.

reconciler.daemon.core.Daemon implements it; reconciler.daemon.api serves it over
gRPC (aios.reconciler.Reconciler) on the daemon's unix socket and converts these
types to and from protobuf. Nothing here imports gRPC or the engine, so the API
can be tested against any implementation of the protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from contract.tooldef import JSON

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    """One thing the daemon did or saw, for `aios events` and Watch.

    `seq` grows by one per event of this daemon process; `resource` is a
    resource key (`Kind/name`) or a domain name or "" for the daemon itself;
    `reason` is one CamelCase word (SpecsLoaded, SpecsInvalid, DriftDetected,
    Healed, Applied, ReconcileFailed, Fighting, PlanPending, PlanApproved,
    PlanRejected, Suspended, Resumed, FeedConnected, FeedLost, ...).
    """

    seq: int
    time: float  # unix seconds
    type: EventType
    reason: str
    resource: str
    message: str
    generation: int = 0


@dataclass(frozen=True)
class PendingPlan:
    """A plan queued by a resource in `propose` mode, waiting for approve/reject."""

    id: str
    domain: str
    resources: tuple[str, ...]
    created: float
    generation: int
    summary: str  # one line per step, as `aios plan` shows it
    plan_json: str  # reconciler.sdk.plan.Plan as JSON


@dataclass(frozen=True)
class ApplyOutcome:
    """What an Apply or Plan call through the daemon concluded.

    `exit_code` is the CLI's: 0 all Ready (or, for a plan, planned), 1 failure,
    3 stale, 4 destructive refused. `errors` are complete lines (file:line where
    there is a file). `output` is what the one-shot CLI would have printed on
    stdout (the plan, the per-domain summaries, the generation line).
    """

    exit_code: int
    generation: int
    output: str = ""
    errors: tuple[str, ...] = ()
    plan_json: str = ""


@dataclass(frozen=True)
class Health:
    """The readiness answer: `ready` once the first reconcile of the loaded set ended."""

    ready: bool
    live: bool
    message: str
    generation: int
    queue_depth: int
    feed: str  # "events" | "polling" | "connecting"


@dataclass(frozen=True)
class StatusView:
    """The daemon's view for `aios status`: resource statuses plus daemon conditions."""

    generation: int
    resources: tuple[JSON, ...]  # ResourceStatus rows as JSON (resource, domain, conditions, ...)
    conditions: tuple[JSON, ...] = ()  # daemon-wide: SpecsValid, Fighting, Suspended, Feed
    suspended: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default_factory=tuple)


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
    ) -> ApplyOutcome: ...

    async def plan(self, documents: Sequence[tuple[str, bytes]]) -> ApplyOutcome: ...

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
