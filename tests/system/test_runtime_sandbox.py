"""The sandbox's AI runtime with a real llama-server and SmolLM2, driven by `aios apply`.

Each test gets its own sandbox (`box`: `aios sandbox up` starts the registry and, in
its namespaces, `aios runtime serve` on `<sandbox>/runtime.sock`) and applies
examples/ai-workstation (or a copy of it) with the real CLI: storage mounts the
models filesystem, the models controller fetches SmolLM2 from the sandbox's model
server and loads it (`load: always`, one thread, context 512) through the registry's
model.load, which forwards to the sandbox's runtime. This process then talks to the
runtime directly over its unix socket with the contract's stubs (AIRuntime, and
RuntimeDetails.Describe for pids and parameters) and reads llama-server's own /props
inside the sandbox's netns. Covered: the runtime shares the registry's mount and network
namespaces and is restarted with it (or alone, when only it died); Infer answers
with tokens; a killed llama-server
and a model unloaded behind aios's back are both loaded and ready again after the
next apply; `sandbox down` leaves no runtime and no llama-server; a contextLength
change reloads the model with the new n_ctx (read back from /props); a wrong sha256
is refused with the mismatch in the status and nothing is loaded.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import grpc

from contract._gen import (
    common_pb2,
    runtime_details_pb2,
    runtime_details_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from sandbox.demo import SMOLLM2, SMOLLM2_SHA256
from tests.system.cli_support import aios, apply, ok, statuses
from tests.system.engine_support import REPO, Box, box  # noqa: F401

EXAMPLE = REPO / "examples" / "ai-workstation"
MODEL_PATH = f"/var/lib/aios/models/{SMOLLM2}.gguf"
PROPS = """
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/props", timeout=10) as reply:
    print(json.dumps(json.load(reply)["default_generation_settings"]["n_ctx"]))
"""


def runtime_call(b: Box, call: str, request: object) -> object:
    """One unary RPC on the sandbox's runtime: AIRuntime.<call>, or RuntimeDetails.Describe."""

    async def go() -> object:
        async with grpc.aio.insecure_channel(b.record.runtime_address) as channel:
            if call == "Describe":
                stub: object = runtime_details_pb2_grpc.RuntimeDetailsStub(channel)
            else:
                stub = runtime_pb2_grpc.AIRuntimeStub(channel)
            return await getattr(stub, call)(request, timeout=120)

    return asyncio.run(go())


def described(b: Box) -> dict[str, runtime_details_pb2.ModelDetails]:
    reply = runtime_call(b, "Describe", common_pb2.Empty())
    assert isinstance(reply, runtime_details_pb2.ModelDetailsList)
    return {m.model_name: m for m in reply.models}


def smollm2(b: Box) -> runtime_details_pb2.ModelDetails:
    models = described(b)
    assert SMOLLM2 in models, f"{SMOLLM2} is not loaded: {models}"
    return models[SMOLLM2]


def n_ctx(b: Box, port: int) -> int:
    """The context size llama-server itself reports (/props, inside the sandbox's netns)."""
    return int(json.loads(b.sh(sys.executable, "-c", PROPS, str(port))))


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gone(pid: int, limit_s: float = 5.0) -> bool:
    deadline = time.monotonic() + limit_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def loading_under(root: Path) -> list[int]:
    """Pids of processes run with `--model`/`-m` a file under `root` (llama-servers)."""
    prefix = str(root).encode() + b"/"
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        pairs = itertools.pairwise(argv)
        if any(a in (b"--model", b"-m") and v.startswith(prefix) for a, v in pairs):
            found.append(int(cmdline.parent.name))
    return found


def assert_ready(b: Box, *, context_length: int = 512) -> runtime_details_pb2.ModelDetails:
    model = smollm2(b)
    assert model.status == "ready", model
    assert (model.context_length, model.threads, model.gpu_layers) == (context_length, 1, 0)
    assert model.model_path == f"{b.root}{MODEL_PATH}"
    assert model.port > 0 and model.pid > 0 and alive(model.pid)
    assert not model.on_demand
    return model


def all_ready(b: Box) -> None:
    assert {s[0] for s in statuses(b).values()} == {True}, statuses(b)


def health(b: Box) -> common_pb2.HealthStatus:
    reply = runtime_call(b, "HealthCheck", common_pb2.Empty())
    assert isinstance(reply, common_pb2.HealthStatus)
    return reply


