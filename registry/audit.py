"""Append-only, hash-chained audit log of every Execute and Rollback (sqlite).

Table `audit_log` in `<state_dir>/audit.db`: id, execution_id, tool, agent,
task, reason, input_sha256, success, duration_ms, timestamp (RFC 3339 UTC),
target (the execution a Rollback undid, else ""), prev_hash, hash. Each row's
hash is SHA-256 over `prev_hash` followed by the canonical JSON of every other
field (id included); the first row's prev_hash is GENESIS. Input JSON is never
stored, only its digest.

The head hash, the row count and the last id also live outside the table, in
`audit.head` (JSON, replaced atomically: tmp + fsync + rename), so deleting or
appending rows, including the last one, is detected by `verify`. The writer
continues the chain from the head file, not from the table. Triggers refuse
UPDATE and DELETE through sqlite; editing the file by other means is what
`verify` catches. Durability: WAL with synchronous=FULL (a committed row is on
disk before the head file names it). Appends run on one worker thread, under
an exclusive flock on `audit.lock`; `verify` takes it shared, so it can run
beside a live server.

Called by registry.pipeline (append) and `aios registry audit verify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import sqlite3
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
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_execution ON audit_log(execution_id);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
"""
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


@dataclass(frozen=True)
class Head:
    rows: int
    hash: str
    last_id: int


def input_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over prev_hash + the canonical JSON of the row's fields."""
    canonical = json.dumps(
        {k: fields[k] for k in _FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


@contextlib.contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


def read_head(state_dir: Path) -> Head | None:
    path = state_dir / HEAD_NAME
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Head(rows=int(data["rows"]), hash=str(data["hash"]), last_id=int(data["last_id"]))


def _write_head(state_dir: Path, head: Head) -> None:
    path = state_dir / HEAD_NAME
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(asdict(head), f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    dir_fd = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class AuditLog:
    """The writer. One per state dir; `append` is safe from any task."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_path = state_dir / LOCK_NAME
        self._conn = _connect(state_dir / DB_NAME)
        self._conn.executescript(_SCHEMA)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        self._head = self._load_head()

    def _load_head(self) -> Head:
        head = read_head(self.state_dir)
        if head is not None:
            return head
        last = self._conn.execute(
            "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if last is None:
            return Head(rows=0, hash=GENESIS, last_id=0)
        # A table without a head file: continue the chain, but verify will flag it.
        (count,) = self._conn.execute("SELECT count(*) FROM audit_log").fetchone()
        log.error("audit: %s is missing; continuing from the table's last row", HEAD_NAME)
        return Head(rows=int(count), hash=str(last[1]), last_id=int(last[0]))

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
            digest = row_hash(head.hash, fields)
            columns = (*_FIELDS, "prev_hash", "hash")
            values = [fields[k] for k in _FIELDS] + [head.hash, digest]
            self._conn.execute(
                f"INSERT INTO audit_log ({', '.join(columns)}) "  # noqa: S608 - fixed names
                f"VALUES ({', '.join('?' for _ in columns)})",
                values,
            )
            new_head = Head(rows=head.rows + 1, hash=digest, last_id=int(fields["id"]))
            _write_head(self.state_dir, new_head)
            self._head = new_head
            return digest

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._conn.close()


def rows(state_dir: Path) -> list[dict[str, Any]]:
    """Every row in id order, as dicts (tests, `aios registry audit`)."""
    conn = sqlite3.connect(f"file:{state_dir / DB_NAME}?mode=ro", uri=True)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM audit_log ORDER BY id")]
    finally:
        conn.close()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int
    head: str
    problem: str = ""  # first problem found, naming the row id
    bad_row: int | None = None


def verify(state_dir: Path) -> Verdict:
    """Walk the chain and compare it with the head file."""
    db = state_dir / DB_NAME
    if not db.exists():
        return Verdict(False, 0, "", f"no audit database at {db}")
    with _flock(state_dir / LOCK_NAME, fcntl.LOCK_SH):
        head = read_head(state_dir)
        table = rows(state_dir)
    prev, count = GENESIS, 0
    for row in table:
        count += 1
        rid = int(row["id"])
        if row["prev_hash"] != prev:
            return Verdict(
                False,
                count,
                prev,
                f"row {rid}: chain break: prev_hash does not match the hash of the row "
                "before it (a row was inserted or deleted)",
                rid,
            )
        if row_hash(row["prev_hash"], row) != row["hash"]:
            return Verdict(False, count, prev, f"row {rid}: hash mismatch (row edited)", rid)
        prev = row["hash"]
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
    return Verdict(True, count, prev)
