"""Where the AI runtime listens: a 0600 unix socket, or loopback TCP; never another host.

`check_listen(listen)` refuses a TCP address that is not loopback (the runtime has no
authentication: whoever reaches it can load files as models and spend the CPU), `bind(server,
listen)` adds the port to a grpc.aio server and returns the address clients dial. A unix
socket is created with mode 0600 (umask 0177 while binding, chmod after) in a directory only
its owner (or root) can write; a stale socket of a runtime that is gone is replaced, a live
one or a non-socket is refused. The socket rules are the registry's: both take them from
contract.sockets.

Called by runtime.server.RuntimeServer.
"""

from __future__ import annotations

import grpc

from contract.sockets import (
    is_loopback,
    prepare_unix_socket,
    private_umask,
    seal_unix_socket,
    unix_path,
)

DEFAULT_LISTEN = "unix:///run/aios/runtime.sock"


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


def bind(server: grpc.aio.Server, listen: str) -> str:
    """Add `listen` to `server`; the address to dial (`unix:///…` or `HOST:PORT`)."""
    check_listen(listen)
    path = unix_path(listen)
    if path is None:
        port = server.add_insecure_port(listen)
        if port == 0:
            raise OSError(f"cannot listen on {listen}")
        return f"{listen.rpartition(':')[0]}:{port}"
    prepare_unix_socket(path, "runtime")
    with private_umask():
        if server.add_insecure_port(f"unix:{path}") == 0:
            raise OSError(f"cannot listen on unix socket {path}")
    seal_unix_socket(path)
    return f"unix://{path}"
