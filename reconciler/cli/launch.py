"""The `aios` console script: hand the command to a warm helper, or run it here.

Importing the engine (pydantic, grpc, asyncio, click, the spec models) costs
a quarter of a second, which would dominate every short `aios` command. So
the first `aios` run starts a helper process (reconciler.cli.warm) that has
imported everything once; later runs connect to its unix socket, pass their
argv, working directory, environment, umask and standard file descriptors,
and the helper forks a child that runs the command with exactly those — the
same code path as a cold run, minus the imports. Exit status and signals
(Ctrl-C) are passed through, and so is death: when this process dies (kill -9
included) its connection hangs up and the helper kills the command's process
group, as a kill -9 of a cold run ends its work.

The helper is used only when it is safe: same user (socket in a 0700
directory, peer credentials checked), same namespaces (a client inside
`ip netns exec` or another mount namespace runs cold), and same code (the
socket name carries a signature of every source file's size and mtime, the
interpreter and the installed packages, so an edit or an upgrade starts a
new helper; the old one exits when idle). Anything unexpected falls back to
running the command in this process. `AIOS_WARM=0` disables the helper.

Every run pays for this module, so it imports only built-in modules (frames are
`marshal`led; the signature is a CRC; the C modules `_socket`, `_signal` and
`_struct` instead of `socket`, `signal` and `struct`, which import `enum` and
`selectors`: ~7 ms of every run): about 1 ms.
"""

# os.path on purpose (pyproject ignores PTH here): importing pathlib costs every run ~4 ms.

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stub; the C half of `signal`
import _socket
import _struct
import marshal
import os
import sys
import zlib

TYPE_CHECKING = False  # typing itself costs an import every run pays for
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

# Every package of the project (the helper's code signature covers them all); equal to
# pyproject.toml's package lists (tests/unit/test_package_lists.py).
PACKAGES = ("contract", "specs", "controllers", "reconciler", "registry", "runtime", "sandbox")
NAMESPACES = ("net", "mnt", "pid", "user", "uts", "ipc")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORWARDED: tuple[int, ...] = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)
HEADER = _struct.Struct(">I")


def runtime_dir() -> str:
    """A directory (made 0700) for this user's helper socket."""
    uid = os.getuid()
    if uid == 0 and os.access("/run", os.W_OK):
        return "/run/aios-warm"
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "aios-warm")
    return f"/tmp/aios-warm-{uid}"  # noqa: S108


def signature() -> str:
    """Fingerprint of the code a helper runs: every source file's path, size and
    mtime, the interpreter, and the installed packages (site-packages mtime)."""
    crc = zlib.crc32(f"{sys.version}\0{sys.executable}".encode())
    stack = [os.path.join(ROOT, name) for name in PACKAGES]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    stack.append(entry.path)
            elif entry.name.endswith(".py"):
                info = entry.stat()
                crc = zlib.crc32(f"{entry.path}\0{info.st_size}\0{info.st_mtime_ns}".encode(), crc)
    for path in sys.path:
        if path.endswith("site-packages"):
            try:
                crc = zlib.crc32(f"{path}\0{os.stat(path).st_mtime_ns}".encode(), crc)
            except OSError:
                continue
    return f"{crc:08x}"


def socket_path(sig: str) -> str:
    return os.environ.get("AIOS_WARM_SOCKET") or os.path.join(runtime_dir(), f"cli-{sig}.sock")


def namespaces() -> dict[str, int]:
    """Inode numbers of this process's namespaces (a helper must share them all)."""
    out = {}
    for name in NAMESPACES:
        try:
            out[name] = os.stat(f"/proc/self/ns/{name}").st_ino
        except OSError:
            continue
    return out


def send_frame(sock: _socket.socket, payload: dict[str, Any], fds: list[int]) -> None:
    data = marshal.dumps(payload)
    rights = _struct.pack(f"{len(fds)}i", *fds)
    ancillary = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)] if fds else []
    sock.sendmsg([HEADER.pack(len(data)), data], ancillary)


def read_reply(sock: _socket.socket, buffer: bytearray) -> dict[str, Any] | None:
    """One length-prefixed marshalled reply, or None when the helper went away."""
    while True:
        if len(buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(buffer)
            if len(buffer) >= HEADER.size + length:
                data = bytes(buffer[HEADER.size : HEADER.size + length])
                del buffer[: HEADER.size + length]
                value = marshal.loads(data)  # noqa: S302 - from our own helper, same user
                return value if isinstance(value, dict) else None
        chunk = sock.recv(4096)
        if not chunk:
            return None
        buffer.extend(chunk)


def run_warm(argv: list[str]) -> int | None:
    """Run `argv` through the helper; None when it cannot (then run cold)."""
    sig = signature()
    path = socket_path(sig)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        start_helper(path, sig)
        return None
    try:
        return _talk(sock, argv, sig)
    finally:
        sock.close()


def _talk(sock: _socket.socket, argv: list[str], sig: str) -> int | None:
    """Send the request, then wait for the child's pid and its exit status."""
    request = {
        "argv": argv,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "umask": _umask(),
        "ns": namespaces(),
        "signature": sig,
    }
    try:
        send_frame(sock, request, [0, 1, 2])
    except OSError:
        return None
    buffer = bytearray()
    first = read_reply(sock, buffer)
    child = first.get("pid") if first else None
    debug = os.environ.get("AIOS_WARM_DEBUG") == "1"
    if not isinstance(child, int):
        if debug:
            print(f"aios: warm helper refused ({first}); running cold", file=sys.stderr)
        return None  # refused (other namespaces, other code): run cold
    if debug:
        print(f"aios: served by the warm helper (child {child})", file=sys.stderr)
    previous = {s: _signal.signal(s, _forwarder(child)) for s in FORWARDED}
    try:
        last = read_reply(sock, buffer)
    finally:
        for signum, handler in previous.items():
            _signal.signal(signum, handler)
    status = last.get("exit") if last else None
    if not isinstance(status, int):
        print("aios: the warm helper went away while running the command", file=sys.stderr)
        return 70
    return status


def _forwarder(child: int) -> Callable[[int, FrameType | None], None]:
    def forward(signum: int, frame: FrameType | None) -> None:
        try:
            os.kill(child, signum)
        except OSError:
            return

    return forward


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def start_helper(path: str, sig: str) -> None:
    """Start the helper in the background; this run goes on cold."""
    import subprocess

    try:
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if os.stat(directory).st_uid != os.getuid():
            return
        subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli.warm", path, sig],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
            cwd="/",
        )
    except OSError:
        return


def main() -> None:
    argv = sys.argv[1:]
    if os.environ.get("AIOS_WARM", "1") != "0":
        code = run_warm(argv)
        if code is not None:
            raise SystemExit(code)
    from reconciler.cli.main import main as cold

    cold(argv)


if __name__ == "__main__":
    main()
