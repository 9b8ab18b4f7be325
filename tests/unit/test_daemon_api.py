# ruff: noqa: ASYNC240 - the tests stat the socket file between awaits, on purpose
"""The daemon's API (reconciler.daemon.api) through its client (reconciler.daemon_client).

A real grpc.aio server on a unix socket in tmp_path, over FakeDaemon (tests/daemon_double:
a test double of DaemonService, not the daemon): every RPC, the error classes round
trip (with their delay, findings, issues), the socket's mode and group, a stale
socket replaced, a live one refused, TCP refused, the health service and probe.
"""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from reconciler.daemon.api import SERVICE, remove_socket, serve_api
from reconciler.daemon.ports import DaemonService
from reconciler.daemon_client import DaemonClient, DaemonUnavailable, probe
from reconciler.sdk import errors
from tests.daemon_double import PLAN_ID, FakeDaemon


def _conforms(double: FakeDaemon) -> DaemonService:
    return double  # mypy: the double implements the protocol


def _last(double: FakeDaemon) -> tuple[str, object]:
    return double.calls[-1]


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory / "daemon.sock"


@pytest.fixture
async def served(sock: Path) -> AsyncIterator[tuple[FakeDaemon, DaemonClient]]:
    double = FakeDaemon()
    address = f"unix://{sock}"
    server = await serve_api(_conforms(double), address)
    client = DaemonClient(address, timeout=5)
    try:
        yield double, client
    finally:
        await client.close()
        await server.stop(None)
        remove_socket(address)


async def test_every_rpc_round_trips(served: tuple[FakeDaemon, DaemonClient]) -> None:
    double, client = served
    docs = [("/specs/a.yaml", b"kind: Firewall\n")]
    out = await client.apply(docs, dry_run=True, prune=True, assume_yes=True, plan_json="{}",
                             replace=True)  # fmt: skip
    assert (out.exit_code, out.generation, out.plan_json) == (0, 7, '{"plan": true}')
    assert "apply via daemon: /specs/a.yaml" in out.output
    assert _last(double) == (
        "apply",
        (docs, {"dry_run": True, "prune": True, "assume_yes": True, "replace": True,
                "plan": True}),
    )  # fmt: skip
    failed = await client.apply([("b.yaml", b"exit: 4\n")])
    assert (failed.exit_code, failed.errors) == (4, ("b.yaml: failed with 4",))

    planned = await client.plan(docs, prune=True, replace=False)
    assert planned.output.startswith("plan via daemon:")
    assert _last(double) == ("plan", (docs, {"prune": True, "replace": False}))

    view = await client.status()
    assert view.generation == 7
    assert view.resources[0]["resource"] == "Firewall/f1"
    assert view.resources[0]["conditions"][0]["message"] == "ok…"
    assert view.conditions[0]["type"] == "SpecsValid"
    assert view.sources == ("/etc/aios/specs",)

    assert (await client.reconcile("firewall")).output == "reconciled firewall\n"
    assert _last(double) == ("reconcile", "firewall")

    assert await client.suspend("Firewall/f1") == "suspended Firewall/f1"
    assert (await client.status()).suspended == ("Firewall/f1",)
    assert await client.resume("Firewall/f1") == "resumed Firewall/f1"

    (pending,) = await client.plans()
    assert (pending.id, pending.domain, pending.resources) == (PLAN_ID, "firewall",
                                                                ("Firewall/f1",))  # fmt: skip
    assert pending.plan_json == '{"plan": 1}'
    assert (await client.approve(PLAN_ID)).generation == 8
    assert (await client.approve("stale")).exit_code == 3
    assert await client.reject(PLAN_ID) == f"rejected {PLAN_ID}"

    h = await client.health()
    assert (h.ready, h.live, h.generation, h.feed) == (True, True, 7, "events")


