"""The daemon's plain data, shared by the daemon (reconciler.daemon) and its client.

Events, pending plans, outcomes, health and the status view, as frozen dataclasses
without gRPC or engine types. They live in the SDK layer because both
reconciler.daemon (above the engine) and reconciler.daemon_client (beside the
registry client, below the engine) use them; reconciler.daemon.ports re-exports them
with the DaemonService protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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


__all__ = ["ApplyOutcome", "Event", "EventType", "Health", "PendingPlan", "StatusView"]
