"""Status conditions per resource: Ready, Reconciling, Degraded, Stalled.

Conditions follow the Kubernetes shape (type, status "True"/"False"/
"Unknown", reason, message, lastTransitionTime); the transition time only
moves when a condition's status changes. Each reconcile adds a history entry
(generation, revision, outcome, changes, duration, message); the last five are
kept. Used by the engine's apply and by `aios status`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.engine.store import HISTORY_LIMIT, ResourceStatus

Outcome = Literal["ready", "reconciling", "degraded", "stalled", "drifted", "proposed"]
CONDITION_TYPES = ("Ready", "Reconciling", "Degraded", "Stalled")

_SHAPES: dict[str, dict[str, str]] = {
    # outcome -> condition type -> status
    "ready": {"Ready": "True", "Reconciling": "False", "Degraded": "False", "Stalled": "False"},
    "reconciling": {
        "Ready": "Unknown",
        "Reconciling": "True",
        "Degraded": "False",
        "Stalled": "False",
    },
    "degraded": {"Ready": "False", "Reconciling": "False", "Degraded": "True", "Stalled": "False"},
    "stalled": {"Ready": "False", "Reconciling": "False", "Degraded": "False", "Stalled": "True"},
    "drifted": {"Ready": "False", "Reconciling": "False", "Degraded": "False", "Stalled": "False"},
    "proposed": {"Ready": "False", "Reconciling": "False", "Degraded": "False", "Stalled": "False"},
}


@dataclass(frozen=True)
class Report:
    """What one reconcile concluded about one resource."""

    resource: str
    domain: str
    outcome: Outcome
    reason: str
    message: str
    changes: int = 0


def next_status(
    report: Report,
    previous: ResourceStatus | None,
    *,
    generation: int,
    revision: str,
    duration_ms: int,
    now: float | None = None,
) -> ResourceStatus:
    now = time.time() if now is None else now
    shape = _SHAPES[report.outcome]
    before = {c["type"]: c for c in (previous.conditions if previous else ())}
    conditions: list[dict[str, Any]] = []
    for kind in CONDITION_TYPES:
        status = shape[kind]
        old = before.get(kind)
        changed = old is None or old.get("status") != status
        active = status == "True" or (kind == "Ready" and report.outcome != "ready")
        conditions.append(
            {
                "type": kind,
                "status": status,
                "reason": report.reason if active else "",
                "message": report.message if active else "",
                "lastTransitionTime": (
                    old.get("lastTransitionTime", "") if old and not changed else _rfc3339(now)
                ),
            }
        )
    entry = {
        "generation": generation,
        "revision": revision,
        "time": _rfc3339(now),
        "outcome": report.outcome,
        "reason": report.reason,
        "changes": report.changes,
        "durationMs": duration_ms,
        "message": report.message,
    }
    history = (entry, *(previous.history if previous else ()))[:HISTORY_LIMIT]
    return ResourceStatus(
        resource=report.resource,
        domain=report.domain,
        observed_generation=generation,
        revision=revision,
        conditions=tuple(conditions),
        history=history,
    )


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
