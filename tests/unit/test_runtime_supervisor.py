"""runtime.supervisor with the llama-server double as the binary (health every 0.1 s).

Load → ready (its own process group, its log); the same parameters → unchanged; changed
ones → re-applied (a new pid, the new context read back from /props); a killed child →
`restarting: …` then ready again with restarts=1 within 2 s; a failing /health → the same;
a slow load blocks neither models() nor another model's load; unload (also during a load)
and close() leave no process of the group; refused files (not GGUF, wrong sidecar sha256)
and memory start nothing; early exit and load timeout as aiOS says; on-demand models
unloaded when idle; leftovers of a crashed supervisor killed at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from runtime import llama
from runtime.supervisor import LoadError, LoadParams, ModelInfo, Supervisor
from tests.fixtures import fake_llama_server
from tests.fixtures.fake_llama_server import launcher

HEALTH_S = 0.1
MIB = 1 << 20


def gguf(path: Path, extra: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\0" * 16 + extra)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(path: Path, text: str) -> None:
    path.write_text(text)


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, start_new_session=True)


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for init."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


async def until(check: Callable[[], bool], limit_s: float = 5.0) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit_s, "condition not reached in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


class Box:
    """A supervisor over tmp_path, and every pid it started (checked gone at the end)."""

    def __init__(self, tmp_path: Path, **kwargs: object) -> None:
        self.models = tmp_path / "models"
        self.state = tmp_path / "state"
        self.binary = launcher(tmp_path)
        self.sup = Supervisor(
            model_dir=self.models,
            state_dir=self.state,
            llama_server=str(self.binary),
            health_interval=HEALTH_S,
            **kwargs,  # type: ignore[arg-type]
        )
        self.pids: set[int] = set()

    def params(self, name: str, *, ctx: int = 512, threads: int = 1, port: int = 0) -> LoadParams:
        path = self.models / f"{name}.gguf"
        if not path.exists():
            gguf(path)
        return LoadParams(name, str(path), ctx, threads, 0, port)

    async def load(self, params: LoadParams, **kwargs: bool) -> ModelInfo:
        info = await self.sup.load(params, **kwargs)
        self.note(info)
        return info

    def note(self, info: ModelInfo | None) -> None:
        if info is not None and info.pid:
            self.pids.add(info.pid)


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[Box]:
    made = Box(tmp_path)
    await made.sup.start()
    try:
        yield made
    finally:
        for info in made.sup.models():
            made.note(info)
        await made.sup.close()
        assert made.sup.models() == []
        assert [p for p in made.pids if not gone(p)] == []


async def test_load_starts_a_healthy_child_in_its_own_group(box: Box) -> None:
    info = await box.load(box.params("alpha"))
    assert info.status == "ready"
    assert (info.context_length, info.threads, info.restarts, info.on_demand) == (512, 1, 0, False)
    assert info.pid and os.getpgid(info.pid) == info.pid  # a session of its own
    assert info.sha256 == digest(box.models / "alpha.gguf")
    assert info.loaded_at_ms > 0
    props = await llama.props(info.port)
    assert props["default_generation_settings"]["n_ctx"] == 512
    assert props["argv"] == [
        "--model", str(box.models / "alpha.gguf"), "--ctx-size", "512", "--n-gpu-layers", "0",
        "--threads", "1", "--port", str(info.port), "--host", "127.0.0.1", "--no-webui",
    ]  # fmt: skip
    log = (box.state / "logs" / "alpha.log").read_text()
    assert "fake llama-server listening" in log
    assert box.sup.get("alpha") == info
    assert box.sup.get("nope") is None


async def test_same_parameters_leave_it_alone_and_changed_ones_reapply(box: Box) -> None:
    first = await box.load(box.params("alpha", ctx=512))
    again = await box.load(box.params("alpha", ctx=512, port=0))
    spelled = box.params("alpha", ctx=512)
    same = await box.load(replace(spelled, path=spelled.path.replace("/models/", "/models//")))
    assert same.pid == first.pid
    assert (again.pid, again.port, again.status) == (first.pid, first.port, "ready")
    changed = await box.load(box.params("alpha", ctx=1024))
    assert changed.status == "ready"
    assert changed.pid != first.pid
    assert changed.context_length == 1024
    assert (await llama.props(changed.port))["default_generation_settings"]["n_ctx"] == 1024
    await until(lambda: gone(first.pid))
    threads = await box.load(box.params("alpha", ctx=1024, threads=2))
    assert threads.pid != changed.pid and threads.threads == 2
    assert [m.name for m in box.sup.models()] == ["alpha"]


async def test_a_killed_child_is_restarted_within_two_seconds(box: Box) -> None:
    info = await box.load(box.params("alpha"))
    os.kill(info.pid, signal.SIGKILL)
    seen: list[str] = []

    def healed() -> bool:
        now = box.sup.get("alpha")
        assert now is not None
        seen.append(now.status)
        return now.status == "ready" and now.restarts == 1

    took = await until(healed, limit_s=2.0)
    assert took < 2.0
    assert "restarting: llama-server exited with signal SIGKILL" in seen
    now = box.sup.get("alpha")
    assert now is not None
    box.note(now)
    assert now.pid != info.pid and now.port == info.port  # same endpoint
    assert now.last_error.startswith("llama-server exited with signal SIGKILL")
    assert await llama.health(now.port)


async def test_a_failing_health_check_restarts_the_child(
    box: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "unhealthy"
    monkeypatch.setenv("FAKE_LLAMA_UNHEALTHY", str(flag))
    info = await box.load(box.params("alpha"))
    flag.touch()
    await until(lambda: (box.sup.get("alpha") or info).status.startswith("restarting: /health"))
    assert gone(info.pid) or not await llama.health(info.port, wait_s=0.2)
    flag.unlink()
    await until(lambda: (box.sup.get("alpha") or info).status == "ready", limit_s=5.0)
    now = box.sup.get("alpha")
    assert now is not None and now.restarts >= 1 and now.pid != info.pid
    assert "/health failed 2 times" in now.last_error


async def test_a_slow_load_blocks_neither_reads_nor_other_loads(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLAMA_LOAD_DELAY", "1.0")
    slow = asyncio.create_task(box.load(box.params("slow")))
    await until(lambda: bool((box.sup.get("slow") or _none()).pid))
    monkeypatch.delenv("FAKE_LLAMA_LOAD_DELAY")  # the next child starts fast
    started = time.monotonic()
    listed = box.sup.models()
    assert time.monotonic() - started < 0.05
    assert [(m.name, m.status) for m in listed] == [("slow", "loading")]
    fast = await box.load(box.params("fast"))
    assert fast.status == "ready"
    slow_now = box.sup.get("slow")
    assert slow_now is not None and slow_now.status == "loading"  # still loading meanwhile
    box.note(slow_now)
    assert (await slow).status == "ready"


async def test_a_second_identical_load_waits_for_the_first(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLAMA_LOAD_DELAY", "0.5")
    params = box.params("alpha")
    first, second = await asyncio.gather(box.load(params), box.load(params))
    assert first.status == second.status == "ready"
    assert first.pid == second.pid


async def test_unload_kills_the_whole_process_group(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLAMA_GRANDCHILD", "1")
    info = await box.load(box.params("alpha"))
    grandchild = (await llama.props(info.port))["grandchild_pid"]
    assert grandchild and not gone(grandchild)
    await box.sup.unload("alpha")
    assert box.sup.get("alpha") is None
    assert gone(info.pid)
    await until(lambda: gone(grandchild), limit_s=2.0)
    with pytest.raises(LoadError) as unknown:
        await box.sup.unload("alpha")
    assert (unknown.value.code, unknown.value.message) == ("not_found", "Model 'alpha' not found")


async def test_unload_during_a_load_aborts_it(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLAMA_LOAD_DELAY", "30")
    loading = asyncio.create_task(box.load(box.params("alpha")))
    await until(lambda: bool((box.sup.get("alpha") or _none()).pid))
    info = box.sup.get("alpha")
    assert info is not None
    box.note(info)
    started = time.monotonic()
    await box.sup.unload("alpha")
    assert time.monotonic() - started < 2.0
    with pytest.raises(LoadError, match="unloaded while loading"):
        await loading
    assert box.sup.get("alpha") is None and gone(info.pid)


async def test_close_leaves_no_child(tmp_path: Path) -> None:
    made = Box(tmp_path)
    await made.sup.start()
    infos = [await made.load(made.params(n)) for n in ("a", "b", "c")]
    assert len({i.port for i in infos}) == 3  # never two on one port
    await made.sup.close()
    assert all(gone(i.pid) for i in infos)
    assert list((made.state / "children").iterdir()) == []
    with pytest.raises(LoadError, match="shutting down"):
        await made.sup.load(made.params("d"))


async def test_a_file_that_is_not_gguf_is_refused(box: Box) -> None:
    bad = box.models / "bad.gguf"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"<html>not a model</html>")
    with pytest.raises(LoadError) as refused:
        await box.load(LoadParams("bad", str(bad), 512, 1, 0))
    assert refused.value.code == "internal"
    assert refused.value.message == (
        f"{bad} is not a GGUF file: it starts with b'<htm', expected b'GGUF'"
    )
    with pytest.raises(LoadError, match="does not exist"):
        await box.load(LoadParams("none", str(box.models / "none.gguf"), 512, 1, 0))
    assert box.sup.models() == []
    assert not (box.state / "logs").exists()  # nothing was started


async def test_the_sidecar_sha256_must_match(box: Box) -> None:
    params = box.params("alpha")
    path = Path(params.path)
    actual = digest(path)
    write(Path(f"{path}.sha256"), "ab" * 32 + "\n")
    with pytest.raises(LoadError) as refused:
        await box.load(params)
    assert refused.value.code == "internal"
    assert refused.value.message == (
        f"sha256 of {path} is {actual}, but {path}.sha256 expects {'ab' * 32}"
    )
    assert box.sup.models() == []
    write(Path(f"{path}.sha256"), actual + "\n")
    info = await box.load(params)
    assert info.status == "ready" and info.sha256 == actual


async def test_a_refused_reapply_keeps_the_running_model(box: Box) -> None:
    info = await box.load(box.params("alpha"))
    bad = box.models / "bad.gguf"
    bad.write_bytes(b"nope")
    with pytest.raises(LoadError, match="not a GGUF file"):
        await box.load(LoadParams("alpha", str(bad), 512, 1, 0))
    now = box.sup.get("alpha")
    assert now is not None and (now.pid, now.status) == (info.pid, "ready")


async def test_a_model_that_does_not_fit_in_memory_is_refused(tmp_path: Path) -> None:
    made = Box(tmp_path, mem_available=lambda: 100 * MIB)
    await made.sup.start()
    try:
        with pytest.raises(LoadError) as refused:
            await made.load(made.params("tinyllama-1.1b"))
        assert refused.value.code == "failed_precondition"
        # The test file's metadata is unparseable: 24 bytes + 64 MiB + 32000 x 512 x 4.
        assert refused.value.message == "model tinyllama-1.1b needs ~127 MiB, 100 MiB available"
        assert made.sup.models() == []
    finally:
        await made.sup.close()


async def test_an_early_exit_is_a_load_error_with_the_log(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLAMA_EXIT_AFTER", "0")
    monkeypatch.setenv("FAKE_LLAMA_EXIT_CODE", "3")
    with pytest.raises(LoadError) as failed:
        await box.load(box.params("alpha"))
    assert failed.value.code == "internal"
    assert failed.value.message == (
        "llama-server exited early with status 3: "
        "fake llama-server: exiting at once (FAKE_LLAMA_EXIT_AFTER=0)"
    )
    info = box.sup.get("alpha")
    assert info is not None and info.status == "error: llama-server exited early with status 3"
    monkeypatch.delenv("FAKE_LLAMA_EXIT_AFTER")
    healed = await box.load(box.params("alpha"))  # same parameters: an error is loaded again
    assert healed.status == "ready"


async def test_no_health_in_time_is_an_error_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLAMA_LOAD_DELAY", "30")
    made = Box(tmp_path, load_timeout_s=0.5)
    await made.sup.start()
    try:
        loading = asyncio.create_task(made.load(made.params("alpha")))
        await until(lambda: bool((made.sup.get("alpha") or _none()).pid))
        pid = (made.sup.get("alpha") or _none()).pid
        info = await loading
        assert info.status == "error: llama-server did not become healthy within 0.5s"
        assert info.pid == 0 and gone(pid)
    finally:
        await made.sup.close()


async def test_a_missing_binary_is_a_load_error(tmp_path: Path) -> None:
    made = Box(tmp_path)
    made.sup.llama_server = str(tmp_path / "no-such-llama-server")
    with pytest.raises(LoadError) as failed:
        await made.load(made.params("alpha"))
    assert failed.value.code == "internal"
    assert failed.value.message == (
        f"cannot start llama-server {tmp_path}/no-such-llama-server: No such file or directory"
    )
    await made.sup.close()


async def test_a_port_held_by_another_model_is_refused(box: Box) -> None:
    held = await box.load(box.params("alpha"))
    with pytest.raises(LoadError) as refused:
        await box.load(box.params("beta", port=held.port))
    assert refused.value.code == "invalid_argument"
    assert refused.value.message == f"port {held.port} is already used by model 'alpha'"


async def test_bad_parameters_are_invalid_arguments(box: Box) -> None:
    for params in (
        LoadParams("", "/x.gguf", 512, 1, 0),
        LoadParams("a", "/x.gguf", 0, 1, 0),
        LoadParams("a", "/x.gguf", 512, 1, 0, port=70000),
    ):
        with pytest.raises(LoadError) as refused:
            await box.load(params)
        assert refused.value.code == "invalid_argument"


async def test_on_demand_models_are_unloaded_when_idle(tmp_path: Path) -> None:
    made = Box(tmp_path, idle_unload_s=0.4)
    await made.sup.start()
    try:
        assert made.sup.on_demand_path("lazy") is None
        gguf(made.models / "lazy.gguf")
        path = made.sup.on_demand_path("lazy")
        assert path == made.models / "lazy.gguf"
        assert made.sup.on_demand_path("../lazy") is None
        lazy = await made.load(LoadParams("lazy", str(path), 512, 1, 0), on_demand=True)
        kept = await made.load(made.params("kept"))
        assert lazy.on_demand and not kept.on_demand
        for _ in range(3):  # requests keep it loaded
            await asyncio.sleep(0.2)
            made.sup.used("lazy")
        used = made.sup.get("lazy")
        assert used is not None and used.request_count == 3 and used.last_used_ms > 0
        await until(lambda: made.sup.get("lazy") is None, limit_s=3.0)
        assert gone(lazy.pid)
        assert made.sup.get("kept") is not None
    finally:
        await made.sup.close()


async def test_an_explicit_load_makes_an_on_demand_model_permanent(tmp_path: Path) -> None:
    made = Box(tmp_path, idle_unload_s=0.3)
    await made.sup.start()
    try:
        params = made.params("lazy")
        await made.load(params, on_demand=True)
        info = await made.load(params)
        assert not info.on_demand
        await asyncio.sleep(0.6)
        assert made.sup.get("lazy") is not None
    finally:
        await made.sup.close()


async def test_leftovers_of_a_previous_supervisor_are_killed(tmp_path: Path) -> None:
    made = Box(tmp_path)
    model = gguf(made.models / "old.gguf")
    flags = ["--model", str(model), "--port", "0", "--host", "127.0.0.1"]  # any free port
    fake = Path(fake_llama_server.__file__)
    leftover = spawn([sys.executable, str(fake), *flags])
    unrelated = spawn(["sleep", "30"])
    try:
        children = made.state / "children"
        children.mkdir(parents=True)
        record = {"name": "old", "pid": leftover.pid, "argv": [str(made.binary), *flags]}
        (children / f"{leftover.pid}.json").write_text(json.dumps(record))
        stale = {"name": "x", "pid": unrelated.pid, "argv": [str(made.binary), "--model", "y"]}
        (children / f"{unrelated.pid}.json").write_text(json.dumps(stale))
        await asyncio.sleep(0.3)  # the leftover is up (its cmdline is the interpreter's)
        await made.sup.start()
        assert leftover.wait(timeout=5) == -signal.SIGKILL
        assert unrelated.poll() is None  # not ours: another command line
        assert list(children.iterdir()) == []
    finally:
        await made.sup.close()
        for proc in (leftover, unrelated):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _none() -> ModelInfo:
    """A placeholder while a model is not known yet (pid 0, status '')."""
    return ModelInfo("", "", "", 0, 0, 0, "", 0, 0, 0, "", 0, 0, 0, False)


async def test_a_load_that_cannot_start_is_an_error_and_is_not_left_loading(box: Box) -> None:
    """An OSError on the way to llama-server (here: its log directory cannot be made) is a
    LoadError, and the model is forgotten: a second load must not answer "loading" as if fine."""
    box.state.mkdir(parents=True, exist_ok=True)
    (box.state / "logs").write_text("not a directory")
    for _ in range(2):
        with pytest.raises(LoadError) as caught:
            await box.load(box.params("alpha"))
        assert caught.value.code == "internal"
        assert "cannot start llama-server" in caught.value.message
        assert box.sup.models() == []
