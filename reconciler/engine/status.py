"""Status conditions per resource: Ready, Reconciling, Degraded, Stalled.

Conditions follow the Kubernetes shape (type, status "True"/"False"/
"Unknown", reason, message, lastTransitionTime); the transition time only
moves when a condition's status changes. Each reconcile adds a history entry
(generation, revision, outcome, changes, duration, message); the last five are
kept. Used by the engine (apply reports, reconcile writes the statuses) and
by `aios status`.

While an apply runs, the resources it is about to change are marked
Reconciling (`reconciling_status`, written before the first step executes;
no history entry: the apply's own outcome replaces it). A kill leaves that
mark behind, so such a resource is never shown Ready; `interrupted` turns it,
when no apply holds the state directory's writer lock any more, into
"interrupted: N call(s) journaled, not finished" for `aios status`.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
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
    applied: bool = True  # False: this resource's spec did not take effect (failed, refused)


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


RECONCILING_REASON = "ApplyInProgress"


def reconciling_status(
    resource: str,
    domain: str,
    previous: ResourceStatus | None,
    *,
    run: str,
    steps: int,
    now: float | None = None,
) -> ResourceStatus:
    """`previous` marked Reconciling by apply run `run` (history unchanged)."""
    report = Report(
        resource,
        domain,
        "reconciling",
        RECONCILING_REASON,
        f"apply run {run} is changing it ({steps} step(s) planned)",
    )
    marked = next_status(
        report,
        previous,
        generation=previous.observed_generation if previous else 0,
        revision=previous.revision if previous else "",
        duration_ms=0,
        now=now,
    )
    conditions = tuple(
        {**c, "run": run} if c["type"] == "Reconciling" else c for c in marked.conditions
    )
    return replace(marked, conditions=conditions, history=previous.history if previous else ())


def run_of(status: ResourceStatus) -> str:
    """The apply run a Reconciling mark names ("" when the status is not one)."""
    reconciling = status.condition("Reconciling")
    if not reconciling or reconciling.get("status") != "True":
        return ""
    return str(reconciling.get("run", ""))


def interrupted(
    statuses: Sequence[ResourceStatus],
    journal: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    writer_active: bool,
) -> list[ResourceStatus]:
    """Statuses as `aios status` shows them: a Reconciling mark whose apply is gone
    (nobody holds the writer lock) says it was interrupted and what its journal holds.

    `journal`: run -> that run's journal rows (Store.journal_rows).
    """
    out: list[ResourceStatus] = []
    for status in statuses:
        run = run_of(status)
        if not run or writer_active:
            out.append(status)
            continue
        rows = [r for r in journal.get(run, ()) if r.get("domain") == status.domain]
        last: dict[tuple[Any, Any], str] = {}
        for row in rows:
            last[(row.get("domain"), row.get("call"))] = str(row.get("state"))
        unfinished = sum(1 for state in last.values() if state == "started")
        done = sum(1 for state in last.values() if state == "done")
        message = (
            f"apply run {run} ended before it finished: {unfinished} call(s) journaled, "
            f"not finished; {done} done; run aios apply again"
        )
        conditions = tuple(
            {**c, "reason": "Interrupted", "message": message}
            if c.get("type") in ("Ready", "Reconciling")
            else c
            for c in status.conditions
        )
        out.append(replace(status, conditions=conditions))
    return out


def writer_active(state_dir: Path) -> bool:
    """Whether a writer (an apply) holds the state directory's lock right now.

    Probes the lock reconciler.engine.store's `Store.writer` takes (an flock on
    `writer.lock`) with a shared, non-blocking lock on a read-only descriptor:
    nothing is created or written.
    """
    try:
        fd = os.open(state_dir / "writer.lock", os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