async def test_watch_replays_after_since_then_follows_live(
    served: tuple[FakeDaemon, DaemonClient],
) -> None:
    double, client = served
    stream = client.watch(since=1)
    first = [await anext(stream), await anext(stream)]
    assert [(e.seq, e.type) for e in first] == [(2, "Warning"), (3, "Normal")]
    await double.emit("Fighting", "nft rule undone by someone")
    live = await asyncio.wait_for(anext(stream), 5)
    assert (live.seq, live.reason, live.message) == (4, "Fighting", "nft rule undone by someone")
    await stream.aclose()  # type: ignore[attr-defined]
    assert ("watch", 1) in double.calls
    recent = [e.seq async for e in client.watch(since=2, follow=False)]
    assert recent == [3, 4]  # and the stream ended by itself


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.RegistryUnavailable("registry down", delay=2.5), grpc.StatusCode.UNAVAILABLE),
        (errors.RateLimited("slow down", delay=0.2), grpc.StatusCode.UNAVAILABLE),
        (errors.Interrupted("shutting down", delay=0.0), grpc.StatusCode.UNAVAILABLE),
        (errors.StalePlan("stale: the firewall moved"), grpc.StatusCode.ABORTED),
        (errors.DestructiveRefused(["wipe /dev/vdb needs force"]),
         grpc.StatusCode.FAILED_PRECONDITION),
        (errors.PlanRejected(["a; b", "c"]), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.ToolRejected("Invalid input: x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.ToolNotFound("no tool net.x"), grpc.StatusCode.NOT_FOUND),
        (errors.ToolFailed("nft said no", execution_id="e-9"),
         grpc.StatusCode.FAILED_PRECONDITION),
        (errors.PermanentError("no such domain"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.StateStoreError("busy…", retryable=True, delay=3.0), grpc.StatusCode.UNAVAILABLE),
        (errors.StateStoreError("corrupt"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.SpecError(["a.yaml:3:4: Firewall/x: spec.tables: bad", "b.yaml:1:1: y"]),
         grpc.StatusCode.INVALID_ARGUMENT),
    ],
)  # fmt: skip
async def test_errors_come_back_as_the_same_class(
    served: tuple[FakeDaemon, DaemonClient], exc: Exception, code: grpc.StatusCode, sock: Path
) -> None:
    double, client = served
    double.fail["suspend"] = exc
    with pytest.raises(type(exc)) as caught:
        await client.suspend("firewall")
    got = caught.value
    assert type(got) is type(exc)
    assert str(got) == str(exc)
    if isinstance(exc, errors.TemporaryError):
        assert isinstance(got, errors.TemporaryError)
        assert (got.delay, got.before_run) == (exc.delay, exc.before_run)
    if isinstance(exc, errors.PlanRejected):
        assert isinstance(got, errors.PlanRejected)
        assert got.findings == exc.findings
    if isinstance(exc, errors.ToolFailed):
        assert isinstance(got, errors.ToolFailed)
        assert got.execution_id == exc.execution_id
    if isinstance(exc, errors.StateStoreError):
        assert isinstance(got, errors.StateStoreError)
        assert (got.retryable, got.delay if got.retryable else 0) == (
            exc.retryable, exc.delay if exc.retryable else 0)  # fmt: skip
    if isinstance(exc, errors.SpecError):
        assert isinstance(got, errors.SpecError)
        assert got.issues == exc.issues
    # the wire: the code and the metadata other clients would read
    async with grpc.aio.insecure_channel(f"unix://{sock}") as channel:
        from contract._gen import reconciler_pb2, reconciler_pb2_grpc

        stub = reconciler_pb2_grpc.ReconcilerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await stub.Suspend(reconciler_pb2.TargetRequest(what="x"))
    assert raw.value.code() == code
    metadata = dict(raw.value.trailing_metadata() or ())
    assert metadata["aios-error"] == type(exc).__name__
    assert ("aios-delay" in metadata) == (code == grpc.StatusCode.UNAVAILABLE)


async def test_errors_of_apply_and_streams_too(served: tuple[FakeDaemon, DaemonClient]) -> None:
    double, client = served
    with pytest.raises(errors.SpecError) as spec:
        await client.apply([("bad.yaml", b"raise: SpecError")])
    assert spec.value.issues == ("bad.yaml:1:1: Firewall/x: spec: broken",)
    with pytest.raises(errors.PlanRejected) as rejected:
        await client.plan([("p.yaml", b"raise: PlanRejected")])
    assert rejected.value.findings == ("finding one", "finding two")
    with pytest.raises(errors.PermanentError, match="no pending plan nope"):
        await client.approve("nope")
    double.fail["watch"] = errors.Interrupted("stopping", delay=0.5)
    with pytest.raises(errors.Interrupted, match="stopping"):
        async for _ in client.watch():
            pass


async def test_a_bug_in_the_daemon_is_an_internal_error_not_a_hang(
    served: tuple[FakeDaemon, DaemonClient],
) -> None:
    double, client = served
    double.fail["plans"] = KeyError("oops")
    with pytest.raises(errors.AiosError, match="internal error in the daemon: KeyError"):
        await client.plans()


async def test_socket_is_0600_and_replaces_a_stale_one(sock: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()  # a socket file nothing listens on: a daemon that died
    assert sock.is_socket()
    address = f"unix://{sock}"
    server = await serve_api(FakeDaemon(), address)
    try:
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        async with DaemonClient(address) as client:
            assert (await client.health()).ready
    finally:
        await server.stop(None)
        remove_socket(address)
    assert not sock.exists()


async def test_a_live_socket_is_refused(sock: Path) -> None:
    address = f"unix://{sock}"
    server = await serve_api(FakeDaemon(), address)
    try:
        with pytest.raises(OSError, match="another process already serves on"):
            await serve_api(FakeDaemon(), address)
        async with DaemonClient(address) as client:  # the first one still answers
            assert (await client.health()).live
    finally:
        await server.stop(None)
        remove_socket(address)


async def test_a_file_that_is_no_socket_is_left_alone(sock: Path) -> None:
    sock.write_text("precious")
    with pytest.raises(OSError, match="is not a socket"):
        await serve_api(FakeDaemon(), f"unix://{sock}")
    assert sock.read_text() == "precious"


@pytest.mark.parametrize("address", ["localhost:7443", "0.0.0.0:1", "unix:relative.sock"])
async def test_tcp_and_relative_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="unix"):
        await serve_api(FakeDaemon(), address)


async def test_group_mode_0660_with_the_group(sock: Path) -> None:
    gid = os.getgroups()[0] if os.getgroups() else os.getgid()
    address = f"unix://{sock}"
    server = await serve_api(FakeDaemon(), address, group=gid)
    try:
        info = sock.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o660, gid)
    finally:
        await server.stop(None)
        remove_socket(address)
    with pytest.raises(OSError, match="no such group"):
        await serve_api(FakeDaemon(), address, group="no-such-group-aios")
    assert not sock.exists()


async def _health(address: str, service: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        reply = await check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)


async def test_health_service_serving_once_ready(sock: Path) -> None:
    double = FakeDaemon(ready=False)
    address = f"unix://{sock}"
    server = await serve_api(double, address)
    try:
        for name in ("", SERVICE):
            assert await _health(address, name) == health_pb2.HealthCheckResponse.NOT_SERVING
        async with DaemonClient(address) as client:
            assert not (await client.health()).ready
        double.ready = True
        deadline = time.monotonic() + 5
        while await _health(address, SERVICE) != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline, "health never said SERVING"
            await asyncio.sleep(0.05)
        assert await _health(address, "") == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(None)
        remove_socket(address)


async def test_probe(sock: Path, tmp_path: Path) -> None:
    address = f"unix://{sock}"
    started = time.monotonic()
    assert not await probe(address)  # no file: at once
    assert not await probe(f"unix://{tmp_path}/nothing/here.sock")
    assert time.monotonic() - started < 0.5
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()
    assert not await probe(address, timeout=0.3)  # a stale socket: nobody answers
    server = await serve_api(FakeDaemon(ready=False), address)
    try:
        assert await probe(address, timeout=5)  # answering, even before it is ready
    finally:
        await server.stop(None)
        remove_socket(address)
    with pytest.raises(DaemonUnavailable, match="did not answer"):
        async with DaemonClient(address, timeout=0.5) as client:
            await client.status()