def test_the_runtime_lives_and_restarts_with_the_sandbox(box: Box) -> None:  # noqa: F811
    first = box.record
    assert first.pid is not None and first.runtime_pid is not None and alive(first.runtime_pid)
    for ns in ("mnt", "net"):  # the registry's mounts and loopback are the runtime's
        assert os.readlink(f"/proc/{first.runtime_pid}/ns/{ns}") == os.readlink(
            f"/proc/{first.pid}/ns/{ns}"
        )
    assert first.runtime_socket.stat().st_mode & 0o777 == 0o600
    assert health(box).healthy and described(box) == {}

    os.kill(first.runtime_pid, signal.SIGKILL)  # the runtime alone died: only it restarts
    assert gone(first.runtime_pid)
    up = box.aios("sandbox", "up", box.name)
    assert up.returncode == 0 and "restarted" in up.stdout, up.stdout + up.stderr
    second = box.record
    assert second.pid == first.pid and second.runtime_pid not in (None, first.runtime_pid)
    assert health(box).healthy

    assert second.pid is not None and second.runtime_pid is not None
    os.kill(second.pid, signal.SIGKILL)  # the registry died: both restart, in one namespace
    assert gone(second.pid)
    assert box.aios("sandbox", "up", box.name).returncode == 0
    third = box.record
    assert third.pid != second.pid and gone(second.runtime_pid)
    assert third.pid is not None and third.runtime_pid is not None
    assert os.readlink(f"/proc/{third.runtime_pid}/ns/mnt") == os.readlink(
        f"/proc/{third.pid}/ns/mnt"
    )
    assert health(box).healthy
    assert "already running" in box.aios("sandbox", "up", box.name).stdout


def test_apply_loads_smollm2_infer_answers_drift_heals_down_leaves_nothing(box: Box) -> None:  # noqa: F811
    ok(apply(box, EXAMPLE))
    all_ready(box)
    first = assert_ready(box)
    assert first.sha256 in ("", SMOLLM2_SHA256)
    assert n_ctx(box, first.port) == 512
    reply = runtime_call(
        box,
        "Infer",
        runtime_pb2.InferRequest(
            model=SMOLLM2, prompt="Reply with one word: hello.", max_tokens=8, temperature=0.1
        ),
    )
    assert isinstance(reply, runtime_pb2.InferResponse)
    assert reply.model_used == SMOLLM2 and reply.tokens_used > 0 and reply.text.strip(), reply
    listed = runtime_call(box, "ListModels", common_pb2.Empty())
    assert isinstance(listed, runtime_pb2.ModelList)
    assert [(m.model_name, m.status) for m in listed.models] == [(SMOLLM2, "ready")]

    # llama-server killed: the next apply leaves it loaded and ready (a new process)
    os.kill(first.pid, signal.SIGKILL)
    assert gone(first.pid)
    ok(apply(box, EXAMPLE))
    all_ready(box)
    healed = assert_ready(box)
    assert healed.pid != first.pid

    # unloaded behind aios's back: the next apply loads it again
    unloaded = runtime_call(box, "UnloadModel", runtime_pb2.UnloadModelRequest(model_name=SMOLLM2))
    assert isinstance(unloaded, common_pb2.Status) and unloaded.success, unloaded
    assert gone(healed.pid) and SMOLLM2 not in described(box)
    writes = box.write_calls()
    ok(apply(box, EXAMPLE))
    all_ready(box)
    again = assert_ready(box)
    assert box.write_calls() > writes, "the reload was a write through the registry"
    writes = box.write_calls()
    ok(aios(box, "plan", "-f", str(EXAMPLE)))
    ok(apply(box, EXAMPLE))
    assert box.write_calls() == writes, "a loaded, ready model is left alone"

    record = box.record
    assert record.runtime_pid is not None and alive(record.runtime_pid)
    down = box.aios("sandbox", "down", box.name)
    assert down.returncode == 0, down.stderr
    assert f"stopped runtime (pid {record.runtime_pid})" in down.stdout
    assert gone(record.runtime_pid) and gone(again.pid)
    assert loading_under(record.root) == [], "a llama-server survived sandbox down"
    assert not record.dir.exists()


def test_a_context_length_change_reloads_with_the_new_n_ctx(box: Box, tmp_path: Path) -> None:  # noqa: F811
    example = tmp_path / "ai-workstation"
    shutil.copytree(EXAMPLE, example)
    ok(apply(box, example))
    before = assert_ready(box)
    models = example / "models.yaml"
    text = models.read_text()
    assert text.count("contextLength: 512") == 1
    models.write_text(text.replace("contextLength: 512", "contextLength: 1024"))
    plan = aios(box, "plan", "-f", str(example))
    assert plan.returncode == 2 and "model.load" in plan.stdout, plan.stdout + plan.stderr
    ok(apply(box, example))
    all_ready(box)
    after = assert_ready(box, context_length=1024)
    assert after.pid != before.pid and gone(before.pid)
    assert n_ctx(box, after.port) == 1024
    ok(aios(box, "plan", "-f", str(example)))


def test_a_wrong_sha256_is_refused_and_nothing_is_loaded(box: Box, tmp_path: Path) -> None:  # noqa: F811
    example = tmp_path / "ai-workstation"
    shutil.copytree(EXAMPLE, example)
    models = example / "models.yaml"
    wrong = "ab" * 32  # letters: an all-digit string would be a YAML number
    models.write_text(models.read_text().replace(SMOLLM2_SHA256, wrong))
    result = apply(box, example)
    assert result.returncode == 1, result.stdout + result.stderr
    ready, reason, message = statuses(box)["Models/layers"]
    assert not ready and "sha256 mismatch" in message, (reason, message)
    assert wrong in message and SMOLLM2_SHA256 in message
    assert described(box) == {}
    assert loading_under(box.root) == []
    assert box.sh("ls", f"{box.root}/var/lib/aios/models").split().count(f"{SMOLLM2}.gguf") == 0
