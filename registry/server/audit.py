"""Append-only, HMAC-chained audit log of every Execute and Rollback (sqlite).

Table `audit_log` in `<state_dir>/audit.db`: id, execution_id, tool, agent,
task, reason, input_sha256, success, duration_ms, timestamp (RFC 3339 UTC),
target (the execution a Rollback undid, else ""), outcome (how a call ended
when that is not in `success`: "" normally, or e.g. `caller gone: cancelled;
restored`), prev_hash, hash. Input JSON is never stored, only its digest.

Keyed chain. `<state_dir>/audit.key` holds a random 256-bit key (64 hex
digits), created 0600 on first use and readable only by whoever runs the
registry (the writer refuses a key that is not a regular file of its own
with mode 0600). Each row's hash is HMAC-SHA256(key, domain ‖ prev_hash ‖
canonical JSON of every other field); the first row's prev_hash is GENESIS.
The head — the last hash, the row count, the last id, and `keyed_from` — also
lives outside the table in `audit.head` (JSON, replaced atomically: tmp +
fsync + rename) with its own HMAC, so `verify` detects an edited row, a row
rewritten and rechained without the key, an inserted or deleted row (the
last one included), a forged or garbage head, and a missing or wrong key.
What it does not prove: that whoever holds the key (root, or the registry's
user) did not rewrite the rows and the head together.

Logs written before keys existed (a head without a MAC, rows chained with
plain SHA-256 over the same fields minus `outcome`) are keyed on the first
start of this version: the head gets `keyed_from` = the next id and a MAC,
which anchors the old chain under the key from then on (a later rewrite of
an old row breaks the first keyed row's link). `verify` says which rows were
written unkeyed; a log never opened by this version verifies as "unkeyed"
(exit 1: nothing proves it was not rechained).

The writer continues the chain from the head file, never from the table, and
refuses to start on a head whose MAC fails, a head that is missing while the
table has rows, or an unkeyed head beside a key (each would launder a
tampered log). Triggers refuse UPDATE and DELETE through sqlite. Durability:
WAL with synchronous=FULL (a committed row is on disk before the head file
names it). Appends run on one worker thread, under an exclusive flock on
`audit.lock`; `verify` takes it shared, so it can run beside a live server.
Every failure to open or read the log is an AuditError with a message that
names the file and says what to do.

Called by registry.server.pipeline and registry.server.rollback (append), registry.server.grpc
(opens the log) and `aios registry audit verify` (reconciler.cli.registry).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GENESIS = "genesis"
DB_NAME = "audit.db"
HEAD_NAME = "audit.head"
LOCK_NAME = "audit.lock"
KEY_NAME = "audit.key"
HEAD_VERSION = 2
_ROW_DOMAIN = "aios-audit-row-v2\0"
_HEAD_DOMAIN = "aios-audit-head-v2\0"
_HEX = frozenset("0123456789abcdef")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    execution_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    agent TEXT NOT NULL,
    task TEXT NOT NULL,
    reason TEXT NOT NULL,
    input_sha256 TEXT NOT NULL,
    success INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    target TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_log_execution ON audit_log(execution_id);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""
# Fields an unkeyed (pre-key) row's SHA-256 covers, and a keyed row's HMAC.
_FIELDS = (
    "id",
    "execution_id",
    "tool",
    "agent",
    "task",
    "reason",
    "input_sha256",
    "success",
    "duration_ms",
    "timestamp",
    "target",
)
_KEYED_FIELDS = (*_FIELDS, "outcome")
_COLUMNS = (*_KEYED_FIELDS, "prev_hash", "hash")
_MOVE_ASIDE = "to start a new log, stop the registry and move audit.db and audit.head aside"


class AuditError(Exception):
    """The audit log cannot be opened or read; the message names the file and what to do."""


@dataclass(frozen=True)
class AuditEntry:
    """What the pipeline records about one call (id, time and hashes are added here)."""

    execution_id: str
    tool: str
    agent: str
    task: str
    reason: str
    input_sha256: str
    success: bool
    duration_ms: int
    target: str = ""
    outcome: str = ""


@dataclass(frozen=True)
class Head:
    """The chain's end as kept in audit.head; `mac` is None only in a pre-key head."""

    rows: int
    hash: str
    last_id: int
    keyed_from: int = 1  # the first row id chained with the key (earlier: plain SHA-256)
    mac: str | None = None

    def signed(self, key: bytes) -> Head:
        return Head(self.rows, self.hash, self.last_id, self.keyed_from, head_mac(key, self))


