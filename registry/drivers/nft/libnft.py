"""nft listings in process, through libnftables (ctypes) with buffered output.

`nft list …` prints its listing with one write(2) per token — about 120,000
system calls for a 10,000-rule table — and the registry then reads them back
through a pipe. libnftables with a buffered output context (what the nft
binary runs, minus those writes) lists the same text byte for byte in about
60% of the time (10,000 rules: ~130 ms instead of ~210 ms on the reference VM).

Only read-only commands go through here, and only when the registry itself
runs in the namespace the tool acts on (no `--netns`): libnftables talks to
the calling thread's network namespace. Loads stay with the nft binary
(atomic, and killable by the pipeline's timeout). `run()` blocks: call it in a
worker thread. libnftables keeps process-wide state (its interface-name cache,
released by every nft_ctx_free), so two contexts in two threads at once print
wrong text (`iif 1` for `iif "lo"`) or crash the process: `run()` holds one
lock for a context's whole life, and concurrent listings queue. When
libnftables.so.1 cannot be loaded, `available()` is False
and callers use the binary.

`generation()` asks the kernel for the namespace's nf_tables generation id
(NFT_MSG_GETGEN over netlink, ~0.1 ms), which every committed transaction
bumps: registry.drivers.nft.ruleset uses it to serve an unchanged listing from memory.
Used by registry.drivers.nft.ruleset.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import threading

_SONAME = "libnftables.so.1"
_lock = threading.Lock()
_run_lock = threading.Lock()  # libnftables is not thread-safe across contexts (see above)
_lib: ctypes.CDLL | None = None
_loaded = False


def _load() -> ctypes.CDLL | None:
    global _lib, _loaded
    with _lock:
        if _loaded:
            return _lib
        _loaded = True
        try:
            lib = ctypes.CDLL(_SONAME)
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_free.restype = None
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            lib.nft_ctx_output_set_flags.restype = None
        except (OSError, AttributeError):
            return None
        _lib = lib
        return _lib


def available() -> bool:
    return _load() is not None


_OUTPUT_HANDLE = 1 << 3  # NFT_CTX_OUTPUT_HANDLE: what `nft -a` sets


def run(command: str) -> tuple[int, str, str]:
    """Run one nft command (e.g. `list table inet filter`): (status, output, error text).

    A leading `-a ` asks for handles, as the binary's flag does (`-a list table inet filter`).
    """
    handles = command.startswith("-a ")
    if handles:
        command = command[3:]
    lib = _load()
    if lib is None:
        raise OSError(f"{_SONAME} is not available")
    with _run_lock:
        ctx = lib.nft_ctx_new(0)  # NFT_CTX_DEFAULT, as the nft binary
        if not ctx:
            raise OSError("nft_ctx_new failed")
        try:
            if lib.nft_ctx_buffer_output(ctx) != 0 or lib.nft_ctx_buffer_error(ctx) != 0:
                raise OSError("libnftables could not buffer its output")
            if handles:
                lib.nft_ctx_output_set_flags(ctx, _OUTPUT_HANDLE)
            status = lib.nft_run_cmd_from_buffer(ctx, command.encode())
            out = lib.nft_ctx_get_output_buffer(ctx) or b""
            err = lib.nft_ctx_get_error_buffer(ctx) or b""
        finally:
            lib.nft_ctx_free(ctx)
    return status, out.decode(errors="replace"), err.decode(errors="replace")


_NETLINK_NETFILTER = 12
_NFNL_SUBSYS_NFTABLES = 10
_NFT_MSG_GETGEN = 16
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NFTA_GEN_ID = 1
_NLA_TYPE_MASK = 0x3FFF


def generation() -> int | None:
    """This namespace's nf_tables generation id, or None when it cannot be read."""
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER) as sock:
            sock.settimeout(1.0)
            body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0)  # nfgenmsg
            msg_type = (_NFNL_SUBSYS_NFTABLES << 8) | _NFT_MSG_GETGEN
            sock.sendall(
                struct.pack("=IHHII", 16 + len(body), msg_type, _NLM_F_REQUEST, 1, 0) + body
            )
            return parse_generation(sock.recv(65536))
    except OSError:
        return None


def parse_generation(data: bytes) -> int | None:
    """NFTA_GEN_ID from a NFT_MSG_NEWGEN reply (None: an error or no such attribute)."""
    if len(data) < 20:
        return None
    length, msg_type = struct.unpack_from("=IH", data, 0)
    if msg_type == _NLMSG_ERROR or length > len(data):
        return None
    offset = 16 + 4  # nlmsghdr + nfgenmsg
    while offset + 4 <= length:
        attr_len, attr_type = struct.unpack_from("=HH", data, offset)
        if attr_len < 4:
            return None
        if attr_type & _NLA_TYPE_MASK == _NFTA_GEN_ID and attr_len >= 8:
            return int(struct.unpack_from(">I", data, offset + 4)[0])
        offset += (attr_len + 3) & ~3
    return None
