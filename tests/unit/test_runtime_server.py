"""runtime.server over a real Supervisor, with the llama-server double as the binary.

The double (tests/fixtures/fake_llama_server.py) is started through a small shell wrapper
that picks its behaviour from the model path: a path containing `slow` answers /health
only after FAKE_LLAMA_LOAD_DELAY seconds, so one model can load slowly while others answer.
Every test talks gRPC to the server over a unix socket, as clients do; the last one runs
`aios runtime serve` as a process and checks that SIGTERM leaves no llama-server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from contract._gen import (
    common_pb2,
    runtime_details_pb2,
    runtime_details_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from runtime.listen import check_listen
from runtime.server import RuntimeOptions, RuntimeServer, load_params, on_demand_settings

DOUBLE = Path(__file__).resolve().parents[1] / "fixtures" / "fake_llama_server.py"
REPO = Path(__file__).resolve().parents[2]
SLOW_S = 2.0
TOKEN_INTERVAL_S = 0.4
SERVE = (sys.executable, "-m", "reconciler.cli.main", "runtime", "serve")
TINY = "smollm2-as-tinyllama-1.1b"
MISTRAL = "smollm2-as-mistral-7b"


def gguf(path: Path, size: int = 8192) -> Path:
    """A file with a GGUF v3 header (no tensors, no metadata): enough for the double."""
    path.write_bytes(b"GGUF" + struct.pack("<I", 3) + bytes(size - 8))
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie not yet reaped counts as gone
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def wait_gone(pid: int, limit_s: float = 10.0) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@dataclass
class Box:
    root: Path
    models: Path
    state: Path
    binary: Path
    socket: Path

    @property
    def target(self) -> str:
        return f"unix://{self.socket}"


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    with tempfile.TemporaryDirectory(prefix="aios-rt-") as short:  # sun_path: 108 bytes
        models = tmp_path / "models"
        models.mkdir()
        binary = tmp_path / "llama-server"
        binary.write_text(
            "#!/bin/sh\n"
            f'case "$*" in *slow*) export FAKE_LLAMA_LOAD_DELAY={SLOW_S};; esac\n'
            f"export FAKE_LLAMA_TOKEN_INTERVAL={TOKEN_INTERVAL_S}\n"
            f"export FAKE_LLAMA_TRACE={tmp_path / 'trace.log'}\n"
            f'exec {sys.executable} {DOUBLE} "$@"\n'
        )
        binary.chmod(0o755)
        yield Box(tmp_path, models, tmp_path / "state", binary, Path(short) / "runtime.sock")


@pytest.fixture
async def server(box: Box) -> AsyncIterator[RuntimeServer]:
    options = RuntimeOptions(
        listen=box.target,
        model_dir=box.models,
        state_dir=box.state,
        llama_server=str(box.binary),
        idle_unload_s=300.0,
        health_interval=0.2,
    )
    running = RuntimeServer(options)
    await running.start()
    try:
        yield running
    finally:
        pids = [m.pid for m in running.supervisor.models() if m.pid]
        await running.stop(grace=1)
        assert all(wait_gone(pid) for pid in pids), "a llama-server outlived the runtime"


@pytest.fixture
async def stub(server: RuntimeServer) -> AsyncIterator[runtime_pb2_grpc.AIRuntimeAsyncStub]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield runtime_pb2_grpc.AIRuntimeStub(channel)


def load_request(name: str, path: Path | str = "", **kw: int) -> runtime_pb2.LoadModelRequest:
    return runtime_pb2.LoadModelRequest(
        model_name=name,
        model_path=str(path),
        context_length=kw.get("ctx", 256),
        threads=kw.get("threads", 1),
        gpu_layers=kw.get("gpu_layers", 0),
    )


async def describe(server: RuntimeServer) -> dict[str, runtime_details_pb2.ModelDetails]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        details = runtime_details_pb2_grpc.RuntimeDetailsStub(channel)
        answer = await details.Describe(common_pb2.Empty(), timeout=10)
    return {m.model_name: m for m in answer.models}


# -- pure parts --


def test_load_params_take_aioss_defaults(tmp_path: Path) -> None:
    empty = runtime_pb2.LoadModelRequest(model_name="tiny")
    params = load_params(empty, tmp_path)
    assert (params.path, params.context_length, params.threads) == (str(tmp_path / "tiny"), 2048, 4)
    assert (params.gpu_layers, params.port) == (0, 0)
    negative = runtime_pb2.LoadModelRequest(
        model_name="t", model_path="/m/t.gguf", context_length=-1, threads=-3, gpu_layers=7, port=-2
    )
    params = load_params(negative, tmp_path)
    assert (params.path, params.context_length, params.threads) == ("/m/t.gguf", 2048, 4)
    assert (params.gpu_layers, params.port) == (7, 0)
    given = runtime_pb2.LoadModelRequest(model_name="t", context_length=512, threads=1, port=9000)
    assert (load_params(given, tmp_path).context_length, load_params(given, tmp_path).port) == (
        512,
        9000,
    )
    with pytest.raises(ValueError, match="model_name"):
        load_params(runtime_pb2.LoadModelRequest(), tmp_path)
    with pytest.raises(ValueError, match="out of range"):
        load_params(runtime_pb2.LoadModelRequest(model_name="t", port=70000), tmp_path)


def test_on_demand_settings_follow_aioss_size_table() -> None:
    assert on_demand_settings(98_000_000) == (2048, 2)
    assert on_demand_settings(2_000_000_001) == (4096, 3)
    assert on_demand_settings(4_000_000_001) == (4096, 4)
    assert on_demand_settings(8_000_000_001) == (8192, 4)


@pytest.mark.parametrize("listen", ["0.0.0.0:50055", "[::]:50055", "10.1.2.3:1", ":50055"])
def test_non_loopback_tcp_is_refused(listen: str) -> None:
    with pytest.raises(ValueError, match=r"refusing to listen|HOST:PORT"):
        check_listen(listen)


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "[::1]:50055", "localhost:5", "unix:///a/b"])
def test_loopback_and_unix_are_accepted(listen: str) -> None:
    check_listen(listen)


# -- over gRPC --


async def test_socket_is_0600(server: RuntimeServer, box: Box) -> None:
    assert stat.S_IMODE(box.socket.stat().st_mode) == 0o600


async def test_load_list_describe_unload(
    server: RuntimeServer, stub: runtime_pb2_grpc.AIRuntimeAsyncStub, box: Box
) -> None:
    path = gguf(box.models / "tiny.gguf")
    before = int(time.time() * 1000)
    status = await stub.LoadModel(load_request("tiny", path, ctx=256, threads=1), timeout=30)
    assert status.model_name == "tiny"
    assert status.status == "ready"
    assert status.port > 0
    assert before - 1000 <= status.loaded_at <= int(time.time() * 1000) + 1000

    listed = await stub.ListModels(common_pb2.Empty(), timeout=5)
    assert [(m.model_name, m.status, m.port) for m in listed.models] == [
        ("tiny", "ready", status.port)
    ]
    details = await describe(server)
    tiny = details["tiny"]
    assert tiny.model_path == str(path)
    assert (tiny.context_length, tiny.threads, tiny.gpu_layers) == (256, 1, 0)
    assert tiny.pid > 0 and not tiny.on_demand and tiny.restarts == 0
    pid = tiny.pid

    # same parameters: the status as it is (same port, same process)
    again = await stub.LoadModel(load_request("tiny", path, ctx=256, threads=1), timeout=30)
    assert (again.status, again.port) == ("ready", status.port)
    assert (await describe(server))["tiny"].pid == pid

    unloaded = await stub.UnloadModel(runtime_pb2.UnloadModelRequest(model_name="tiny"), timeout=20)
    assert (unloaded.success, unloaded.message) == (True, "Model 'tiny' unloaded")
    assert wait_gone(pid), "UnloadModel left the llama-server running"
    assert list((await stub.ListModels(common_pb2.Empty(), timeout=5)).models) == []


async def test_changed_parameters_are_re_applied(
    server: RuntimeServer, stub: runtime_pb2_grpc.AIRuntimeAsyncStub, box: Box
) -> None:
    path = gguf(box.models / "tiny.gguf")
    await stub.LoadModel(load_request("tiny", path, ctx=256), timeout=30)
    first = (await describe(server))["tiny"]
    status = await stub.LoadModel(load_request("tiny", path, ctx=512), timeout=30)
    assert status.status == "ready"
    second = (await describe(server))["tiny"]
    assert second.context_length == 512
    assert second.pid != first.pid
    assert wait_gone(first.pid)


async def test_unload_of_an_unknown_model_is_aioss_error(
    stub: runtime_pb2_grpc.AIRuntimeAsyncStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UnloadModel(runtime_pb2.UnloadModelRequest(model_name="x"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "Failed to unload model: Model 'x' not found"


async def test_refused_files_are_internal_failed_to_load(
    stub: runtime_pb2_grpc.AIRuntimeAsyncStub, box: Box
) -> None:
    not_gguf = box.models / "junk.gguf"
    not_gguf.write_bytes(b"<html>not a model</html>" + bytes(100))
    for name, path in (("missing", box.models / "missing.gguf"), ("junk", not_gguf)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.LoadModel(load_request(name, path), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INTERNAL
        assert (caught.value.details() or "").startswith("Failed to load model: ")
    listed = await stub.ListModels(common_pb2.Empty(), timeout=5)
    assert "junk" not in [m.model_name for m in listed.models if m.status == "ready"]


async def test_list_models_and_other_models_answer_while_a_slow_load_runs(
    stub: runtime_pb2_grpc.AIRuntimeAsyncStub, box: Box
) -> None:
    fast = gguf(box.models / "fast.gguf")
    slow = gguf(box.models / "slow.gguf")
    await stub.LoadModel(load_request("fast", fast), timeout=30)
    started = time.monotonic()
    loading = asyncio.ensure_future(stub.LoadModel(load_request("slow", slow), timeout=30))
    await asyncio.sleep(0.3)
    listed = await stub.ListModels(common_pb2.Empty(), timeout=5)
    statuses = {m.model_name: m.status for m in listed.models}
    assert statuses == {"fast": "ready", "slow": "loading"}
    answer = await stub.Infer(runtime_pb2.InferRequest(model="fast", prompt="hi"), timeout=10)
    assert answer.model_used == "fast"
    health = await stub.HealthCheck(common_pb2.Empty(), timeout=5)
    assert health.details["model:slow"].startswith("status=loading")
    assert time.monotonic() - started < SLOW_S - 0.6, "an RPC waited for the slow load"
    assert not loading.done()
    status = await loading
    assert status.status == "ready"
    assert time.monotonic() - started >= SLOW_S - 0.2


async def test_stream_infer_sends_each_token_as_it_arrives(
    stub: runtime_pb2_grpc.AIRuntimeAsyncStub, box: Box
) -> None:
    await stub.LoadModel(load_request("tiny", gguf(box.models / "tiny.gguf")), timeout=30)
    arrivals: list[tuple[float, runtime_pb2.InferChunk]] = []
    request = runtime_pb2.InferRequest(model="tiny", prompt="count", max_tokens=3)
    call = stub.StreamInfer(request, timeout=30)
    async for chunk in call:
        arrivals.append((time.time(), chunk))
    texts = [c.text for _, c in arrivals if not c.done]
    assert [c.done for _, c in arrivals] == [False] * len(texts) + [True]
    assert texts == ["Hello", ",", " world"]  # the double's tokens, max_tokens of them
    # The double writes token i at the time it traces as `sent i`, one every
    # TOKEN_INTERVAL_S: the first chunk reached the client before token 1 was sent.
    sent = {
        int(words[1]): float(words[2])
        for words in (line.split() for line in (box.root / "trace.log").read_text().splitlines())
        if words[0] == "sent"
    }
    assert len(sent) == len(texts)
    assert arrivals[0][0] < sent[1], "StreamInfer's first chunk waited for the second token"
    assert arrivals[1][0] >= sent[1]


async def test_infer_answers_with_the_doubles_json(
    stub: runtime_pb2_grpc.AIRuntimeAsyncStub, box: Box
) -> None:
    await stub.LoadModel(load_request("tiny", gguf(box.models / "tiny.gguf")), timeout=30)
    answer = await stub.Infer(
        runtime_pb2.InferRequest(model="tiny", prompt="status?", system_prompt="be brief"),
        timeout=10,
    )
    assert answer.model_used == "tiny"
    assert answer.text.strip().startswith("{"), answer.text  # a JSON object, as aiOS asks
    assert answer.tokens_used > 0
    assert answer.latency_ms >= 0
    listed = await stub.ListModels(common_pb2.Empty(), timeout=5)
    [tiny] = listed.models
    assert tiny.request_count == 1
    assert tiny.last_used >= tiny.loaded_at


async def test_two_names_route_each_intelligence_level(
    stub: runtime_pb2_grpc.AIRuntimeAsyncStub, box: Box
) -> None:
    """One file loaded as a tinyllama-1.1b and a mistral-7b name (docs/aios-contract.md §4.5)."""
    path = gguf(box.models / "one.gguf")
    for name in (MISTRAL, TINY):  # load order is not routing order
        assert (await stub.LoadModel(load_request(name, path), timeout=30)).status == "ready"

    async def used(level: str, model: str = "") -> str:
        request = runtime_pb2.InferRequest(prompt="x", intelligence_level=level, model=model)
        return (await stub.Infer(request, timeout=10)).model_used

    assert await used("operational") == TINY
    assert await used("tactical") == MISTRAL
    assert await used("strategic") == MISTRAL
    assert await used("") == MISTRAL  # any ready model: the first known
    assert await used("operational", model=MISTRAL) == MISTRAL  # a ready name wins
    assert await used("operational", model="not-there") == TINY  # falls through
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await used("reactive")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    chunks = stub.StreamInfer(
        runtime_pb2.InferRequest(prompt="x", intelligence_level="operational", max_tokens=1),
        timeout=10,
    )
    assert [c async for c in chunks][-1].done


async def test_nothing_loaded_is_unavailable_and_strategic_failed_precondition(
    stub: runtime_pb2_grpc.AIRuntimeAsyncStub,
) -> None:
    for level, code in (
        ("operational", grpc.StatusCode.UNAVAILABLE),
        ("strategic", grpc.StatusCode.FAILED_PRECONDITION),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Infer(runtime_pb2.InferRequest(intelligence_level=level), timeout=5)
        assert caught.value.code() == code
        with pytest.raises(grpc.aio.AioRpcError) as streamed:
            async for _ in stub.StreamInfer(
                runtime_pb2.InferRequest(intelligence_level=level), timeout=5
            ):
                pass
        assert streamed.value.code() == code


async def test_a_named_model_file_is_loaded_on_demand(
    server: RuntimeServer, stub: runtime_pb2_grpc.AIRuntimeAsyncStub, box: Box
) -> None:
    gguf(box.models / "helper-7b.gguf")
    requests = [
        stub.Infer(runtime_pb2.InferRequest(model="helper-7b", prompt="x"), timeout=30)
        for _ in range(3)
    ]
    answers = await asyncio.gather(*requests)  # concurrent first requests: one load
    assert [a.model_used for a in answers] == ["helper-7b"] * 3
    details = (await describe(server))["helper-7b"]
    assert details.on_demand
    assert details.model_path == str(box.models / "helper-7b.gguf")
    assert (details.context_length, details.threads) == (2048, 2)
    assert details.restarts == 0
    # a name without a file is not loaded: it falls through to routing (any ready model)
    other = await stub.Infer(runtime_pb2.InferRequest(model="nothing-here"), timeout=5)
    assert other.model_used == "helper-7b"
    assert set(await describe(server)) == {"helper-7b"}


async def test_health_check_is_aioss_shape(
    stub: runtime_pb2_grpc.AIRuntimeAsyncStub, box: Box
) -> None:
    empty = await stub.HealthCheck(common_pb2.Empty(), timeout=5)
    assert (empty.healthy, empty.service) == (True, "aios-runtime")
    assert empty.message.startswith("0/0 models loaded, uptime ")
    status = await stub.LoadModel(load_request("tiny", gguf(box.models / "t.gguf")), timeout=30)
    health = await stub.HealthCheck(common_pb2.Empty(), timeout=5)
    assert health.message.startswith("1/1 models loaded, uptime ")
    assert dict(health.details) == {
        "loaded_models": "1",
        "total_models": "1",
        "model:tiny": f"status=ready port={status.port}",
    }


# -- the command --


def test_aios_runtime_serve_stops_its_llama_servers_on_sigterm(box: Box) -> None:
    path = gguf(box.models / "tiny.gguf")
    argv = [*SERVE, "--listen", box.target, "--model-dir", str(box.models),
            "--state-dir", str(box.state), "--llama-server", str(box.binary),
            "--health-interval", "0.2"]  # fmt: skip
    log = box.root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not box.socket.exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

        async def load() -> int:
            async with grpc.aio.insecure_channel(box.target) as channel:
                client = runtime_pb2_grpc.AIRuntimeStub(channel)
                await client.LoadModel(load_request("tiny", path), timeout=30)
                details = runtime_details_pb2_grpc.RuntimeDetailsStub(channel)
                [model] = (await details.Describe(common_pb2.Empty(), timeout=5)).models
                return int(model.pid)

        pid = asyncio.run(load())
        assert alive(pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
        assert wait_gone(pid), "a llama-server outlived `aios runtime serve`"
        assert not box.socket.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_aios_runtime_serve_refuses_a_public_address(box: Box) -> None:
    result = subprocess.run(
        [*SERVE, "--listen", "0.0.0.0:50055", "--state-dir", str(box.state)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "not a loopback address" in result.stderr
    assert not box.state.exists()


# -- hostile LoadModel requests (attack cases) --------------------------------------------
# The name becomes <model dir>/<name> (without a path) and a log file name; the path becomes
# llama-server's --model argument: each is refused with INVALID_ARGUMENT naming the field,
# starts no child (the double traces every start) and writes nothing outside the state dir.

NAME_RULE = "model_name must be one printable file name part"
PATH_RULE = "model_path must be an absolute path"
HOSTILE_LOADS: list[tuple[str, str, str, dict[str, int], str]] = [
    ("name-parent", "..", "", {}, NAME_RULE),
    ("name-dot", ".", "", {}, NAME_RULE),
    ("name-hidden", ".hidden", "", {}, NAME_RULE),
    ("name-option", "-x", "", {}, NAME_RULE),
    ("name-slash", "../../escape", "", {}, NAME_RULE),
    ("name-newline", "a\nb", "", {}, NAME_RULE),
    ("name-nul", "a\0b", "", {}, NAME_RULE),
    ("name-too-long", "m" * 300, "", {}, NAME_RULE),
    ("name-too-many-bytes", "ß" * 101, "", {}, NAME_RULE),
    ("path-relative", "m", "escape.gguf", {}, PATH_RULE),
    ("path-option", "m", "--host=0.0.0.0", {}, PATH_RULE),
    ("path-newline", "m", "/tmp/a\nb.gguf", {}, PATH_RULE),
    ("path-nul", "m", "/tmp/a\0b.gguf", {}, PATH_RULE),
    ("threads-huge", "m", "", {"threads": 2147483647}, "threads must be 1..1024"),
    ("gpu-layers-negative", "m", "", {"gpu_layers": -2147483648}, "gpu_layers must be -1..1024"),
    ("context-huge", "m", "", {"ctx": 2147483647}, "context_length must be 128..1048576"),
    ("context-tiny", "m", "", {"ctx": 8}, "context_length must be 128..1048576"),
]


def _started(box: Box) -> list[str]:
    trace = box.root / "trace.log"
    return trace.read_text().splitlines() if trace.exists() else []


@pytest.mark.parametrize(
    ("case", "name", "path", "numbers", "message"),
    HOSTILE_LOADS,
    ids=[c[0] for c in HOSTILE_LOADS],
)
async def test_hostile_load_is_refused_before_anything_starts(
    box: Box,
    stub: runtime_pb2_grpc.AIRuntimeAsyncStub,
    case: str,
    name: str,
    path: str,
    numbers: dict[str, int],
    message: str,
) -> None:
    gguf(box.root / "escape.gguf")  # a loadable file outside the model dir, as bait
    gguf(box.models / "m.gguf")
    before = sorted(p for p in box.root.rglob("*") if box.state not in p.parents)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.LoadModel(load_request(name, path, **numbers))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    assert message in (caught.value.details() or ""), caught.value.details()
    assert _started(box) == [], case
    listed = await stub.ListModels(common_pb2.Empty())
    assert list(listed.models) == []
    after = sorted(p for p in box.root.rglob("*") if box.state not in p.parents)
    assert after == before, case
