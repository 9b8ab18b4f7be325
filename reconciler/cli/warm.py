"""The warm helper behind `aios`: imports everything once, forks per command.

Started in the background by reconciler.cli.launch (`python -m
reconciler.cli.warm SOCKET SIGNATURE`). It imports the CLI, the engine, the
registry client, the spec models and every controller, builds the spec models'
validators, then listens on SOCKET (mode 0600 in a 0700 directory; one helper
per socket, held by a lock). For each connection it checks the peer is the
same user, that the client lives in the same namespaces and runs the same
code, then forks: the child takes the client's stdin/stdout/stderr, working
directory, environment, umask and argv and runs `reconciler.cli.main.main`
exactly as a cold process would, as the leader of a process group of its
own. A thread per child (`watch`) waits for two things at once: the child's
exit (a pidfd), whose status it sends back, and the launcher's hang-up of
the connection — the launcher is gone (kill -9 included) and no one waits
for the command any more, so the child's whole process group gets SIGKILL,
exactly what a kill -9 of a cold `aios` does to its work (its locks are
released, its gRPC calls are cancelled, and the registry stops the tools
that can stop safely). The helper itself never opens a gRPC channel or an
event loop (both must not cross a fork). It exits after IDLE_SECONDS without
a command, or as soon as the code it imported has changed on disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import io
import marshal
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from reconciler.cli.launch import HEADER, namespaces, signature

# What commands use, imported once in the helper (a child imports nothing more
# for the common commands).
WARM_MODULES = (
    "jsonschema",
    "ruamel.yaml",
    "reconciler.cli.common",
    "reconciler.cli.inspect_cmds",
    "reconciler.cli.main",
    "reconciler.cli.plan_cmds",
    "reconciler.cli.validate",
    "reconciler.config",
    "reconciler.engine.reconcile",
    "reconciler.engine.store",
    "reconciler.client",
    "reconciler.render",
    "sandbox.lifecycle",
    "specs.loader",
)
IDLE_SECONDS = 600
CHECK_SECONDS = 30
MAX_FRAME = 4 << 20
POLL_FALLBACK_S = 0.2  # how often `watch` looks for the child's exit without a pidfd
# Connections of launchers still waiting for their command: a child forked for one
# must not keep another's open (its launcher's hang-up would go unnoticed).
_OPEN: set[socket.socket] = set()
_OPEN_LOCK = threading.Lock()


def warm_up() -> None:
    """Import what commands use and build the spec validators once."""
    for name in WARM_MODULES:
        importlib.import_module(name)
    from controllers import load_controller
    from reconciler.cli.common import domains
    from specs.base import Resource

    for domain in domains():  # every declared domain's controller and spec models
        load_controller(domain)
    for model in domains().kinds.models(Resource).values():
        model.model_rebuild(force=True)
    # Keep what is imported out of the collector's reach: a child touching
    # these objects would otherwise copy their pages (copy-on-write) on the
    # first collection.
    gc.collect()
    gc.freeze()


def recv_request(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One length-prefixed marshalled frame and the file descriptors sent with it."""
    itemsize = struct.calcsize("i")
    header, ancdata, _flags, _addr = conn.recvmsg(HEADER.size, socket.CMSG_SPACE(3 * itemsize))
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            count = len(data) // itemsize
            fds.extend(struct.unpack(f"{count}i", data[: count * itemsize]))
    if len(header) != HEADER.size:
        raise ValueError("short header")
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ValueError("request too large")
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            raise ValueError("truncated request")
        body += chunk
    request = marshal.loads(body)  # noqa: S302 - the peer is this user (checked before use)
    if not isinstance(request, dict):
        raise ValueError("request is not a mapping")
    return request, fds


def reply(conn: socket.socket, payload: dict[str, Any]) -> None:
    data = marshal.dumps(payload)
    conn.sendall(HEADER.pack(len(data)) + data)


def peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def refusal(request: dict[str, Any], conn: socket.socket, sig: str) -> str | None:
    if peer_uid(conn) != os.getuid():
        return "another user"
    if request.get("signature") != sig:
        return "other code"
    if request.get("ns") != namespaces():
        return "other namespaces"
    if not isinstance(request.get("argv"), list) or not isinstance(request.get("env"), dict):
        return "malformed request"
    return None


