"""Sandboxes: a registry in its own network and mount namespace over a scratch root.

`up(name)` creates network namespace `aios-<name>` (lo up), the directories
under `<base>/<name>/` (sandbox.box.layout; base: $AIOS_SANDBOX_DIR, default
/var/lib/aios/sandboxes) — `root/` (the scratch root: etc/, var/lib/aios/
models, …), `registry/` (the registry's state dir), `state/` (reserved for the
engine), `runtime/` (the AI runtime's state dir) — and starts `ip netns exec
aios-<name> unshare -m --propagation private <python> -c '…main()' registry
serve --listen unix://<dir>/registry.sock --root <dir>/root --state-dir
<dir>/registry --profile full --runtime unix://<dir>/runtime.sock` (the
runtime its model tools forward to) detached (own session, log in
`registry.log`). It waits for the socket and the standard gRPC
health check to answer SERVING (`_serving`, grpc.health.v1 directly: the
sandbox never imports the reconciler), records meta.json, then starts the AI
runtime in the registry's own namespaces (`nsenter -t <registry pid> -n -m …
runtime serve --listen unix://<dir>/runtime.sock --model-dir
<dir>/root/var/lib/aios/models --state-dir <dir>/runtime --health-interval 0.5
[--llama-server P]`, detached, log in `runtime.log`; P is $LLAMA_SERVER_PATH,
else the llama-server beside this interpreter, else the runtime's own search):
the same mount namespace, so the filesystem a Storage resource mounts over the
models directory is the one the runtime loads from; the same netns, so each
llama-server's 127.0.0.1 port is the sandbox's. It waits until the runtime's
AIRuntime/HealthCheck answers (a raw unary call: the sandbox imports no stubs),
records its pid, then runs sandbox.content.provision (package repository, model
server). Mounts the registry makes stay in its private mount namespace; links
and rules stay in the netns. Read state back with `nsenter -t <pid> -n -m`.

`up` of a sandbox that is running and healthy returns it as it is; one whose
registry serves but whose runtime died gets its runtime started again (in the
registry's namespaces; "restarted"). `up` of a stale one — its registry died
(kill -9, a crash) or stopped answering — stops its runtime (which lives in the
dead registry's mount namespace), restarts both and keeps everything: the
directory (root, registry state with its audit log and key, backups, the
engine's state), the netns and what is in it (links, routes, nft rules; it is
created again only when it is gone, e.g. after a reboot), loop devices; the
registry starts again with the profile recorded in meta.json, and provision
runs again (idempotent; it restarts the file server). A failed restart leaves
everything in place too: only `down` deletes a sandbox's content. Mounts the
dead registry made died with its private mount namespace; the next apply mounts
them again.

`down(name)`: sandbox.content.teardown, SIGTERM to the runtime's process group
(the runtime stops its llama-servers; any left — a runtime killed -9 leaves its
children — are killed by their `--model` path under the root) and to the
registry's (SIGKILL after a grace period), SIGKILL to anything else left in the
netns, detach loop devices backed by files under the sandbox dir, delete the
netns, and remove the dir — unless something under it is still mounted in the
host's mount namespace, which is reported and left alone. Both are idempotent;
`down` of an unknown sandbox is a no-op with a note.

The records (Sandbox, SandboxError, layout, read, load, is_running, list_sandboxes)
live in sandbox.box and are re-exported here. Used by reconciler.cli.sandbox, the
CLI's `--sandbox NAME` (via `load`), bench/ and system tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from registry.core.process import spawn_detached, stop_group
from sandbox.box import (
    BASE_ENV,
    DEFAULT_BASE,
    NAME_RE,
    Sandbox,
    SandboxError,
    base_dir,
    check_name,
    is_running,
    layout,
    list_sandboxes,
    load,
    read,
    runtime_running,
)

__all__ = [  # the records of sandbox.box, re-exported: callers use this module
    "BASE_ENV",
    "DEFAULT_BASE",
    "NAME_RE",
    "Sandbox",
    "SandboxError",
    "base_dir",
    "check_name",
    "down",
    "is_running",
    "layout",
    "list_sandboxes",
    "llama_server_path",
    "load",
    "mounts_under",
    "netns_exists",
    "read",
    "runtime_argv",
    "runtime_running",
    "start",
    "up",
]

START_TIMEOUT_S = 15.0
STOP_GRACE_S = 10.0
RUNTIME_STOP_GRACE_S = 15.0  # the runtime gives each llama-server up to 10 s
RUNTIME_HEALTH_INTERVAL_S = 0.5  # a killed llama-server is noticed and replaced within ~2 s
ROOT_DIRS = ("etc", "tmp", "var/lib/aios/models", "var/lib/dpkg", "var/cache", "srv", "mnt")


def _run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if check and proc.returncode != 0:
        raise SandboxError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def _log_tail(box: Sandbox, lines: int = 20, log: Path | None = None) -> str:
    try:
        text = (log or box.log).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
    except OSError:
        return "(no log)"


CLI_CODE = "from reconciler.cli.main import main; main()"


def _start_registry(box: Sandbox, profile: str) -> int:
    argv = [
        "ip", "netns", "exec", box.netns,
        "unshare", "-m", "--propagation", "private",
        sys.executable, "-c", CLI_CODE,
        "registry", "serve",
        "--listen", box.address,
        "--root", str(box.root),
        "--state-dir", str(box.registry_state),
        "--profile", profile,
        "--runtime", box.runtime_address,
    ]  # fmt: skip
    return spawn_detached(argv, log=box.log, cwd=box.dir)


def llama_server_path() -> str | None:
    """$LLAMA_SERVER_PATH, else the llama-server beside this interpreter (scripts/install.sh
    puts it in the venv), else None: the runtime searches its own defaults."""
    named = os.environ.get("LLAMA_SERVER_PATH")
    if named:
        return named
    beside = Path(sys.executable).parent / "llama-server"
    return str(beside) if beside.exists() else None


def runtime_argv(box: Sandbox) -> list[str]:
    """The command that runs `box`'s AI runtime in its registry's network and mount namespaces."""
    if box.pid is None:
        raise SandboxError(f"sandbox {box.name}: no registry to start the runtime beside")
    argv = [
        "nsenter", "-t", str(box.pid), "-n", "-m", "--",
        sys.executable, "-c", CLI_CODE,
        "runtime", "serve",
        "--listen", box.runtime_address,
        "--model-dir", str(box.model_dir),
        "--state-dir", str(box.runtime_state),
        "--health-interval", str(RUNTIME_HEALTH_INTERVAL_S),
    ]  # fmt: skip
    server = llama_server_path()
    if server:
        argv += ["--llama-server", server]
    return argv


def _start_runtime(box: Sandbox) -> int:
    """Start `runtime_argv(box)` detached (own session, log in runtime.log); its pid."""
    argv = runtime_argv(box)
    box.runtime_state.mkdir(parents=True, exist_ok=True)
    box.runtime_socket.unlink(missing_ok=True)  # a dead runtime's socket is not an answer
    return spawn_detached(argv, log=box.runtime_log, cwd=box.dir)


async def _runtime_answers(address: str, deadline_s: float) -> bool:
    """True when the AI runtime at `address` answers aios.runtime.AIRuntime/HealthCheck.

    A raw unary call (Empty is zero bytes; the reply is not decoded): the sandbox
    imports no generated stubs. Any RPC error is False.
    """
    import grpc

    async with grpc.aio.insecure_channel(address) as channel:
        check = channel.unary_unary(
            "/aios.runtime.AIRuntime/HealthCheck",
            request_serializer=lambda raw: raw,
            response_deserializer=lambda raw: raw,
        )
        try:
            await check(b"", timeout=deadline_s)
        except grpc.aio.AioRpcError:
            return False
    return True


async def _launch_runtime(box: Sandbox, limit_s: float) -> Sandbox:
    """Start the runtime for `box` (its registry serving), record it, wait until it answers."""
    pid = _start_runtime(box)
    box = Sandbox(**{**asdict(box), "runtime_pid": pid})
    _write_meta(box)
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if _is_zombie(pid):
            tail = _log_tail(box, log=box.runtime_log)
            raise SandboxError(f"the AI runtime exited during start-up:\n{tail}")
        if box.runtime_socket.exists() and await _runtime_answers(box.runtime_address, 1.0):
            return box
        await asyncio.sleep(0.1)
    tail = _log_tail(box, log=box.runtime_log)
    raise SandboxError(f"the AI runtime did not serve within {limit_s:.0f} s:\n{tail}")


def _model_servers(box: Sandbox) -> list[int]:
    """Pids of llama-servers (any process run with `--model`/`-m` FILE) loading a file
    under the sandbox's root: the runtime's children, found even when it is gone."""
    prefix = str(box.root).rstrip("/").encode() + b"/"
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        for flag, value in itertools.pairwise(argv):
            if flag in (b"--model", b"-m") and value.startswith(prefix):
                found.append(int(cmdline.parent.name))
                break
    return found


def _stop_runtime(box: Sandbox) -> list[str]:
    """Stop the recorded runtime's process group and any llama-server it left behind."""
    notes = []
    if runtime_running(box) and box.runtime_pid is not None:
        stop_group(box.runtime_pid, RUNTIME_STOP_GRACE_S)
        notes.append(f"stopped runtime (pid {box.runtime_pid})")
    for pid in _model_servers(box):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            # The runtime starts each llama-server as its own group leader: kill that group;
            # anything else (one started by hand in someone's shell) only by its pid.
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        notes.append(f"killed llama-server (pid {pid}) the runtime left")
    box.runtime_socket.unlink(missing_ok=True)
    return notes


