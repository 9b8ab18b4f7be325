"""aiOS's probe tools in Python: ICMP echo, name resolution, HTTP GET, TCP connect.

Sockets live in the network namespace of the process that creates them, so
with a target namespace the tools run this module as a child inside it
(`ip netns exec NS python -m registry.drivers.net.probe`, request JSON on stdin, result
JSON on stdout, `{"error": ...}` and exit 1 on failure); without one they
call the functions in a worker thread. `ping` is not installed on these
machines: echo requests go over a raw ICMP socket (root) or a datagram one.
Called by registry.handlers.net.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import struct
import sys
import time
from typing import Any

BODY_LIMIT = 1 << 20
ECHO_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0


class ProbeError(Exception):
    """A probe failed in a way aiOS reports as a tool error."""


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo_socket(family: int) -> tuple[socket.socket, bool]:
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        return socket.socket(family, socket.SOCK_RAW, proto), True
    except PermissionError:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False


def _echo_once(sock: socket.socket, raw: bool, family: int, addr: Any, seq: int) -> float | None:
    ident = os.getpid() & 0xFFFF
    kind = 8 if family == socket.AF_INET else 128
    reply_kind = 0 if family == socket.AF_INET else 129
    payload = struct.pack("!d", time.monotonic()) + b"aios-probe"
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    checksum = _checksum(header + payload) if family == socket.AF_INET else 0
    packet = struct.pack("!BBHHH", kind, 0, checksum, ident, seq) + payload
    sent = time.monotonic()
    sock.sendto(packet, addr)
    deadline = sent + ECHO_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            break
        data = sock.recv(2048)
        if raw and family == socket.AF_INET:
            data = data[(data[0] & 0x0F) * 4 :]
        if len(data) < 8:
            continue
        r_kind, _, _, r_ident, r_seq = struct.unpack("!BBHHH", data[:8])
        if r_kind == reply_kind and r_seq == seq and (r_ident == ident or not raw):
            return (time.monotonic() - sent) * 1000.0
    return None


def ping(host: str, count: int) -> dict[str, Any]:
    """aiOS's net.ping: success when any echo came back; latency = average RTT in ms."""
    count = count or 3
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, None, type=socket.SOCK_RAW)[0]
    except (socket.gaierror, IndexError):
        return {"success": False, "latency_ms": 0.0}
    try:
        sock, raw = _echo_socket(family)
    except OSError as exc:
        raise ProbeError(f"cannot open an ICMP socket: {exc}") from None
    rtts: list[float] = []
    with sock:
        for seq in range(1, count + 1):
            with contextlib.suppress(OSError):
                rtt = _echo_once(sock, raw, family, addr, seq)
                if rtt is not None:
                    rtts.append(rtt)
            if seq < count:
                time.sleep(0.2)
    if not rtts:
        return {"success": False, "latency_ms": 0.0}
    return {"success": True, "latency_ms": round(sum(rtts) / len(rtts), 3)}


def resolve(hostname: str) -> dict[str, Any]:
    try:
        infos = socket.getaddrinfo(hostname, 0)
    except (socket.gaierror, UnicodeError) as exc:
        raise ProbeError(f"DNS resolution failed for {hostname}: {exc}") from None
    found: dict[str, None] = {}
    for info in infos:
        found[str(info[4][0])] = None
    return {"addresses": list(found)}


def port_scan(host: str, port: int) -> dict[str, Any]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return {"open": False}
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(CONNECT_TIMEOUT)
            try:
                sock.connect(addr)
            except OSError:
                continue
            return {"open": True}
    return {"open": False}


def http_get(url: str) -> dict[str, Any]:
    import httpx

    try:
        with (
            httpx.Client(follow_redirects=True, timeout=15.0) as client,
            client.stream("GET", url) as response,
        ):
            body = bytearray()
            total = 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if len(body) < BODY_LIMIT:
                    body += chunk[: BODY_LIMIT - len(body)]
            text = body.decode("utf-8", "replace")
            if total > BODY_LIMIT:
                text += f"... [truncated, total {total} bytes]"
            return {"status": response.status_code, "body": text}
    except httpx.HTTPError as exc:
        return {"status": 0, "body": str(exc)}


def dispatch(op: str, args: dict[str, Any]) -> dict[str, Any]:
    if op == "ping":
        return ping(str(args["host"]), int(args.get("count", 3)))
    if op == "dns":
        return resolve(str(args["hostname"]))
    if op == "port_scan":
        return port_scan(str(args["host"]), int(args["port"]))
    if op == "http_get":
        return http_get(str(args["url"]))
    raise ProbeError(f"unknown probe {op!r}")


def main() -> int:
    request = json.loads(sys.stdin.read() or "{}")
    try:
        result = dispatch(str(request.get("op")), dict(request.get("args", {})))
    except ProbeError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps({"result": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
