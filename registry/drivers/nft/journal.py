"""A journal of committed nf_tables transactions, read from the kernel's own notifications.

Listing a 10,000-rule table costs ~115 ms (libnftables) and the kernel's rule
dump alone ~45 ms, while the commit that changed it — in the common drift,
someone deleting a rule — is announced by the kernel at once: every committed
transaction sends its objects (NFT_MSG_DELRULE with table, chain and handle,
NFT_MSG_NEWRULE, NEWCHAIN, NEWSET, ...) to the NFNLGRP_NFTABLES multicast group,
then NFT_MSG_NEWGEN with the new generation id. `Journal` listens there on a
thread of its own (the registry's namespace: it is started only when the
registry runs in the namespace it acts on) and keeps, per generation id, what
that transaction did to each table: nothing, rule deletions only (chain,
handle), or anything else.

registry.drivers.nft.ruleset serves an unchanged listing from memory while the
generation id has not moved; with the journal it also brings a remembered
`nft -a list table` listing forward across later transactions (`advance`):
tables a transaction did not touch print as before; deleted rules are dropped
from the remembered text by handle (each rule prints on one line ending in
`# handle N`); anything else — a rule added by someone else, a chain, set,
table or object change, a transaction not seen whole — is a miss, and the
table is listed again. So the result is always nft's own text for the
generation asked about, or nothing.

Why it cannot advance across a transaction it did not see whole: the
generations it journals must be contiguous from the listing's to the current
one; the first transaction after the socket was bound (it may have begun before)
and any transaction during which the socket overflowed (ENOBUFS: the kernel
dropped notifications) are journaled as "everything changed". The kernel queues
a transaction's notifications before GETGEN can return its id, so a caller that
sees generation G waits (in a worker thread) at most `CATCH_UP_S` for the
journal's thread to read them.
Used by registry.drivers.nft.ruleset.
"""

from __future__ import annotations

import errno
import socket
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from registry.drivers.nft import libnft

Ref = tuple[str, str]
Deleted = tuple[str, int]  # (chain, rule handle)

_NETLINK_NETFILTER = 12
_NFNLGRP_NFTABLES = 7
_SOL_NETLINK = 270
_SO_RCVBUFFORCE = 33  # not in the socket module of 3.11
_NETLINK_ADD_MEMBERSHIP = 1
_SUBSYS_NFTABLES = 10
_NFT_MSG_DELRULE = 8
_NFT_MSG_NEWGEN = 15
_NLMSG_MIN_TYPE = 0x10
_NLA_TYPE_MASK = 0x3FFF
_ATTR_TABLE = 1  # NFTA_{TABLE_NAME,CHAIN_TABLE,RULE_TABLE,SET_TABLE,...}: all type 1
_RULE_CHAIN, _RULE_HANDLE = 2, 3
_GEN_ID = 1
_FAMILIES = {1: "inet", 2: "ip", 3: "arp", 5: "netdev", 7: "bridge", 10: "ip6"}
_HEADER = struct.Struct("=IHHII")
_ATTR = struct.Struct("=HH")

KEEP = 256  # transactions remembered
CATCH_UP_S = 0.25  # longest wait for the thread to read a transaction the kernel announced
RCVBUF = 8 << 20


@dataclass
class Txn:
    """What one committed transaction did: per table, the rules it deleted (chain, handle),
    or None when it changed the table in any other way; `everything`: not seen whole."""

    everything: bool = False
    tables: dict[Ref, list[Deleted] | None] = field(default_factory=dict)

    def touch(self, r: Ref) -> None:
        self.tables[r] = None

    def delete(self, r: Ref, chain: str, handle: int) -> None:
        if r not in self.tables:
            self.tables[r] = []
        deleted = self.tables[r]
        if deleted is not None:
            deleted.append((chain, handle))