def run_child(
    request: dict[str, Any], fds: list[int], listener: socket.socket, conn: socket.socket
) -> None:
    """In the forked child: become the client's command and exit with its status."""
    code = 70
    try:
        os.setpgid(0, 0)  # a group of its own: what the helper kills when the launcher is gone
        listener.close()
        conn.close()
        for other in list(_OPEN):
            other.close()
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.umask(int(request["umask"]))
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in request["env"].items()})
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), line_buffering=os.isatty(1), write_through=True
        )
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), errors="backslashreplace", write_through=True
        )
        argv = [str(a) for a in request["argv"]]
        sys.argv = ["aios", *argv]
        from reconciler.cli.main import main

        try:
            main(argv)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        except KeyboardInterrupt:
            code = 130
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def kill_group(pid: int) -> None:
    """SIGKILL the child's process group (and the child, had setpgid not happened yet)."""
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def _hung_up(conn: socket.socket) -> bool:
    """True when the launcher closed its end (it sends nothing after its request)."""
    try:
        data = conn.recv(4096, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return not data


def watch(pid: int, conn: socket.socket) -> None:
    """Send the child's exit status back, or kill its group when the launcher is gone."""
    try:
        try:
            pidfd: int | None = os.pidfd_open(pid)
        except OSError:
            pidfd = None
        poller = select.poll()
        poller.register(conn, select.POLLIN | select.POLLHUP | select.POLLRDHUP)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        try:
            while True:
                done, _status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                events = poller.poll(None if pidfd is not None else POLL_FALLBACK_S * 1000)
                if any(fd == conn.fileno() for fd, _ in events) and _hung_up(conn):
                    kill_group(pid)
                    os.waitpid(pid, 0)
                    return
        finally:
            if pidfd is not None:
                os.close(pidfd)
        code = os.waitstatus_to_exitcode(_status)
        code = 128 - code if code < 0 else code
        reply(conn, {"exit": code})
    except OSError:
        pass
    finally:
        with _OPEN_LOCK:
            _OPEN.discard(conn)
        conn.close()


def handle(conn: socket.socket, listener: socket.socket, sig: str) -> None:
    try:
        request, fds = recv_request(conn)
    except (OSError, ValueError, EOFError, TypeError):  # a malformed frame: drop it
        conn.close()
        return
    reason = refusal(request, conn, sig)
    if reason is not None:
        with contextlib.suppress(OSError):
            reply(conn, {"refused": reason})
        for fd in fds:
            os.close(fd)
        conn.close()
        return
    with _OPEN_LOCK:  # no watcher thread may close a connection while the child copies them
        pid = os.fork()
        if pid == 0:
            run_child(request, fds, listener, conn)
        _OPEN.add(conn)
    with contextlib.suppress(OSError):  # the child may have done it (or exec'd) already
        os.setpgid(pid, pid)
    for fd in fds:
        os.close(fd)
    try:
        reply(conn, {"pid": pid})
    except OSError:
        kill_group(pid)  # the launcher is gone before the command even started
    threading.Thread(target=watch, args=(pid, conn), daemon=True).start()


def serve(path: Path, sig: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.parent.stat().st_uid != os.getuid() or path.parent.stat().st_mode & 0o077:
        return  # someone else's, or open to others: never serve from it
    lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another helper serves this socket
    warm_up()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Bound and listening under a private name first, then renamed over any stale
    # socket: a client that finds the path can always connect (never "refused").
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    old = os.umask(0o177)
    try:
        listener.bind(str(staging))
    finally:
        os.umask(old)
    listener.listen(16)
    staging.rename(path)
    last = checked = time.monotonic()
    try:
        while True:
            ready, _, _ = select.select([listener], [], [], CHECK_SECONDS)
            now = time.monotonic()
            if ready:
                conn, _ = listener.accept()
                handle(conn, listener, sig)
                last = now
            elif now - last > IDLE_SECONDS:
                return
            if now - checked >= CHECK_SECONDS:
                checked = now
                if signature() != sig:
                    return  # the code changed: a new helper will serve the new socket
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener.close()


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m reconciler.cli.warm SOCKET SIGNATURE")
    serve(Path(argv[0]), argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