def input_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(fields: dict[str, Any], names: tuple[str, ...]) -> str:
    return json.dumps(
        {k: fields.get(k, "") for k in names},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The unkeyed link of a pre-key row: SHA-256 over prev_hash + canonical JSON."""
    return hashlib.sha256((prev_hash + _canonical(fields, _FIELDS)).encode("utf-8")).hexdigest()


def row_mac(key: bytes, prev_hash: str, fields: dict[str, Any]) -> str:
    """A keyed row's link: HMAC-SHA256 over domain + prev_hash + canonical JSON."""
    message = _ROW_DOMAIN + prev_hash + "\0" + _canonical(fields, _KEYED_FIELDS)
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def head_mac(key: bytes, head: Head) -> str:
    body = {
        "version": HEAD_VERSION,
        "rows": head.rows,
        "hash": head.hash,
        "last_id": head.last_id,
        "keyed_from": head.keyed_from,
    }
    message = _HEAD_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- the key ----------------------------------------------------------------------


def _read_key_file(path: Path, *, own: bool) -> bytes:
    """The key in `path` (64 hex digits); AuditError naming what is wrong with it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise AuditError(
            f"audit key {path} is missing: the log's rows cannot be checked without the key "
            "it was written with (restore audit.key from a backup; " + _MOVE_ASIDE + ")"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AuditError(
                f"audit key {path} is a symbolic link; refusing to follow it"
            ) from None
        raise AuditError(f"audit key {path} cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AuditError(f"audit key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise AuditError(
                f"audit key {path} is accessible by group or others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}): whoever read it can forge rows; "
                "chmod 600 it and treat rows written since as unproven"
            )
        if own and info.st_uid != os.geteuid():
            raise AuditError(
                f"audit key {path} belongs to uid {info.st_uid}, not to this registry "
                f"(uid {os.geteuid()}): run the registry as its owner"
            )
        data = os.read(fd, 256)
    finally:
        os.close(fd)
    text = data.decode("ascii", "replace").strip()
    if len(text) != 64 or not set(text) <= _HEX:
        raise AuditError(
            f"audit key {path} is not an audit key (64 lowercase hex digits expected, "
            f"found {len(data)} bytes): restore it from a backup, or " + _MOVE_ASIDE
        )
    return bytes.fromhex(text)


def _new_key_file(state_dir: Path) -> tuple[bytes, Path]:
    """A fresh key written (0600, fsynced) under a temporary name; made live by `_adopt_key`."""
    key = secrets.token_bytes(32)
    tmp = state_dir / f"{KEY_NAME}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (key.hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return key, tmp


def _adopt_key(state_dir: Path, tmp: Path) -> None:
    """Make the temporary key live (hard link: never replaces an existing key)."""
    os.link(tmp, state_dir / KEY_NAME)
    tmp.unlink()
    _fsync_dir(state_dir)


# -- the head -----------------------------------------------------------------------


def _int_field(data: dict[str, Any], name: str, minimum: int) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name!r} must be an integer >= {minimum}, found {value!r}")
    return value


def _hex_field(data: dict[str, Any], name: str, *, genesis: bool = False) -> str:
    value = data.get(name)
    if genesis and value == GENESIS:
        return GENESIS
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise ValueError(f"{name!r} must be a SHA-256 hex digest, found {value!r}")
    return value


def read_head(state_dir: Path) -> Head | None:
    """The head file, None when there is none; AuditError when it is not a valid head."""
    path = state_dir / HEAD_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditError(f"head file {path} cannot be read: {exc.strerror}") from None
    try:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8 text") from None
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"a JSON object is expected, found {type(data).__name__}")
        rows = _int_field(data, "rows", 0)
        digest = _hex_field(data, "hash", genesis=True)
        last_id = _int_field(data, "last_id", 0)
        if "mac" not in data:  # written before keys: no version, no keyed_from
            return Head(rows, digest, last_id, keyed_from=last_id + 1, mac=None)
        if data.get("version") != HEAD_VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        keyed_from = _int_field(data, "keyed_from", 1)
        mac = _hex_field(data, "mac")
    except ValueError as exc:
        raise AuditError(
            f"head file {path} is not a valid audit head ({exc}): it was truncated or "
            "overwritten; the log cannot be trusted past its last verified row "
            "(`aios registry audit verify`), and " + _MOVE_ASIDE
        ) from None
    return Head(rows, digest, last_id, keyed_from, mac)


def _write_head(state_dir: Path, head: Head) -> None:
    path = state_dir / HEAD_NAME
    tmp = path.with_name(path.name + ".tmp")
    body: dict[str, Any] = {"version": HEAD_VERSION, **asdict(head)}
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(body, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    _fsync_dir(state_dir)


# -- the database -------------------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _not_a_log(db: Path, exc: BaseException) -> AuditError:
    return AuditError(
        f"audit database {db} is not a readable sqlite audit log ({exc}): restore it from a "
        "backup, or " + _MOVE_ASIDE
    )


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        if mode == fcntl.LOCK_EX:
            raise
        yield  # a read-only state dir: verify without the lock (nothing can write there)
        return
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


class AuditLog:
    """The writer. One per state dir; `append` is safe from any task.

    Raises AuditError when the log cannot be opened or continued safely.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_path = state_dir / LOCK_NAME
        db = state_dir / DB_NAME
        try:
            self._conn = _connect(db)
            self._conn.executescript(_SCHEMA)
            columns = {r[1] for r in self._conn.execute("PRAGMA table_info(audit_log)")}
            if "outcome" not in columns:  # a table of a registry before keys
                self._conn.execute(
                    "ALTER TABLE audit_log ADD COLUMN outcome TEXT NOT NULL DEFAULT ''"
                )
        except sqlite3.Error as exc:
            with contextlib.suppress(Exception):
                self._conn.close()
            raise _not_a_log(db, exc) from None
        try:
            with _flock(self._lock_path, fcntl.LOCK_EX):
                self._key, self._head = self._open_chain()
        except BaseException:
            self._conn.close()
            raise
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")

    def _open_chain(self) -> tuple[bytes, Head]:
        """The key and the head to continue from, keying a pre-key log on the way."""
        state = self.state_dir
        head = read_head(state)
        key_path, tmp = state / KEY_NAME, state / f"{KEY_NAME}.tmp"
        if not os.path.lexists(key_path) and tmp.exists():  # key creation was interrupted
            with contextlib.suppress(AuditError):
                candidate = _read_key_file(tmp, own=True)
                if head is not None and head.mac == head_mac(candidate, head):
                    _adopt_key(state, tmp)
            tmp.unlink(missing_ok=True)
        has_key = os.path.lexists(key_path)
        last = self._conn.execute(
            "SELECT id, hash, (SELECT count(*) FROM audit_log) FROM audit_log "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if head is not None and head.mac is not None:
            key = _read_key_file(key_path, own=True)
            if not hmac.compare_digest(head.mac, head_mac(key, head)):
                raise AuditError(
                    f"head file {state / HEAD_NAME} fails its MAC: it was forged or rewritten, "
                    f"or {KEY_NAME} is not the key this log was written with; refusing to "
                    "continue (it would vouch for a tampered log): check with "
                    "`aios registry audit verify`, and " + _MOVE_ASIDE
                )
            return key, head
        if has_key:
            what = "is missing" if head is None else "has no MAC"
            if head is not None or last is not None:
                raise AuditError(
                    f"head file {state / HEAD_NAME} {what} although {KEY_NAME} exists: the head "
                    "was deleted or replaced (rows may have been removed with it); refusing to "
                    "continue: check with `aios registry audit verify`, and " + _MOVE_ASIDE
                )
            key = _read_key_file(key_path, own=True)  # a new log whose first head was lost
            fresh = Head(rows=0, hash=GENESIS, last_id=0).signed(key)
            _write_head(state, fresh)
            return key, fresh
        # No key yet: a new log, or one written before keys (with or without its head).
        if head is None and last is None:
            base = Head(rows=0, hash=GENESIS, last_id=0)
        elif head is None:
            log.error("audit: %s is missing; keying the log from the table's last row", HEAD_NAME)
            base = Head(rows=int(last[2]), hash=str(last[1]), last_id=int(last[0]))
        else:
            base = head
        if base.rows:
            log.warning(
                "audit: keying a log written without a key; rows 1-%d stay an unkeyed chain "
                "(anchored under the key from now on)",
                base.last_id,
            )
        key, tmp = _new_key_file(state)
        signed = Head(base.rows, base.hash, base.last_id, keyed_from=base.last_id + 1).signed(key)
        _write_head(state, signed)
        _adopt_key(state, tmp)
        return key, signed

    @property
    def head(self) -> Head:
        return self._head

    async def append(self, entry: AuditEntry) -> str:
        """Record one call durably; returns the row's hash."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._append_sync, entry)

    def _append_sync(self, entry: AuditEntry) -> str:
        with _flock(self._lock_path, fcntl.LOCK_EX):
            head = self._head
            (max_id,) = self._conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()
            fields: dict[str, Any] = asdict(entry)
            fields["success"] = int(entry.success)
            fields["id"] = max(head.last_id, int(max_id)) + 1
            fields["timestamp"] = _now()
            digest = row_mac(self._key, head.hash, fields)
            values = [fields[k] for k in _KEYED_FIELDS] + [head.hash, digest]
            self._conn.execute(
                f"INSERT INTO audit_log ({', '.join(_COLUMNS)}) "  # noqa: S608 - fixed names
                f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
                values,
            )
            new_head = Head(head.rows + 1, digest, int(fields["id"]), head.keyed_from)
            new_head = new_head.signed(self._key)
            _write_head(self.state_dir, new_head)
            self._head = new_head
            return digest

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._conn.close()


def _read_rows(db: Path) -> list[dict[str, Any]]:
    try:
        conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise _not_a_log(db, exc) from None
    try:
        conn.row_factory = sqlite3.Row
        columns = {r[1] for r in conn.execute("PRAGMA table_info(audit_log)")}
        if not columns:
            raise AuditError(f"audit database {db} has no audit_log table: " + _MOVE_ASIDE)
        missing = [c for c in (*_FIELDS, "prev_hash", "hash") if c not in columns]
        if missing:
            raise AuditError(
                f"audit database {db}: table audit_log lacks column(s) {', '.join(missing)} "
                "(it was altered): restore it from a backup, or " + _MOVE_ASIDE
            )
        return [dict(r) for r in conn.execute("SELECT * FROM audit_log ORDER BY id")]
    except sqlite3.Error as exc:
        raise _not_a_log(db, exc) from None
    finally:
        conn.close()


def rows(state_dir: Path) -> list[dict[str, Any]]:
    """Every row in id order, as dicts (tests, `aios registry audit`); AuditError if unreadable."""
    return _read_rows(state_dir / DB_NAME)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int
    head: str
    problem: str = ""  # first problem found, naming the row id
    bad_row: int | None = None
    note: str = ""  # said with an ok verdict: what the check does not cover


def verify(state_dir: Path) -> Verdict:
    """Walk the chain with the key and compare it with the head file; never raises."""
    try:
        return _verify(state_dir)
    except AuditError as exc:
        return Verdict(False, 0, "", str(exc))
    except OSError as exc:
        return Verdict(False, 0, "", f"audit log {state_dir} cannot be read: {exc}")


def _verify(state_dir: Path) -> Verdict:
    db = state_dir / DB_NAME
    if not db.exists():
        return Verdict(False, 0, "", f"no audit database at {db}")
    if not db.is_file():
        return Verdict(False, 0, "", f"audit database {db} is not a regular file")
    with _flock(state_dir / LOCK_NAME, fcntl.LOCK_SH):
        head = read_head(state_dir)
        table = _read_rows(db)
        key_path = state_dir / KEY_NAME
        has_key = os.path.lexists(key_path)
        key = _read_key_file(key_path, own=False) if has_key or (head and head.mac) else None
    if head is not None and head.mac is not None and key is not None:
        if not hmac.compare_digest(head.mac, head_mac(key, head)):
            return Verdict(
                False,
                0,
                "",
                f"head file {HEAD_NAME} fails its MAC: it was forged or rewritten, or "
                f"{KEY_NAME} is not the key this log was written with",
            )
    elif head is not None and key is not None:
        return Verdict(
            False,
            0,
            "",
            f"head file {HEAD_NAME} has no MAC although {KEY_NAME} exists: the head was "
            "replaced by an unkeyed one",
        )
    keyed_from = head.keyed_from if head is not None else (1 if key is not None else 1 << 62)
    walked = _walk(table, key, keyed_from)
    if isinstance(walked, Verdict):
        return walked
    count, prev = walked
    if head is None:
        return Verdict(False, count, prev, f"head file {HEAD_NAME} is missing")
    if count != head.rows or prev != head.hash:
        what = "deleted" if count < head.rows else "appended outside the registry"
        return Verdict(
            False,
            count,
            prev,
            f"table has {count} rows ending in {prev[:16]}, head file says {head.rows} rows "
            f"ending in {head.hash[:16]} (rows {what}, the last one included)",
            table[-1]["id"] if table else None,
        )
    if key is None:
        return Verdict(
            False,
            count,
            prev,
            f"unkeyed audit log (written before audit keys; no {KEY_NAME}): its {count} rows "
            "form an intact SHA-256 chain, but anyone who can write the state dir could have "
            "rewritten and rechained them; start this version's registry once on this state "
            "dir to key it (the rows so far are then anchored under the new key)",
        )
    note = ""
    if head.keyed_from > 1:
        note = (
            f"rows 1-{head.keyed_from - 1} were written before the log was keyed: the key "
            "anchors them as they were then, not before"
        )
    return Verdict(True, count, prev, note=note)


def _walk(
    table: list[dict[str, Any]], key: bytes | None, keyed_from: int
) -> tuple[int, str] | Verdict:
    """(rows, last hash) of an intact chain, or the Verdict naming the first bad row."""
    prev, count = GENESIS, 0
    for row in table:
        count += 1
        rid = row.get("id")
        if not isinstance(rid, int) or isinstance(rid, bool):
            return Verdict(False, count, prev, f"row {rid!r}: id is not an integer (row edited)")
        if row.get("prev_hash") != prev:
            return Verdict(
                False,
                count,
                prev,
                f"row {rid}: chain break: prev_hash does not match the hash of the row "
                "before it (a row was inserted or deleted)",
                rid,
            )
        stored = row.get("hash")
        if rid < keyed_from:
            if row_hash(prev, row) != stored:
                return Verdict(False, count, prev, f"row {rid}: hash mismatch (row edited)", rid)
        elif key is None:
            return Verdict(
                False, count, prev, f"row {rid}: keyed row, but there is no {KEY_NAME}", rid
            )
        elif not isinstance(stored, str) or not hmac.compare_digest(
            row_mac(key, prev, row), stored
        ):
            return Verdict(
                False,
                count,
                prev,
                f"row {rid}: hash mismatch (row edited, or rewritten and rechained without "
                "the audit key)",
                rid,
            )
        prev = str(stored)
    return count, prev
