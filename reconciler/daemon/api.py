"""The daemon's API: aios.reconciler.Reconciler over any DaemonService, on a unix socket.

`serve_api(service, "unix:///run/aios/reconciler.sock", group=None)` binds, starts and
returns a grpc.aio server with two services: `ReconcilerApi` (every RPC of
proto/aios/reconciler.proto, converted to and from the plain data of
reconciler.sdk.daemon_types) and the standard grpc.health.v1 Health, which says
NOT_SERVING until `service.health().ready` and SERVING after (watched every 0.2 s
until the server stops). The caller stops the server (`await server.stop(grace)`);
`remove_socket(address)` then removes the socket file.

Only unix sockets (a TCP port would let any local user drive the one writer): the
socket is born 0600 (bound under umask 0177), or 0660 with its group changed to
`group` so the members of that group may use it. contract.sockets refuses a
directory others could replace the socket in and a path a live server answers on,
and replaces a stale socket.

Errors: an AiosError (or SpecError) the service raises becomes a gRPC status whose
details are the message, with trailing metadata `aios-error` = the class name,
`aios-delay` = the retry delay in seconds for a temporary one and `aios-detail-bin`
= JSON of the fields the class needs to be rebuilt (findings, issues, execution id,
before_run); reconciler.daemon_client raises the same class again, so the CLI's exit
codes hold through the daemon. Codes: TemporaryError (and a retryable
StateStoreError) UNAVAILABLE; SpecError and ToolRejected INVALID_ARGUMENT; StalePlan
ABORTED; ToolNotFound NOT_FOUND; every other PermanentError and AiosError
FAILED_PRECONDITION; anything else (a bug) INTERNAL with `aios-error`
= InternalError.

This module, with reconciler.daemon_client, is where the daemon meets the generated
stubs (the `stubs` import contract names both).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from contract._gen import reconciler_pb2 as pb
from contract._gen import reconciler_pb2_grpc as pb_grpc
from contract.sockets import (
    prepare_unix_socket,
    private_umask,
    seal_unix_socket,
    unix_path,
)
from reconciler.daemon.ports import DaemonService
from reconciler.sdk.daemon_types import ApplyOutcome, Event, Health, PendingPlan, StatusView
from reconciler.sdk.errors import (
    AiosError,
    PlanRejected,
    StalePlan,
    StateStoreError,
    TemporaryError,
    ToolFailed,
    ToolNotFound,
    ToolRejected,
)
from specs.errors import SpecError

log = logging.getLogger(__name__)

SERVICE = "aios.reconciler.Reconciler"
ERROR_KEY = "aios-error"
DELAY_KEY = "aios-delay"
DETAIL_KEY = "aios-detail-bin"
INTERNAL = "InternalError"
HEALTH_INTERVAL = 0.2
RECENT_IDLE = 0.05  # seconds: Watch with recent_only ends when no event comes this soon
Context = grpc.aio.ServicerContext[Any, Any]

_TASKS: set[asyncio.Task[None]] = set()  # health watchers, kept alive until they end


# --- errors -------------------------------------------------------------------


def error_status(exc: BaseException) -> tuple[grpc.StatusCode, str, tuple[tuple[str, Any], ...]]:
    """The gRPC code, details and trailing metadata `exc` travels as."""
    name = type(exc).__name__
    detail: dict[str, Any] = {}
    delay: float | None = None
    if isinstance(exc, SpecError):
        code = grpc.StatusCode.INVALID_ARGUMENT
        detail["issues"] = list(exc.issues)
        message = "\n".join(exc.issues) or str(exc)
    elif isinstance(exc, AiosError):
        message = exc.message
        if isinstance(exc, TemporaryError):
            code, delay = grpc.StatusCode.UNAVAILABLE, exc.delay
            detail["before_run"] = exc.before_run
        elif isinstance(exc, StateStoreError) and exc.retryable:
            code, delay = grpc.StatusCode.UNAVAILABLE, exc.delay
        elif isinstance(exc, ToolRejected):
            code = grpc.StatusCode.INVALID_ARGUMENT
        elif isinstance(exc, StalePlan):
            code = grpc.StatusCode.ABORTED
        elif isinstance(exc, ToolNotFound):
            code = grpc.StatusCode.NOT_FOUND
        else:
            code = grpc.StatusCode.FAILED_PRECONDITION
        if isinstance(exc, PlanRejected):
            detail["findings"] = list(exc.findings)
        if isinstance(exc, ToolFailed) and exc.execution_id:
            detail["execution_id"] = exc.execution_id
    else:
        code, name = grpc.StatusCode.INTERNAL, INTERNAL
        message = f"internal error in the daemon: {type(exc).__name__}: {exc}"
    metadata: list[tuple[str, Any]] = [(ERROR_KEY, name)]
    if delay is not None:
        metadata.append((DELAY_KEY, repr(float(delay))))
    if detail:
        metadata.append((DETAIL_KEY, json.dumps(detail).encode()))
    return code, message, tuple(metadata)


async def _abort(context: Context, exc: BaseException) -> NoReturn:
    if not isinstance(exc, AiosError | SpecError):
        log.exception("daemon API call failed", exc_info=exc)
    code, message, metadata = error_status(exc)
    await context.abort(code, message, trailing_metadata=metadata)
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


# --- conversions --------------------------------------------------------------


def _documents(docs: Sequence[pb.SpecDocument]) -> list[tuple[str, bytes]]:
    return [(d.path, bytes(d.content)) for d in docs]


def outcome_to_pb(outcome: ApplyOutcome) -> pb.ApplyResponse:
    return pb.ApplyResponse(
        success=outcome.exit_code == 0,
        generation=outcome.generation,
        plan_json=outcome.plan_json.encode(),
        errors=list(outcome.errors),
        exit_code=outcome.exit_code,
        output=outcome.output,
    )


def event_to_pb(event: Event) -> pb.Event:
    return pb.Event(
        seq=event.seq,
        time=event.time,
        type=event.type,
        reason=event.reason,
        resource=event.resource,
        message=event.message,
        generation=event.generation,
    )


def pending_to_pb(plan: PendingPlan) -> pb.PendingPlan:
    return pb.PendingPlan(
        id=plan.id,
        domain=plan.domain,
        resources=list(plan.resources),
        created=plan.created,
        generation=plan.generation,
        summary=plan.summary,
        plan_json=plan.plan_json,
    )


def status_to_pb(view: StatusView) -> pb.StatusResponse:
    return pb.StatusResponse(
        generation=view.generation,
        resources_json=[json.dumps(r, sort_keys=True) for r in view.resources],
        conditions_json=[json.dumps(c, sort_keys=True) for c in view.conditions],
        suspended=list(view.suspended),
        sources=list(view.sources),
    )


def health_to_pb(h: Health) -> pb.HealthResponse:
    return pb.HealthResponse(
        ready=h.ready,
        live=h.live,
        message=h.message,
        generation=h.generation,
        queue_depth=h.queue_depth,
        feed=h.feed,
    )


# --- the servicer -------------------------------------------------------------


class ReconcilerApi(pb_grpc.ReconcilerServicer):
    """aios.reconciler.Reconciler: each RPC one call of the DaemonService."""

    def __init__(self, service: DaemonService) -> None:
        self.service = service

    async def Status(self, request: pb.StatusRequest, context: Context) -> pb.StatusResponse:
        try:
            return status_to_pb(await self.service.status())
        except Exception as exc:
            await _abort(context, exc)

    async def Apply(self, request: pb.ApplyRequest, context: Context) -> pb.ApplyResponse:
        try:
            outcome = await self.service.apply(
                _documents(request.documents),
                dry_run=request.dry_run,
                prune=request.prune,
                assume_yes=request.assume_yes,
                plan_json=bytes(request.plan_json).decode(),
                replace=request.replace,
            )
        except Exception as exc:
            await _abort(context, exc)
        return outcome_to_pb(outcome)

    async def Plan(self, request: pb.PlanRequest, context: Context) -> pb.ApplyResponse:
        try:
            outcome = await self.service.plan(
                _documents(request.documents), prune=request.prune, replace=request.replace
            )
        except Exception as exc:
            await _abort(context, exc)
        return outcome_to_pb(outcome)

    async def Reconcile(self, request: pb.ReconcileRequest, context: Context) -> pb.ApplyResponse:
        try:
            return outcome_to_pb(await self.service.reconcile(request.what))
        except Exception as exc:
            await _abort(context, exc)

    async def Watch(self, request: pb.WatchRequest, context: Context) -> AsyncIterator[pb.Event]:
        events = self.service.watch(request.since)
        try:
            if request.recent_only:
                while True:  # the buffered ones come at once; the first wait is the end
                    try:
                        event = await asyncio.wait_for(anext(events), RECENT_IDLE)
                    except (TimeoutError, StopAsyncIteration):
                        break
                    yield event_to_pb(event)
                return
            async for event in events:
                yield event_to_pb(event)
        except asyncio.CancelledError:  # the client went away
            raise
        except Exception as exc:
            await _abort(context, exc)
        finally:
            close = getattr(events, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def Suspend(self, request: pb.TargetRequest, context: Context) -> pb.MessageResponse:
        try:
            return pb.MessageResponse(message=await self.service.suspend(request.what))
        except Exception as exc:
            await _abort(context, exc)

    async def Resume(self, request: pb.TargetRequest, context: Context) -> pb.MessageResponse:
        try:
            return pb.MessageResponse(message=await self.service.resume(request.what))
        except Exception as exc:
            await _abort(context, exc)

    async def ListPlans(
        self, request: pb.ListPlansRequest, context: Context
    ) -> pb.ListPlansResponse:
        try:
            plans = await self.service.plans()
        except Exception as exc:
            await _abort(context, exc)
        return pb.ListPlansResponse(plans=[pending_to_pb(p) for p in plans])

    async def Approve(self, request: pb.PlanIdRequest, context: Context) -> pb.ApplyResponse:
        try:
            return outcome_to_pb(await self.service.approve(request.id))
        except Exception as exc:
            await _abort(context, exc)

    async def Reject(self, request: pb.PlanIdRequest, context: Context) -> pb.MessageResponse:
        try:
            return pb.MessageResponse(message=await self.service.reject(request.id))
        except Exception as exc:
            await _abort(context, exc)

    async def Health(self, request: pb.HealthRequest, context: Context) -> pb.HealthResponse:
        try:
            return health_to_pb(self.service.health())
        except Exception as exc:
            await _abort(context, exc)


# --- serving ------------------------------------------------------------------


def socket_path_of(address: str) -> str:
    """The socket path of a `unix:` address; ValueError for anything else (TCP)."""
    path = unix_path(address)
    if path is None:
        raise ValueError(
            f"the daemon API listens on a unix socket only (unix:///path), not {address!r}: "
            "a TCP port would let anyone who can reach it drive the machine's one writer"
        )
    return str(path)


async def serve_api(
    service: DaemonService, address: str, group: str | int | None = None
) -> grpc.aio.Server:
    """Bind `address` (unix:///path only), start, return the running server.

    OSError when the path cannot be used (a live daemon answers there, it is no
    socket, its directory is unsafe, `group` does not exist); ValueError for a TCP
    address.
    """
    server = grpc.aio.server()
    pb_grpc.add_ReconcilerServicer_to_server(ReconcilerApi(service), server)
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    for name in ("", SERVICE):
        await checks.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    path = _bind(server, Path(socket_path_of(address)), group)
    await server.start()
    task = asyncio.get_running_loop().create_task(_track_health(server, checks, service))
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    log.info("daemon API serving on unix://%s", path)
    return server


def _bind(server: grpc.aio.Server, path: Path, group: str | int | None) -> Path:
    """Add the unix port: stale socket replaced, live one refused, 0600 (or 0660 + group)."""
    prepare_unix_socket(path, "daemon")
    with private_umask():
        if server.add_insecure_port(f"unix:{path}") == 0:
            raise OSError(f"cannot listen on unix socket {path}")
    try:
        seal_unix_socket(path, group=group)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    return path


def remove_socket(address: str) -> None:
    """Remove the socket file of a stopped server (nothing when it is gone)."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        Path(socket_path_of(address)).unlink()


async def _track_health(
    server: grpc.aio.Server, checks: health.aio.HealthServicer, service: DaemonService
) -> None:
    """SERVING while the service says ready, NOT_SERVING otherwise, until the server stops."""
    last: int | None = None
    while True:
        try:
            ready = service.health().ready
        except Exception:  # a broken health answer is "not ready", never a dead watcher
            ready = False
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ready
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        if status != last:
            for name in ("", SERVICE):
                await checks.set(name, status)
            last = status
        if not await server.wait_for_termination(timeout=HEALTH_INTERVAL):
            return  # terminated (wait_for_termination returns False when it did not time out)
