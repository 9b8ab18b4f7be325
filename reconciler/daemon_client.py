"""The daemon's client: typed async calls to aios.reconciler.Reconciler, errors rebuilt.

`DaemonClient(address)` talks to `aios daemon`'s API (reconciler.daemon.api) on its unix
socket; its public API has no proto types, only the plain data of
reconciler.sdk.daemon_types. An error the daemon raised comes back as the same
AiosError class (or SpecError), rebuilt from the trailing metadata `aios-error`,
`aios-delay` and `aios-detail-bin`, so the CLI maps it to the same exit code as a
one-shot run. A daemon that cannot be reached raises DaemonUnavailable (a
TemporaryError). `probe(address)` says whether a daemon answers there: False at once
when the socket file is missing or nothing accepts a connection on it (a stale socket),
else one Health call bounded by `timeout`. `socket_missing` is the cheapest check of all
(no grpc call), which the CLI makes before importing this module.

Beside reconciler.client in the layer stack (it imports contract._gen, as the `stubs`
import contract allows); the CLI uses it.
"""

from __future__ import annotations

import asyncio
import json
import math
import stat
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import grpc

from contract._gen import reconciler_pb2 as pb
from contract._gen import reconciler_pb2_grpc as pb_grpc
from contract.sockets import answers, unix_path
from reconciler.sdk import errors
from reconciler.sdk.daemon_types import ApplyOutcome, Event, Health, PendingPlan, StatusView
from reconciler.sdk.errors import AiosError, SpecError, TemporaryError

DEFAULT_TIMEOUT = 30.0  # seconds for a short call (status, suspend, ...)
ERROR_KEY = "aios-error"
DELAY_KEY = "aios-delay"
DETAIL_KEY = "aios-detail-bin"

Documents = Sequence[tuple[str, bytes]]


class DaemonUnavailable(TemporaryError):
    """No daemon answered at the address (or the connection broke mid-call)."""


_CLASSES: dict[str, type[Exception]] = {
    name: cls
    for name in errors.__all__
    if isinstance(cls := getattr(errors, name), type) and issubclass(cls, Exception)
}


def rebuild_error(exc: grpc.aio.AioRpcError, address: str = "") -> Exception:
    """The AiosError (or SpecError) the daemon raised, from a failed call's status."""
    metadata = dict(exc.trailing_metadata() or ())
    name = metadata.get(ERROR_KEY)
    message = exc.details() or ""
    if not isinstance(name, str):  # not from the daemon's API: transport, or another server
        where = f" at {address}" if address else ""
        return DaemonUnavailable(
            f"the daemon{where} did not answer ({exc.code().name}): {message}",
            before_run=exc.code() == grpc.StatusCode.UNAVAILABLE,
        )
    raw_delay = metadata.get(DELAY_KEY)
    delay = _float(raw_delay) if isinstance(raw_delay, str) else None
    raw_detail = metadata.get(DETAIL_KEY)
    detail: dict[str, Any] = {}
    if isinstance(raw_detail, bytes):
        try:
            loaded = json.loads(raw_detail)
        except ValueError:
            loaded = {}
        detail = loaded if isinstance(loaded, dict) else {}
    cls = _CLASSES.get(name)
    if cls is None or not issubclass(cls, AiosError | SpecError):
        return AiosError(message)  # InternalError, or a class this CLI does not know
    if issubclass(cls, SpecError):
        return cls(list(detail.get("issues") or message.splitlines()))
    if issubclass(cls, errors.PlanRejected):
        return cls(list(detail.get("findings") or [message]))
    if issubclass(cls, errors.ToolFailed):
        return cls(message, execution_id=str(detail.get("execution_id", "")))
    if issubclass(cls, TemporaryError):
        before = detail.get("before_run")
        return cls(
            message,
            delay=1.0 if delay is None else delay,
            before_run=before if isinstance(before, bool) else None,
        )
    if issubclass(cls, errors.StateStoreError):
        return cls(message, retryable=delay is not None, delay=2.0 if delay is None else delay)
    return cls(message)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def socket_missing(address: str) -> bool:
    """True when `address` is a unix socket path with no socket there (no daemon can run)."""
    try:
        path = unix_path(address)
    except ValueError:
        return True
    if path is None:
        return False
    try:
        return not stat.S_ISSOCK(path.stat().st_mode)
    except OSError:
        return True


async def probe(address: str, timeout: float = 0.3) -> bool:  # noqa: ASYNC109 (a gRPC deadline)
    """Whether a daemon answers at `address` (one Health call, bounded by `timeout`)."""
    if socket_missing(address):
        return False
    path = unix_path(address)
    if path is not None and not await asyncio.to_thread(answers, path):
        return False  # a stale socket: nothing accepts connections there
    try:
        async with DaemonClient(address) as client:
            await client.health(timeout=timeout)
    except AiosError:
        return False
    return True


