"""Where our gRPC servers listen: address forms, loopback, and a safe unix socket, written once.

Every server of ours uses it: the tool registry (registry.server.grpc), the AI
runtime (runtime.listen) and the reconciler daemon's API (reconciler.daemon.api).
`unix_path` reads `unix:///abs` / `unix:/abs` addresses; `is_loopback` says whether a
TCP host stays on this machine; `prepare_unix_socket` makes
the socket's directory, refuses one someone else could replace the socket in, refuses a
path another live server answers on or that is not a socket, and removes a stale socket
of a server that is gone; `private_umask` is the umask to bind under (0177: the socket is
born 0600) and `seal_unix_socket` sets 0600 afterwards (or 0660 and a group, for the
daemon's API when a group of operators may use it). Pure standard library (no grpc):
each server adds the port to its own grpc.aio server between the two calls.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path


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
    """True for localhost and loopback IPv4/IPv6 literals (brackets allowed)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_socket_dir(directory: Path, service: str) -> None:
    """Refuse a socket directory someone else could replace `service`'s socket in."""
    info = directory.stat()
    if info.st_uid not in (0, os.geteuid()):
        raise OSError(
            f"socket directory {directory} belongs to uid {info.st_uid}: its owner could "
            f"replace the {service}'s socket; use a directory of your own"
        )
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise OSError(
            f"socket directory {directory} is writable by group or others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}): anyone could replace the {service}'s socket; "
            "use a directory only its owner can write"
        )


def answers(path: Path) -> bool:
    """Whether something accepts connections on the unix socket `path`."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def prepare_unix_socket(path: Path, service: str) -> None:
    """Make `path` ready to bind for `service` ("registry", "runtime"); OSError says why not."""
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    check_socket_dir(path.parent, service)
    if path.is_socket() and answers(path):
        raise OSError(f"another process already serves on {path}")
    if path.is_socket() or path.is_symlink():
        owner = path.lstat().st_uid
        if owner not in (0, os.geteuid()):
            raise OSError(
                f"{path} belongs to uid {owner}, not to this {service}: refusing to replace "
                "it; remove it or listen on a path in a directory of your own"
            )
        path.unlink()  # a stale socket of a server that is gone
    elif path.exists():
        raise OSError(f"{path} exists and is not a socket")


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Bind under umask 0177, so the socket is never reachable by others, even briefly."""
    old = os.umask(0o177)
    try:
        yield
    finally:
        os.umask(old)


def seal_unix_socket(path: Path, group: str | int | None = None) -> None:
    """Mode 0600 on the bound socket; with `group` (a name or gid), that group and 0660."""
    if group is None:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        return
    gid = group_id(group)
    os.chown(path, -1, gid)
    path.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)


def group_id(group: str | int) -> int:
    """The gid of a group name or number; OSError naming it when there is no such group."""
    import grp

    if isinstance(group, int) or group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise OSError(f"no such group {group!r} for the socket") from None