def _attrs(data: bytes, start: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    while start + 4 <= end:
        length, kind = _ATTR.unpack_from(data, start)
        if length < 4 or start + length > end:
            raise ValueError("truncated attribute")
        out[kind & _NLA_TYPE_MASK] = data[start + 4 : start + length]
        start += (length + 3) & ~3
    return out


def _name(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.split(b"\0", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        return None


def read_messages(data: bytes, pending: Txn) -> tuple[list[tuple[int, Txn]], Txn]:
    """Fold one datagram's notifications into `pending`: (each (generation, txn) a NEWGEN
    closed, the transaction still open after them). A message it cannot read marks
    the transaction as not seen whole."""
    closed: list[tuple[int, Txn]] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            pending.everything = True
            break
        end = offset + length
        body = offset + _HEADER.size
        offset += (length + 3) & ~3
        if kind < _NLMSG_MIN_TYPE:  # NOOP, ERROR, DONE, OVERRUN: nothing of ours
            continue
        if kind >> 8 != _SUBSYS_NFTABLES or body + 4 > end:
            continue
        family = _FAMILIES.get(data[body])
        try:
            attrs = _attrs(data, body + 4, end)
        except ValueError:
            pending.everything = True
            continue
        message = kind & 0xFF
        if message == _NFT_MSG_NEWGEN:
            raw = attrs.get(_GEN_ID)
            if raw is None or len(raw) < 4:
                pending.everything = True
                continue
            closed.append((int.from_bytes(raw[:4], "big"), pending))
            pending = Txn()
            continue
        table = _name(attrs.get(_ATTR_TABLE))
        if family is None or table is None:
            pending.everything = True
            continue
        chain = _name(attrs.get(_RULE_CHAIN))
        handle = attrs.get(_RULE_HANDLE)
        if message == _NFT_MSG_DELRULE and chain is not None and handle and len(handle) == 8:
            pending.delete((family, table), chain, int.from_bytes(handle, "big"))
        else:
            pending.touch((family, table))
    return closed, pending


class Journal:
    """The listener thread and the transactions it read (see the module docstring)."""

    def __init__(self) -> None:
        self._txns: OrderedDict[int, Txn] = OrderedDict()
        self._seen: int | None = None  # the last generation read
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._first: int | None = None  # generations up to this one are not trusted

    def start(self) -> bool:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
        except OSError:
            return False
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, RCVBUF)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            sock.bind((0, 0))
            sock.setsockopt(_SOL_NETLINK, _NETLINK_ADD_MEMBERSHIP, _NFNLGRP_NFTABLES)
        except OSError:
            sock.close()
            return False
        now = libnft.generation()
        if now is None:
            sock.close()
            return False
        # The transaction after `now` may have begun before the bind: not trusted either.
        self._first = (now + 1) & 0xFFFFFFFF
        self._seen = now
        self._sock = sock
        threading.Thread(target=self._listen, name="nft-journal", daemon=True).start()
        return True

    def _listen(self) -> None:
        assert self._sock is not None
        pending = Txn()
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # notifications were dropped
                    pending.everything = True
                    self.lost(libnft.generation())
                    continue
                if exc.errno == errno.EINTR:
                    continue
                with self._cond:
                    self._seen = None  # the journal is gone: nothing advances any more
                    self._txns.clear()
                    self._cond.notify_all()
                return
            closed, pending = read_messages(data, pending)
            if closed:
                self.record(closed)

    def record(self, closed: Iterable[tuple[int, Txn]]) -> None:
        """Journal transactions the kernel announced as committed (the thread calls this)."""
        with self._cond:
            for generation, txn in closed:
                if generation == self._first or (
                    self._seen is not None and generation != (self._seen + 1) & 0xFFFFFFFF
                ):
                    txn.everything = True  # before our time, or one went missing
                self._txns[generation] = txn
                self._seen = generation
            while len(self._txns) > KEEP:
                self._txns.popitem(last=False)
            self._cond.notify_all()

    def lost(self, now: int | None) -> None:
        """The kernel dropped notifications: every transaction up to `now` (the current
        generation) is journaled as not seen whole, so no one waits for them."""
        with self._cond:
            if self._seen is None or now is None:
                return
            while self._seen != now and len(self._txns) <= 2 * KEEP:
                self._seen = (self._seen + 1) & 0xFFFFFFFF
                self._txns[self._seen] = Txn(everything=True)
            while len(self._txns) > KEEP:
                self._txns.popitem(last=False)
            self._cond.notify_all()

    def caught_up(self, generation: int) -> bool:
        """Whether the thread has read the transaction of `generation` (or stopped)."""
        with self._cond:
            return self._seen is None or generation in self._txns

    def wait_for(self, generation: int, timeout: float) -> bool:
        """Block (a worker thread, never the event loop) until `generation` was read."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._seen is None or generation in self._txns, timeout
            )

    def between(self, since: int, until: int) -> list[Txn] | None:
        """The transactions of generations since+1 .. until, in order; None when any is
        missing (not read yet, forgotten, lost) or was not seen whole."""
        count = (until - since) & 0xFFFFFFFF
        if count > KEEP:
            return None
        with self._cond:
            txns = [self._txns.get((since + 1 + i) & 0xFFFFFFFF) for i in range(count)]
        if any(t is None or t.everything for t in txns):
            return None
        return [t for t in txns if t is not None]


def covers(command: str) -> tuple[bool, Ref | None] | None:
    """(with handles, the one table or None for the whole ruleset) of a listing command
    the journal can bring forward; None for any other command."""
    words = command.split()
    handles = words[:1] == ["-a"]
    if handles:
        words = words[1:]
    if words == ["list", "ruleset"]:
        return handles, None
    if len(words) == 4 and words[:2] == ["list", "table"]:
        return handles, (words[2], words[3])
    return None


def advance(text: str, command: str, txns: Sequence[Txn]) -> str | None:
    """`command`'s listing `text` after `txns`, or None when it cannot be known from them."""
    what = covers(command)
    if what is None:
        return None
    handles, only = what
    deletions: dict[Ref, list[Deleted]] = {}
    for txn in txns:
        for r, deleted in txn.tables.items():
            if only is not None and r != only:
                continue
            if deleted is None or not handles:
                return None
            deletions.setdefault(r, []).extend(deleted)
    if not deletions:
        return text
    return without_rules(text, deletions)


def without_rules(text: str, deletions: dict[Ref, list[Deleted]]) -> str | None:
    """An `nft -a list` text without the rules named (table, chain, handle); None when one
    is not where it should be (then the text is not the one they were deleted from)."""
    lines = text.split("\n")
    drop: set[int] = set()
    for r, deleted in deletions.items():
        span = _table_span(lines, r)
        if span is None:
            return None
        wanted: dict[str, set[int]] = {}
        for chain, handle in deleted:
            wanted.setdefault(chain, set()).add(handle)
        for chain, handles in wanted.items():
            found = _rule_lines(lines, span, chain, handles)
            if found is None:
                return None
            drop.update(found)
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


def _table_span(lines: Sequence[str], r: Ref) -> tuple[int, int] | None:
    head = f"table {r[0]} {r[1]} {{"
    for i, line in enumerate(lines):
        if line == head or line.startswith(head + " # handle "):
            for j in range(i + 1, len(lines)):
                if lines[j] == "}":
                    return i, j
            return None
    return None


def _rule_lines(
    lines: Sequence[str], span: tuple[int, int], chain: str, handles: Iterable[int]
) -> list[int] | None:
    head = f"\tchain {chain} {{ # handle "
    start = next((i for i in range(span[0] + 1, span[1]) if lines[i].startswith(head)), None)
    if start is None:
        return None
    tails = {f" # handle {h}" for h in handles}
    found: list[int] = []
    for i in range(start + 1, span[1]):
        line = lines[i]
        if line == "\t}":
            break
        if line.startswith("\t\t") and line[line.rfind(" # handle ") :] in tails:
            found.append(i)
    return found if len(found) == len(tails) else None


_journal: Journal | None = None
_started = False
_lock = threading.Lock()


def journal() -> Journal | None:
    """The process's journal, started on first use (None when it cannot listen)."""
    global _journal, _started
    with _lock:
        if not _started:
            _started = True
            candidate = Journal()
            _journal = candidate if candidate.start() else None
        return _journal