def _outcome(r: pb.ApplyResponse) -> ApplyOutcome:
    return ApplyOutcome(
        exit_code=r.exit_code,
        generation=r.generation,
        output=r.output,
        errors=tuple(r.errors),
        plan_json=bytes(r.plan_json).decode(),
    )


def _event(e: pb.Event) -> Event:
    return Event(
        seq=e.seq,
        time=e.time,
        type="Warning" if e.type == "Warning" else "Normal",
        reason=e.reason,
        resource=e.resource,
        message=e.message,
        generation=e.generation,
    )


def _pending(p: pb.PendingPlan) -> PendingPlan:
    return PendingPlan(
        id=p.id,
        domain=p.domain,
        resources=tuple(p.resources),
        created=p.created,
        generation=p.generation,
        summary=p.summary,
        plan_json=p.plan_json,
    )


def _documents(documents: Documents) -> list[pb.SpecDocument]:
    return [pb.SpecDocument(path=path, content=content) for path, content in documents]


class DaemonClient:
    """One channel to a daemon; use as `async with DaemonClient(addr) as c:` or close()."""

    def __init__(self, address: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = pb_grpc.ReconcilerStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> DaemonClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _error(self, exc: grpc.aio.AioRpcError) -> Exception:
        return rebuild_error(exc, self.address)

    async def apply(
        self,
        documents: Documents,
        *,
        dry_run: bool = False,
        prune: bool = False,
        assume_yes: bool = False,
        plan_json: str = "",
        replace: bool = False,
    ) -> ApplyOutcome:
        """Apply through the daemon (no deadline: an apply takes as long as it takes)."""
        request = pb.ApplyRequest(
            documents=_documents(documents),
            dry_run=dry_run,
            prune=prune,
            assume_yes=assume_yes,
            plan_json=plan_json.encode(),
            replace=replace,
        )
        try:
            return _outcome(await self._stub.Apply(request))
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def plan(
        self, documents: Documents, *, prune: bool = False, replace: bool = False
    ) -> ApplyOutcome:
        request = pb.PlanRequest(documents=_documents(documents), prune=prune, replace=replace)
        try:
            return _outcome(await self._stub.Plan(request))
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def status(self) -> StatusView:
        try:
            r = await self._stub.Status(pb.StatusRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        return StatusView(
            generation=r.generation,
            resources=tuple(json.loads(x) for x in r.resources_json),
            conditions=tuple(json.loads(x) for x in r.conditions_json),
            suspended=tuple(r.suspended),
            sources=tuple(r.sources),
        )

    async def reconcile(self, what: str = "") -> ApplyOutcome:
        try:
            return _outcome(await self._stub.Reconcile(pb.ReconcileRequest(what=what)))
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def watch(self, since: int = 0, *, follow: bool = True) -> AsyncIterator[Event]:
        """Events with seq > since, then (`follow`) live ones until the stream ends;
        without `follow`, only those the daemon still buffers."""
        call = self._stub.Watch(pb.WatchRequest(since=since, recent_only=not follow))
        try:
            async for event in call:
                yield _event(event)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        finally:
            call.cancel()

    async def suspend(self, what: str) -> str:
        try:
            r = await self._stub.Suspend(pb.TargetRequest(what=what), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        return r.message

    async def resume(self, what: str) -> str:
        try:
            r = await self._stub.Resume(pb.TargetRequest(what=what), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        return r.message

    async def plans(self) -> list[PendingPlan]:
        try:
            r = await self._stub.ListPlans(pb.ListPlansRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        return [_pending(p) for p in r.plans]

    async def approve(self, plan_id: str) -> ApplyOutcome:
        try:
            return _outcome(await self._stub.Approve(pb.PlanIdRequest(id=plan_id)))
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None

    async def reject(self, plan_id: str) -> str:
        try:
            r = await self._stub.Reject(pb.PlanIdRequest(id=plan_id), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        return r.message

    async def health(self, *, timeout: float | None = None) -> Health:  # noqa: ASYNC109
        try:
            r = await self._stub.Health(
                pb.HealthRequest(), timeout=self.timeout if timeout is None else timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc) from None
        return Health(
            ready=r.ready,
            live=r.live,
            message=r.message,
            generation=r.generation,
            queue_depth=r.queue_depth,
            feed=r.feed,
        )


__all__ = ["DaemonClient", "DaemonUnavailable", "probe", "rebuild_error", "socket_missing"]
