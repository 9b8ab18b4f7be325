"""Run a verified domain plan through the registry, journaled, undone on failure.

The controller decides how steps become calls (`transactions`: the network
domain folds its steps into one all-or-nothing `net.apply`, the firewall
domain its tables into one `firewall.apply`). Every call is journaled as
`started` before it is sent and `done`/`failed` after. When a call fails,
the calls already made are rolled back in reverse order with the registry's
Rollback(execution_id) (`undo`, which apply also uses when drift remains
after all calls succeeded); the `Execution` it returns says what was undone and what could
not be (a tool the catalogue marks not reversible, a failed rollback), so
status never hides a half-applied change. A call the registry refused before
running it is sent again under the engine's Retry. Used by
reconciler.engine.apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from contract.tooldef import ToolSpec
from reconciler.engine.store import Store
from reconciler.sdk.controller import Call
from reconciler.sdk.errors import AiosError, Interrupted
from reconciler.sdk.plan import canonical_digest
from reconciler.sdk.ports import Registry
from reconciler.sdk.retry import NO_RETRY, Retry, refused_before_run

ProgressFn = Callable[[str, int, int, str], None]  # tool, done, total, message


Executed = tuple[tuple[Call, str], ...]  # (call, execution id), in the order they ran


def label(call: Call, execution_id: str) -> str:
    """How status names one executed call: `tool (execution id)`."""
    return f"{call.tool} ({execution_id or 'no execution id'})"


@dataclass(frozen=True)
class Undo:
    """What undoing executed calls did, by their index in the executed calls.

    `undone`: rolled back. `kept`: (index, why) of calls still in place (the
    tool is not reversible, or its rollback failed).
    """

    executed: Executed = ()
    undone: tuple[int, ...] = ()
    kept: tuple[tuple[int, str], ...] = ()

    @property
    def rolled_back(self) -> tuple[str, ...]:
        return tuple(label(*self.executed[i]) for i in self.undone)

    @property
    def not_undone(self) -> tuple[str, ...]:
        return tuple(f"{label(*self.executed[i])}: {why}" for i, why in self.kept)

    def stays(self) -> Executed:
        """The executed calls still in effect, in the order they ran."""
        gone = set(self.undone)
        return tuple(c for i, c in enumerate(self.executed) if i not in gone)


@dataclass(frozen=True)
class Execution:
    """What executing a domain's calls did; on failure, what the undo did."""

    ok: bool
    executed: Executed = ()
    failed: Call | None = None
    error: AiosError | None = None
    undo: Undo = field(default_factory=Undo)

    @property
    def rolled_back(self) -> tuple[str, ...]:
        return self.undo.rolled_back

    @property
    def not_undone(self) -> tuple[str, ...]:  # half-applied, said out loud
        return self.undo.not_undone

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
    stop: Callable[[], bool] | None = None,
) -> Execution:
    """Send `calls` in order; on the first failure undo the ones made (module doc).

    A call the registry refused before running it (a TemporaryError with
    `before_run`: rate limited, no connection) is sent again under `retry`;
    one that may have run is never sent twice. `stop` (the daemon shutting
    down) is asked before each call: when it says so, the calls not yet sent
    are journaled "skipped", the ones made stay (undoing could outlast the
    shutdown deadline) and the Execution says so (Interrupted; not undone), so
    the status shows the half-applied domain and the next reconcile converges it.
    """
    journal = Journal(store, run, target, domain)
    executed: list[tuple[Call, str]] = []
    for index, call in enumerate(calls):
        if stop is not None and stop():
            for later, skipped in enumerate(calls[index:], start=index):
                journal.record(later, skipped, "skipped", error="the daemon is stopping")
            error = Interrupted(
                f"stopped before call {index + 1} of {len(calls)}: the daemon is shutting down"
            )
            kept = tuple((i, "interrupted; the next reconcile converges it") for i in range(index))
            return Execution(False, tuple(executed), call, error, Undo(tuple(executed), (), kept))
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
            undone = await undo(
                tuple(executed),
                client=client,
                catalogue=catalogue,
                journal=journal,
                reason=f"undo after failure in {domain}",
            )
            return Execution(False, tuple(executed), call, exc, undone)
        execution_id = str(result.execution_id)
        journal.record(index, call, "done", digest=digest, execution_id=execution_id)
        executed.append((call, execution_id))
    return Execution(True, tuple(executed))


async def undo(
    executed: Executed,
    *,
    client: Registry,
    catalogue: Mapping[str, ToolSpec],
    journal: Journal,
    reason: str,
) -> Undo:
    """Roll back `executed` (journaled with their index), newest first, with the
    registry's Rollback(execution_id); say which calls stay and why."""
    undone: list[int] = []
    kept: list[tuple[int, str]] = []
    for index, (call, execution_id) in reversed(list(enumerate(executed))):
        spec = catalogue.get(call.tool)
        if spec is None or not spec.reversible or not execution_id:
            kept.append((index, "not reversible"))
            continue
        try:
            await client.rollback(execution_id, reason=reason)
        except AiosError as exc:
            kept.append((index, f"rollback failed: {exc}"))
            journal.record(
                index, call, "rollback_failed", execution_id=execution_id, error=str(exc)
            )
        else:
            undone.append(index)
            journal.record(index, call, "rolled_back", execution_id=execution_id)
    return Undo(executed, tuple(undone), tuple(kept))


def _progress_for(tool: str, progress: ProgressFn | None) -> Callable[[int, int, str], None] | None:
    if progress is None:
        return None

    def report(done: int, total: int, message: str) -> None:
        progress(tool, done, total, message)

    return report