async def _serving(address: str, deadline_s: float) -> bool:
    """True when the registry at `address` answers the standard health check with SERVING.

    A plain grpc.health.v1 Check on a channel of its own (the sandbox does not import
    the reconciler's client); any RPC error (not listening yet, refused, deadline) is
    False. grpc is imported here, not at module load: `--sandbox NAME` only reads records.
    """
    import grpc
    from grpc_health.v1 import health_pb2

    async with grpc.aio.insecure_channel(address) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            response = await check(health_pb2.HealthCheckRequest(service=""), timeout=deadline_s)
        except grpc.aio.AioRpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


async def _wait_serving(box: Sandbox, pid: int, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if _is_zombie(pid):
            raise SandboxError(f"the registry exited during start-up:\n{_log_tail(box)}")
        if box.socket.exists() and await _serving(box.address, deadline_s=1.0):
            return
        await asyncio.sleep(0.1)
    raise SandboxError(f"the registry did not serve within {limit_s:.0f} s:\n{_log_tail(box)}")


def _is_zombie(pid: int) -> bool:
    """Exited (gone, or a zombie not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def up(
    name: str,
    *,
    base: Path | None = None,
    profile: str | None = None,
    limit_s: float = START_TIMEOUT_S,
) -> Sandbox:
    """Create and start sandbox `name`, restart it when stale, or return it if it runs."""
    box, _how = await start(name, base=base, profile=profile, limit_s=limit_s)
    return box


async def start(
    name: str,
    *,
    base: Path | None = None,
    profile: str | None = None,
    limit_s: float = START_TIMEOUT_S,
) -> tuple[Sandbox, str]:
    """Like `up`; also says what it did: "started", "restarted" or "running".

    `profile` applies to a new sandbox; a stale one restarts with its recorded
    profile unless another is given.
    """
    box = layout(name, base)
    if box.meta_path.exists():
        current = read(name, base)
        if is_running(current) and await _serving(current.address, deadline_s=2.0):
            if runtime_running(current) and await _runtime_answers(
                current.runtime_address, deadline_s=2.0
            ):
                return current, "running"
            return await _restart_runtime(current, limit_s), "restarted"
        return await _restart(current, profile or current.profile, limit_s), "restarted"
    profile = profile or "full"
    try:
        for d in (box.dir, box.registry_state, box.state):
            d.mkdir(parents=True, exist_ok=True)
        box.dir.chmod(0o700)
        for sub in ROOT_DIRS:
            (box.root / sub).mkdir(parents=True, exist_ok=True)
        if netns_exists(box.netns):
            _run(["ip", "netns", "del", box.netns], check=False)
        _run(["ip", "netns", "add", box.netns])
        _run(["ip", "-n", box.netns, "link", "set", "lo", "up"])
        pid = _start_registry(box, profile)
        now = datetime.now(UTC).isoformat()
        box = Sandbox(**{**asdict(box), "pid": pid, "created": now, "profile": profile})
        _write_meta(box)
        await _wait_serving(box, pid, limit_s)
        box = await _launch_runtime(box, limit_s)
        from sandbox.content import provision

        await provision(box)
    except BaseException:
        with contextlib.suppress(Exception):
            await down(name, base=base)
        raise
    return box, "started"


async def _restart_runtime(box: Sandbox, limit_s: float) -> Sandbox:
    """The registry serves, its runtime does not: start the runtime again (nothing else)."""
    await asyncio.to_thread(_stop_runtime, box)
    try:
        return await _launch_runtime(box, limit_s)
    except SandboxError as exc:
        raise SandboxError(f"sandbox {box.name}: cannot restart its runtime: {exc}") from None


async def _restart(box: Sandbox, profile: str, limit_s: float) -> Sandbox:
    """Start a stale sandbox's servers again over everything it has (nothing is deleted)."""
    # The runtime lives in the old registry's mount namespace (and keeps it, with its
    # mounts, alive): stop it, or the next apply would mount the same image twice.
    await asyncio.to_thread(_stop_runtime, box)
    if is_running(box) and box.pid is not None:  # alive but not answering: stop it first
        await asyncio.to_thread(stop_group, box.pid, STOP_GRACE_S)
    keep = f"its state is kept (`aios sandbox down {box.name}` removes it)"
    try:
        for d in (box.dir, box.registry_state, box.state):
            d.mkdir(parents=True, exist_ok=True)
        for sub in ROOT_DIRS:
            (box.root / sub).mkdir(parents=True, exist_ok=True)
        if not netns_exists(box.netns):  # gone with a reboot: its links and rules went too
            _run(["ip", "netns", "add", box.netns])
        _run(["ip", "-n", box.netns, "link", "set", "lo", "up"])
        pid = _start_registry(box, profile)
    except (OSError, SandboxError) as exc:
        raise SandboxError(f"sandbox {box.name}: cannot restart: {exc}; {keep}") from None
    now = datetime.now(UTC).isoformat()
    box = Sandbox(**{**asdict(box), "pid": pid, "profile": profile, "restarted": now})
    _write_meta(box)
    try:
        await _wait_serving(box, pid, limit_s)
        box = await _launch_runtime(box, limit_s)
        from sandbox.content import provision

        await provision(box)
    except BaseException as exc:
        await asyncio.to_thread(_stop_runtime, box)  # not half-started
        await asyncio.to_thread(stop_group, pid, STOP_GRACE_S)
        if isinstance(exc, SandboxError):
            raise SandboxError(f"sandbox {box.name}: restart failed: {exc}\n{keep}") from None
        raise
    return box


def _write_meta(box: Sandbox) -> None:
    tmp = box.meta_path.with_name("meta.json.tmp")
    tmp.write_text(json.dumps(box.to_json(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(box.meta_path)


async def down(name: str, *, base: Path | None = None) -> list[str]:
    """Stop and remove sandbox `name`; returns notes (what was done or left)."""
    box = layout(name, base)
    notes: list[str] = []
    if box.meta_path.exists():
        box = read(name, base)
        try:
            from sandbox.content import teardown

            await teardown(box)
        except Exception as exc:
            notes.append(f"teardown hook failed: {type(exc).__name__}: {exc}")
    elif not box.dir.exists() and not netns_exists(box.netns):
        return [f"no sandbox {name}: nothing to do"]
    notes.extend(await asyncio.to_thread(_stop_runtime, box))
    if is_running(box) and box.pid is not None:
        await asyncio.to_thread(stop_group, box.pid, STOP_GRACE_S)
        notes.append(f"stopped registry (pid {box.pid})")
    if netns_exists(box.netns):
        await _kill_netns_pids(box.netns)
    notes.extend(_detach_loops(box.dir))
    if netns_exists(box.netns):
        _run(["ip", "netns", "del", box.netns])
        notes.append(f"deleted netns {box.netns}")
    mounted = mounts_under(box.dir)
    if mounted:
        raise SandboxError(
            f"not removing {box.dir}: still mounted in the host's mount namespace: "
            + ", ".join(mounted)
        )
    if box.dir.exists():
        shutil.rmtree(box.dir)
        notes.append(f"removed {box.dir}")
    return notes


async def _kill_netns_pids(netns: str) -> None:
    """SIGKILL whatever still runs in the netns (servers a provision hook started)."""
    pids = _run(["ip", "netns", "pids", netns], check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    for _ in range(100):
        if not _run(["ip", "netns", "pids", netns], check=False).stdout.split():
            return
        await asyncio.sleep(0.05)


def _detach_loops(directory: Path) -> list[str]:
    proc = _run(["losetup", "-J"], check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    notes = []
    prefix = str(directory).rstrip("/") + "/"
    for dev in json.loads(proc.stdout).get("loopdevices", []):
        backing = str(dev.get("back-file") or "").removesuffix(" (deleted)")
        if backing.startswith(prefix):
            _run(["losetup", "-d", dev["name"]], check=False)
            notes.append(f"detached {dev['name']} ({backing})")
    return notes


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below `directory` in this process's mount namespace."""
    prefix = str(directory).rstrip("/")
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found
