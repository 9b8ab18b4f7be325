"""Where the AI runtime listens: a 0600 unix socket, or loopback TCP; never another host.

`check_listen(listen)` refuses a TCP address that is not loopback (the runtime has no
authentication: whoever reaches it can load files as models and spend the CPU), `bind(server,
listen)` adds the port to a grpc.aio server and returns the address clients dial. A unix
socket is created with mode 0600 (umask 0177 while binding, chmod after) in a directory only
its owner (or root) can write; a stale socket of a runtime that is gone is replaced, a live
one or a non-socket is refused. The rules are the registry's (registry.server.grpc), kept
here because runtime imports only `contract`.

Called by runtime.server.RuntimeServer.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from pathlib import Path

import grpc

DEFAULT_LISTEN = "unix:///run/aios/runtime.sock"


def unix_path(listen: str) -> Path | None:
    """The socket path of a `unix:` address (`unix:///abs` or `unix:/abs`), else None."""
    if not listen.startswith("unix:"):
        return None
    rest = listen.removeprefix("unix:")
    rest = rest.removeprefix("//") if rest.startswith("///") else rest
    if not rest.startswith("/"):
        raise ValueError(f"unix socket path must be absolute: {listen!r}")
    return Path(rest)


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_listen(listen: str) -> None:
    """Refuse an address the runtime must not listen on (ValueError says why)."""
    if unix_path(listen) is not None:
        return
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address must be unix:///ABS/PATH or HOST:PORT, not {listen!r}")
    if not is_loopback(host):
        raise ValueError(
            f"refusing to listen on {listen}: not a loopback address, and the runtime has no "
            "authentication (anyone who reaches it can load files as models); use the unix "
            "socket or 127.0.0.1:PORT"
        )


def _check_socket_dir(directory: Path) -> None:
    info = directory.stat()
    if info.st_uid not in (0, os.geteuid()):
        raise OSError(
            f"socket directory {directory} belongs to uid {info.st_uid}: its owner could "
            "replace the runtime's socket; use a directory of your own"
        )
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise OSError(
            f"socket directory {directory} is writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}): anyone could replace the runtime's socket; "
            "use a directory only its owner can write"
        )


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def bind(server: grpc.aio.Server, listen: str) -> str:
    """Add `listen` to `server`; the address to dial (`unix:///…` or `HOST:PORT`)."""
    check_listen(listen)
    path = unix_path(listen)
    if path is None:
        port = server.add_insecure_port(listen)
        if port == 0:
            raise OSError(f"cannot listen on {listen}")
        return f"{listen.rpartition(':')[0]}:{port}"
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    _check_socket_dir(path.parent)
    if path.is_socket() and _answers(path):
        raise OSError(f"another process already serves on {path}")
    if path.is_socket() or path.is_symlink():
        owner = path.lstat().st_uid
        if owner not in (0, os.geteuid()):
            raise OSError(f"{path} belongs to uid {owner}: refusing to replace it")
        path.unlink()
    elif path.exists():
        raise OSError(f"{path} exists and is not a socket")
    old = os.umask(0o177)
    try:
        if server.add_insecure_port(f"unix:{path}") == 0:
            raise OSError(f"cannot listen on unix socket {path}")
    finally:
        os.umask(old)
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return f"unix://{path}"
