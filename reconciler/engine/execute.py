"""Run a verified domain plan through the registry, journaled, undone on failure.

The controller decides how steps become calls (`transactions`: the network
domain folds its steps into one all-or-nothing `net.apply`, the firewall
domain its tables into one `firewall.apply`). Every call is journaled as
`started` before it is sent and `done`/`failed` after. When a call fails,
the calls already made are rolled back in reverse order with the registry's
Rollback(execution_id); the outcome says what was undone and what could not
be, so status never hides a half-applied change. Used by
reconciler.engine.apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from contract.tooldef import ToolSpec
from reconciler.engine.store import Store
from reconciler.sdk.controller import Call
from reconciler.sdk.errors import AiosError
from reconciler.sdk.plan import canonical_digest
from reconciler.sdk.ports import Registry
from reconciler.sdk.retry import NO_RETRY, Retry, refused_before_run

ProgressFn = Callable[[str, int, int, str], None]  # tool, done, total, message


@dataclass
class ExecOutcome:
    ok: bool
    executed: list[tuple[Call, str]] = field(default_factory=list)  # (call, execution_id)
    failed: Call | None = None
    error: AiosError | None = None
    rolled_back: list[str] = field(default_factory=list)
    not_undone: list[str] = field(default_factory=list)  # half-applied, said out loud

    def summary(self) -> str:
        if self.ok:
            return f"{len(self.executed)} call(s) succeeded"
        parts = [f"{self.failed.tool if self.failed else '?'} failed: {self.error}"]
        if self.rolled_back:
            parts.append(f"rolled back {', '.join(self.rolled_back)}")
        if self.not_undone:
            parts.append(f"NOT undone: {', '.join(self.not_undone)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Journal:
    """Journal rows of one domain of one run: one line per state of a call."""

    store: Store
    run: str
    target: str
    domain: str

    def record(
        self, index: int, call: Call, state: str, *, digest: str = "",
        execution_id: str = "", error: str = "",
    ) -> None:  # fmt: skip
        self.store.journal(
            self.run, self.target, self.domain, index, call.tool, call.steps, digest, state,
            execution_id=execution_id, error=error,
        )  # fmt: skip


async def execute(
    calls: Sequence[Call],
    *,
    client: Registry,
    catalogue: Mapping[str, ToolSpec],
    store: Store,
    run: str,
    target: str,
    domain: str,
    reason: str,
    progress: ProgressFn | None = None,
    retry: Retry = NO_RETRY,
) -> ExecOutcome:
    """Send `calls` in order; on the first failure undo the ones made (module doc).

    A call the registry refused before running it (a TemporaryError with
    `before_run`: rate limited, no connection) is sent again under `retry`;
    one that may have run is never sent twice.
    """
    journal = Journal(store, run, target, domain)
    outcome = ExecOutcome(ok=True)
    for index, call in enumerate(calls):
        digest = canonical_digest(dict(call.input))
        journal.record(index, call, "started", digest=digest)
        on_progress = _progress_for(call.tool, progress)
        try:
            send = partial(
                client.call, call.tool, call.input, reason=reason, on_progress=on_progress
            )
            result = await retry.run(send, safe=refused_before_run)
        except AiosError as exc:
            journal.record(index, call, "failed", digest=digest, error=str(exc))
            outcome.ok = False
            outcome.failed = call
            outcome.error = exc
            await _undo(outcome, client=client, catalogue=catalogue, journal=journal)
            return outcome
        execution_id = str(getattr(result, "execution_id", ""))
        journal.record(index, call, "done", digest=digest, execution_id=execution_id)
        outcome.executed.append((call, execution_id))
    return outcome


async def _undo(
    outcome: ExecOutcome,
    *,
    client: Registry,
    catalogue: Mapping[str, ToolSpec],
    journal: Journal,
) -> None:
    """Roll back the calls already made, newest first; say what could not be undone."""
    for index, (call, execution_id) in reversed(list(enumerate(outcome.executed))):
        label = f"{call.tool} ({execution_id or 'no execution id'})"
        spec = catalogue.get(call.tool)
        if spec is None or not spec.reversible or not execution_id:
            outcome.not_undone.append(f"{label}: not reversible")
            continue
        try:
            await client.rollback(execution_id, reason=f"undo after failure in {journal.domain}")
        except AiosError as exc:
            outcome.not_undone.append(f"{label}: rollback failed: {exc}")
            journal.record(
                index, call, "rollback_failed", execution_id=execution_id, error=str(exc)
            )
        else:
            outcome.rolled_back.append(label)
            journal.record(index, call, "rolled_back", execution_id=execution_id)


def _progress_for(tool: str, progress: ProgressFn | None) -> Callable[[int, int, str], None] | None:
    if progress is None:
        return None

    def report(done: int, total: int, message: str) -> None:
        progress(tool, done, total, message)

    return report
