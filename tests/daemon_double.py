"""FakeDaemon: a test double of the daemon (reconciler.daemon.ports.DaemonService).

Not the daemon: canned answers that say what they were asked, so a test can check
every RPC of reconciler.daemon.api through reconciler.daemon_client and every CLI
command that talks to a daemon, without an engine, a registry or a sandbox.

- apply/plan answer an ApplyOutcome whose `output` names the documents and flags;
  a document whose content contains `exit: N` makes the exit code N, one containing
  `raise: ClassName` raises that reconciler.sdk.errors class (SpecError included);
- `plans()` lists one pending plan `p-1`; approve `p-1` → 0, `stale` → exit 3, any
  other id raises PermanentError; reject likewise;
- events 1..3 are buffered; `emit` adds live ones; Watch follows them;
- `fail[method] = exc` makes that method raise `exc`;
- `ready` is what health() says.

`python -m tests.daemon_double unix:///path [--ready]` serves it (reconciler.daemon.api)
until killed, for the CLI tests.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator, Sequence

from reconciler.sdk import errors
from reconciler.sdk.daemon_types import ApplyOutcome, Event, Health, PendingPlan, StatusView

PLAN_ID = "p-1"


class FakeDaemon:
    """A double of the daemon's DaemonService: canned answers, calls recorded."""

    def __init__(self, *, ready: bool = True) -> None:
        self.ready = ready
        self.calls: list[tuple[str, object]] = []
        self.fail: dict[str, BaseException] = {}
        self.events = [
            Event(i, 1000.0 + i, "Normal" if i != 2 else "Warning", "Healed", f"Firewall/f{i}",
                  f"event {i}", generation=i)
            for i in (1, 2, 3)
        ]  # fmt: skip
        self._live: asyncio.Condition | None = None
        self.suspended: list[str] = []

    def _called(self, name: str, args: object) -> None:
        self.calls.append((name, args))
        if name in self.fail:
            raise self.fail[name]

    def _outcome(
        self, name: str, documents: Sequence[tuple[str, bytes]], **flags: object
    ) -> ApplyOutcome:
        code = 0
        for path, content in documents:
            text = content.decode()
            if m := re.search(r"raise: (\w+)", text):
                cls = getattr(errors, m.group(1))
                if issubclass(cls, errors.SpecError):
                    raise cls([f"{path}:1:1: Firewall/x: spec: broken"])
                if issubclass(cls, errors.PlanRejected):
                    raise cls(["finding one", "finding two"])
                raise cls(f"{m.group(1)} from the double")
            if m := re.search(r"exit: (\d+)", text):
                code = int(m.group(1))
        shown = " ".join(f"{k}={v}" for k, v in sorted(flags.items()))
        paths = ",".join(p for p, _ in documents)
        return ApplyOutcome(
            exit_code=code,
            generation=7,
            output=f"{name} via daemon: {paths} {shown}\n",
            errors=(f"{paths}: failed with {code}",) if code else (),
            plan_json='{"plan": true}',
        )

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
        flags = {
            "dry_run": dry_run,
            "prune": prune,
            "assume_yes": assume_yes,
            "replace": replace,
            "plan": bool(plan_json),
        }
        self._called("apply", (list(documents), flags))
        return self._outcome("apply", documents, **flags)

    async def plan(
        self, documents: Sequence[tuple[str, bytes]], *, prune: bool = False, replace: bool = False
    ) -> ApplyOutcome:
        self._called("plan", (list(documents), {"prune": prune, "replace": replace}))
        return self._outcome("plan", documents, prune=prune, replace=replace)

    async def status(self) -> StatusView:
        self._called("status", None)
        return StatusView(
            generation=7,
            resources=(
                {
                    "resource": "Firewall/f1",
                    "domain": "firewall",
                    "ready": True,
                    "observedGeneration": 7,
                    "conditions": [
                        {"type": "Ready", "status": "True", "reason": "Healed", "message": "ok…"}
                    ],
                },
            ),
            conditions=({"type": "SpecsValid", "status": "True", "reason": "Loaded"},),
            suspended=tuple(self.suspended),
            sources=("/etc/aios/specs",),
        )

    async def reconcile(self, what: str = "") -> ApplyOutcome:
        self._called("reconcile", what)
        return ApplyOutcome(exit_code=0, generation=7, output=f"reconciled {what or 'all'}\n")

    async def watch(self, since: int = 0) -> AsyncIterator[Event]:
        self._called("watch", since)
        if self._live is None:
            self._live = asyncio.Condition()
        sent = since
        while True:
            for event in [e for e in self.events if e.seq > sent]:
                sent = event.seq
                yield event
            async with self._live:
                await self._live.wait()

    async def emit(self, reason: str, message: str) -> Event:
        event = Event(len(self.events) + 1, time.time(), "Normal", reason, "", message)
        self.events.append(event)
        if self._live is not None:
            async with self._live:
                self._live.notify_all()
        return event

    async def suspend(self, what: str) -> str:
        self._called("suspend", what)
        self.suspended.append(what)
        return f"suspended {what}"

    async def resume(self, what: str) -> str:
        self._called("resume", what)
        if what not in self.suspended:
            raise errors.PermanentError(f"{what} is not suspended")
        self.suspended.remove(what)
        return f"resumed {what}"

    async def plans(self) -> list[PendingPlan]:
        self._called("plans", None)
        return [
            PendingPlan(PLAN_ID, "firewall", ("Firewall/f1",), 1000.0, 7,
                        "+ firewall.apply table inet f1", '{"plan": 1}')
        ]  # fmt: skip

    async def approve(self, plan_id: str) -> ApplyOutcome:
        self._called("approve", plan_id)
        if plan_id == "stale":
            return ApplyOutcome(exit_code=3, generation=7, errors=("plan stale is stale",))
        if plan_id != PLAN_ID:
            raise errors.PermanentError(f"no pending plan {plan_id}")
        return ApplyOutcome(exit_code=0, generation=8, output=f"approved {plan_id}\n")

    async def reject(self, plan_id: str) -> str:
        self._called("reject", plan_id)
        if plan_id != PLAN_ID:
            raise errors.PermanentError(f"no pending plan {plan_id}")
        return f"rejected {plan_id}"

    def health(self) -> Health:
        if "health" in self.fail:
            raise self.fail["health"]
        return Health(self.ready, True, "ok" if self.ready else "starting", 7, 0, "events")


async def _serve(address: str, ready: bool) -> None:
    from reconciler.daemon.api import serve_api

    server = await serve_api(FakeDaemon(ready=ready), address)
    print("serving", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], "--not-ready" not in sys.argv[2:]))
