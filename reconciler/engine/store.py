"""The reconciler's durable state: generations, status, inventory, journal.

One sqlite database per state directory (`reconciler.db`, WAL), through the
standard library's sqlite3 (sqlite-utils cost ~0.1 s of CPU to import on every
CLI run; the tables it created are the same). Tables:
  generations  target, generation, digest, specs (JSON documents), created, note
  status       target, resource, domain, observed_generation, revision,
               conditions (JSON), history (JSON, newest first, at most 5)
  inventory    target, resource, object: what aios created, so only that is pruned
  journal      every step's call, written before it runs and after it returns
  runs         one row per reconcile run
  sources      target, resource, source: which resources a daemon source (a
               specs directory) declared, so a resource whose file went away
               while no daemon ran is pruned, not mistaken for a CLI-applied one
  cache        small key/value cache (e.g. canonical firewall tables by digest)
A process-wide writer lock (`writer.lock`, flock) makes sure two writers never
run against one state directory; it is released when its holder dies.
Used by reconciler.engine.reconcile and the CLI's read-only commands.

Every failure of the state directory is a StateStoreError that names the file
and says what to do (the CLI prints it, exit 1), never a traceback:
- the tables are created in one BEGIN IMMEDIATE transaction (CREATE TABLE IF
  NOT EXISTS), so concurrent first runs cannot race;
- `reconciler.db.marker` is written next to the database once it holds the
  schema: a state directory whose database is later missing, empty or without
  its tables is refused instead of silently restarting at generation 0 (a
  brand-new directory, or one from before the marker, is fine);
- a corrupt, truncated or misplaced database (a directory, a directory under a
  regular file, a kernel pseudo-filesystem such as /proc) is refused up front;
- a read-only or full state directory still serves the read commands (opened
  `mode=ro`, or with an in-memory wal-index when the disk is full); writes are
  refused before the target is touched (`writer()` checks writability and free
  space), and a write that fails after a call changed the target says which
  calls ran and what was not recorded. Nothing existing is deleted or rewritten.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from contract.tooldef import JSON
from reconciler.sdk.errors import StateStoreError

HISTORY_LIMIT = 5
CACHE_LIMIT = 512  # canonical firewall tables, inputs known valid: derived, re-computable
DB_NAME = "reconciler.db"
MARKER_NAME = "reconciler.db.marker"
LOCK_NAME = "writer.lock"
BUSY_TIMEOUT = 5.0  # seconds a statement waits for another process's lock
MIN_FREE_BYTES = 1 << 20  # an apply needs room for its journal, statuses and run row
CORE_TABLES = ("generations", "inventory")  # losing these forgets what aios created
# Kernel pseudo-filesystems: they hold no regular files (and mkdir in cgroupfs makes a cgroup).
PSEUDO_FILESYSTEMS = frozenset(
    {
        "proc", "sysfs", "cgroup", "cgroup2", "devpts", "securityfs", "debugfs", "tracefs",
        "bpf", "pstore", "configfs", "efivarfs", "fusectl", "mqueue", "binfmt_misc",
        "hugetlbfs", "nsfs", "autofs", "rpc_pipefs",
    }
)  # fmt: skip
_SQLITE_MAGIC = b"SQLite format 3\x00"
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_FULL_SQLITE = frozenset(
    {"SQLITE_FULL", "SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_SHMOPEN", "SQLITE_IOERR_SHMMAP"}
)
# The tables as sqlite-utils created them (existing state directories keep working).
TABLES: dict[str, str] = {
    "generations": """CREATE TABLE IF NOT EXISTS [generations] (
   [target] TEXT, [generation] INTEGER, [digest] TEXT, [specs] TEXT, [created] FLOAT,
   [note] TEXT,
   PRIMARY KEY ([target], [generation])
)""",
    "status": """CREATE TABLE IF NOT EXISTS [status] (
   [target] TEXT, [resource] TEXT, [domain] TEXT, [observed_generation] INTEGER,
   [revision] TEXT, [conditions] TEXT, [history] TEXT, [updated] FLOAT,
   PRIMARY KEY ([target], [resource])
)""",
    "inventory": """CREATE TABLE IF NOT EXISTS [inventory] (
   [target] TEXT, [resource] TEXT, [object] TEXT, [domain] TEXT, [created] FLOAT,
   PRIMARY KEY ([target], [resource], [object])
)""",
    "journal": """CREATE TABLE IF NOT EXISTS [journal] (
   [id] INTEGER PRIMARY KEY, [run] TEXT, [target] TEXT, [domain] TEXT, [call] INTEGER,
   [tool] TEXT, [steps] TEXT, [input_sha256] TEXT, [state] TEXT, [execution_id] TEXT,
   [error] TEXT, [ts] FLOAT
)""",
    "runs": """CREATE TABLE IF NOT EXISTS [runs] (
   [run] TEXT PRIMARY KEY, [target] TEXT, [generation] INTEGER, [started] FLOAT,
   [finished] FLOAT, [outcome] TEXT, [summary] TEXT
)""",
    "sources": """CREATE TABLE IF NOT EXISTS [sources] (
   [target] TEXT, [resource] TEXT, [source] TEXT, [updated] FLOAT,
   PRIMARY KEY ([target], [resource])
)""",
    "cache": """CREATE TABLE IF NOT EXISTS [cache] (
   [key] TEXT PRIMARY KEY, [value] TEXT, [updated] FLOAT
)""",
}
SCHEMA = ";\n".join(TABLES.values()) + ";\n"


class Cause(NamedTuple):
    """Why the store failed (`text`), what to do (`advice`), and whether retrying helps."""

    text: str
    advice: str
    retryable: bool = False
    corrupt: bool = False


@dataclass(frozen=True)
class Generation:
    target: str
    generation: int
    digest: str
    documents: tuple[JSON, ...]
    created: float
    note: str


@dataclass(frozen=True)
class ResourceStatus:
    resource: str
    domain: str
    observed_generation: int
    revision: str
    conditions: tuple[JSON, ...]
    history: tuple[JSON, ...]

    def condition(self, kind: str) -> JSON | None:
        return next((c for c in self.conditions if c.get("type") == kind), None)

    @property
    def ready(self) -> bool:
        ready = self.condition("Ready")
        return bool(ready and ready.get("status") == "True")

    def as_json(self) -> JSON:
        """The row as `aios status -o json` and the daemon's Status show it."""
        return {
            "resource": self.resource,
            "domain": self.domain,
            "ready": self.ready,
            "observedGeneration": self.observed_generation,
            "revision": self.revision,
            "conditions": list(self.conditions),
            "history": list(self.history),
        }


class Store:
    """The sqlite store of one state directory.

    `read_only` is "" when the store can record, else why it cannot (a read-only
    or full file system, an uncreatable directory): reads still work, every
    write raises StateStoreError before anything is written.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / DB_NAME
        self.marker = state_dir / MARKER_NAME
        self.read_only = ""
        self._read_only_full = False
        self._writing_lock = False  # this Store holds the writer lock (writer() re-entered)
        self._changed: list[str] = []  # calls of this session that changed the target
        self._lost: list[str] = []  # what this session failed to record
        self.conn = self._open()

    # --- opening -------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if not self._make_dir():
            return _memory_db()
        # Evidence that this directory held state: the marker, or (state directories
        # from before the marker) the writer lock only an apply creates.
        marked = os.path.lexists(self.marker) or os.path.lexists(self.state_dir / LOCK_NAME)
        exists, size = self._stat_db()
        wal = _size(Path(f"{self.path}-wal"))
        if marked and (not exists or (size == 0 and not wal)):
            raise self._emptied("is missing" if not exists else "is empty (0 bytes)")
        if exists and size:
            self._check_header(size, wal=wal)
        if not self._writable_file(exists):
            return self._open_read_only(marked, exists)
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            conn: sqlite3.Connection | None = None
            try:
                conn = self._connect("rw")
                lost = [t for t in CORE_TABLES if t not in _tables(conn)]
                if marked and lost:  # refused before anything (even the WAL switch) writes
                    raise self._emptied(f"has lost its table(s) {', '.join(lost)}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                created = self._ensure_schema(conn, marked)
                break
            except StateStoreError:
                if conn is not None:
                    conn.close()
                raise
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                name = getattr(exc, "sqlite_errorname", "")
                if name.startswith("SQLITE_BUSY") and time.monotonic() < deadline:
                    # Concurrent first runs switching a new database to WAL: sqlite answers
                    # BUSY at once (no busy handler) to one of two lock upgraders; retry.
                    time.sleep(0.005 + (os.getpid() % 11) * 0.002)  # jitter by process
                    continue
                if name in _FULL_SQLITE:
                    # No room for the wal-index: read with one in memory (exclusive locking).
                    self._set_read_only(self._full_reason(), full=True)
                    try:
                        return self._checked_read(self._connect("rw", exclusive=True), marked)
                    except sqlite3.Error as again:
                        raise self._failure(again, "open") from None
                if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) and not os.access(
                    self.state_dir, os.W_OK
                ):
                    self._set_read_only(f"the state directory {self.state_dir} is not writable")
                    return self._open_read_only(marked, exists)
                raise self._failure(exc, "open") from None
        if created or not os.path.lexists(self.marker):
            self._write_marker()
        return conn

    def _make_dir(self) -> bool:
        """Create the state directory if needed; False when it cannot be (read-only)."""
        directory = self.state_dir
        fstype = _filesystem_type(directory)
        if fstype in PSEUDO_FILESYSTEMS:
            raise StateStoreError(
                f"state directory {directory} is on a {fstype} file system (kernel "
                "pseudo-files, not storage) and cannot hold the state database; choose "
                "another --state-dir (the default is /var/lib/aios/reconciler)"
            )
        if directory.is_dir():
            return True
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except FileExistsError:
            raise StateStoreError(
                f"state directory {directory} exists and is not a directory: move it aside "
                "or choose another --state-dir"
            ) from None
        except NotADirectoryError:
            blocker = next(
                (p for p in directory.parents if os.path.lexists(p) and not p.is_dir()),
                directory.parent,
            )
            raise StateStoreError(
                f"cannot create state directory {directory}: {blocker} is a file, not a "
                "directory; choose another --state-dir"
            ) from None
        except OSError as exc:
            if exc.errno in _NOT_WRITABLE:
                # Nothing was ever recorded here: reads see an empty store, writes refuse.
                self._set_read_only(
                    f"the state directory {directory} cannot be created ({exc.strerror})"
                )
                return False
            raise self._failure(exc, "create the state directory") from None
        return True

    def _stat_db(self) -> tuple[bool, int]:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            if self.path.is_symlink():  # never create a database through a dangling link
                raise StateStoreError(
                    f"state database {self.path} is a symbolic link to "
                    f"{self.path.readlink()}, which does not exist; aios changed nothing. "
                    "Restore the file it points to, or remove the link"
                ) from None
            return False, 0
        except OSError as exc:
            raise self._failure(exc, "open") from None
        if stat.S_ISDIR(info.st_mode):
            raise StateStoreError(
                f"state database {self.path} is a directory, not a database file: move it "
                f"aside (mv {self.path} {self.path}.dir) after checking what it holds, "
                "and run again"
            )
        if not stat.S_ISREG(info.st_mode):
            raise StateStoreError(
                f"state database {self.path} is not a regular file: move it aside, run again"
            )
        return True, info.st_size

    def _check_header(self, size: int, *, wal: int) -> None:
        """Refuse what is not an sqlite database, or one shorter than its header says."""
        try:
            with self.path.open("rb") as f:
                head = f.read(100)
        except OSError as exc:
            raise self._failure(exc, "read") from None
        if not head.startswith(_SQLITE_MAGIC) or len(head) < 100:
            raise self._corrupt("file is not a database: it lacks the SQLite header")
        page_size = int.from_bytes(head[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        pages = int.from_bytes(head[28:32], "big")
        header_valid = head[24:28] == head[92:96]  # change counter == version-valid-for
        # With a non-empty WAL the file may legitimately lag (an interrupted checkpoint).
        if header_valid and not wal and pages and size < pages * page_size:
            raise self._corrupt(
                f"truncated: {size} bytes where its header records {pages * page_size}"
            )

    def _writable_file(self, exists: bool) -> bool:
        """Create the database file (0600) or open it for writing; False if read-only."""
        flags = os.O_RDWR | os.O_CLOEXEC | (0 if exists else os.O_CREAT)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            if exc.errno in _NOT_WRITABLE:
                self._set_read_only(f"{self.path} cannot be written ({exc.strerror})")
                return False
            raise self._failure(exc, "open") from None
        os.close(fd)
        return True

    def _connect(
        self, mode: str, *, exclusive: bool = False, immutable: bool = False
    ) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.absolute()))}?mode={mode}"
        if immutable:
            uri += "&immutable=1"
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT)
        conn.row_factory = sqlite3.Row
        if exclusive:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection, marked: bool) -> bool:
        """Create missing tables in one IMMEDIATE transaction; True if any was created."""
        if set(TABLES) <= _tables(conn):
            return False
        conn.execute("PRAGMA synchronous=FULL")  # the schema is durable before the marker
        conn.execute("BEGIN IMMEDIATE")
        try:
            present = _tables(conn)  # authoritative now: no other writer until COMMIT
            missing = [t for t in CORE_TABLES if t not in present]
            if marked and missing:
                raise self._emptied(f"has lost its table(s) {', '.join(missing)}")
            for name, ddl in TABLES.items():
                if name not in present:
                    conn.execute(ddl)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("PRAGMA synchronous=NORMAL")
        return True

    def _write_marker(self) -> None:
        when = time.strftime("%Y-%m-%d %H:%M:%S %z")
        text = (
            f"aios state since {when}\n"
            f"{DB_NAME} next to this file holds what aios applied and created here. aios "
            "refuses to start again from a missing or empty database while this file "
            "exists; remove this file only to start a new history on purpose.\n"
        )
        temp = self.marker.with_name(f".{MARKER_NAME}.{os.getpid()}")
        try:
            temp.write_text(text, encoding="utf-8")
            temp.replace(self.marker)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise self._failure(exc, "write", what=f"the marker {self.marker}") from None

    def _open_read_only(self, marked: bool, exists: bool) -> sqlite3.Connection:
        """Open for reading only: `mode=ro`, or immutable when no wal-index can be made."""
        if not exists:
            return _memory_db()
        try:
            return self._checked_read(self._connect("ro"), marked)
        except StateStoreError:
            raise
        except sqlite3.Error as exc:
            wal = _size(Path(f"{self.path}-wal"))
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_CANTOPEN" or wal:
                raise self._failure(exc, "open") from None
        try:  # a read-only directory with no -shm: nobody can be writing through it
            return self._checked_read(self._connect("ro", immutable=True), marked)
        except sqlite3.Error as exc:
            raise self._failure(exc, "open") from None

    def _checked_read(self, conn: sqlite3.Connection, marked: bool) -> sqlite3.Connection:
        """A read-only connection, or an empty in-memory store for a never-used database."""
        try:
            present = _tables(conn)
        except sqlite3.Error:
            conn.close()
            raise
        missing = [t for t in CORE_TABLES if t not in present]
        if missing and marked:
            conn.close()
            raise self._emptied(f"has lost its table(s) {', '.join(missing)}")
        if "generations" not in present:
            conn.close()
            return _memory_db()
        return conn

    # --- errors --------------------------------------------------------------------

    def _full_reason(self) -> str:
        return (
            f"the file system holding {self.state_dir} is full "
            f"({_free_bytes(self.state_dir)} bytes free)"
        )

    def _set_read_only(self, reason: str, *, full: bool = False) -> None:
        self.read_only = reason
        self._read_only_full = full

    def _emptied(self, how: str) -> StateStoreError:
        if os.path.lexists(self.marker):
            since = ""
            with contextlib.suppress(OSError, UnicodeError, IndexError):
                first = self.marker.read_text(encoding="utf-8").splitlines()[0]
                since = first.removeprefix("aios state since ").strip()
            evidence = f"{self.marker} says this state directory has held aios state" + (
                f" since {since}" if since else ""
            )
        else:
            evidence = f"{self.state_dir / LOCK_NAME} shows aios applied changes from here"
        directory = self.state_dir
        return StateStoreError(
            f"state database {self.path} {how}, but {evidence}: aios will not start again "
            "at generation 0 and forget what it created. Restore the database from a backup, "
            f"or, to start a new history on purpose, move the directory aside (mv {directory} "
            f"{directory}.old) and run again (what aios created earlier then stays unmanaged; "
            "`aios export` shows the machine as specs)"
        )

    def _corrupt(self, detail: str) -> StateStoreError:
        return StateStoreError(
            f"state database {self.path} is corrupt ({detail}); aios changed nothing. "
            + self._corrupt_advice()
        )

    def _corrupt_advice(self) -> str:
        directory = self.state_dir
        return (
            f"Restore it from a backup, or move the state directory aside (mv {directory} "
            f"{directory}.corrupt) to start a new history (what aios created earlier then "
            "stays unmanaged; `aios export` shows the machine as specs)"
        )

    def _cause(self, exc: BaseException) -> Cause:
        """What is wrong, and what to do about it, for an sqlite3 or OS error."""
        name = str(getattr(exc, "sqlite_errorname", ""))
        code = exc.errno if isinstance(exc, OSError) else None
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if name == "SQLITE_NOTADB" or name.startswith("SQLITE_CORRUPT"):
            return Cause(f"{self.path} is corrupt ({detail})", "", corrupt=True)
        if "no such table" in detail:
            text = f"{self.path} is corrupt ({detail}: not made by aios, or damaged)"
            return Cause(text, "", corrupt=True)
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return Cause(
                f"{self.path} is busy: another process held it locked for more than "
                f"{BUSY_TIMEOUT:g} s",
                "wait until that process (another aios?) has finished",
                retryable=True,
            )
        full = name in _FULL_SQLITE or code in _FULL
        if not full and name.startswith("SQLITE_IOERR"):
            full = _free_bytes(self.state_dir) < MIN_FREE_BYTES
        if full:
            return Cause(self._full_reason(), "free space there", retryable=True)
        if name.startswith("SQLITE_READONLY") or code in _NOT_WRITABLE:
            return Cause(
                f"it is read-only ({detail})",
                f"make {self.state_dir} writable or choose another --state-dir",
            )
        return Cause(
            detail,
            f"check that {self.state_dir} is a writable directory on a local file system, "
            "or choose another --state-dir",
        )

    def _failure(self, exc: BaseException, doing: str, *, what: str = "") -> StateStoreError:
        """Translate an sqlite3 or OS error into a StateStoreError naming the file."""
        cause = self._cause(exc)
        if cause.corrupt:
            return StateStoreError(
                f"state database {cause.text}; aios changed nothing. {self._corrupt_advice()}"
            )
        subject = what or f"state database {self.path}"
        return StateStoreError(
            f"cannot {doing} {subject}: {cause.text}; {cause.advice}, then run the command again",
            retryable=cause.retryable,
        )

    def _unrecorded(self, what: str, cause: Cause) -> StateStoreError:
        """The error for a write that could not be made, saying what that leaves."""
        self._lost.append(what)
        problem = f"cannot record {what} in {self.path}: {cause.text}"
        advice = (
            self._corrupt_advice()
            if cause.corrupt
            else f"{cause.advice[:1].upper()}{cause.advice[1:]}"
        )
        if not self._changed:
            return StateStoreError(
                f"{problem}. aios changed nothing on the target. {advice}, then run the "
                "command again",
                retryable=cause.retryable,
            )
        return StateStoreError(
            f"{problem}. The target WAS changed: {', '.join(self._changed)} ran, but "
            f"this run's record is incomplete. Not recorded: {'; '.join(self._lost)}; nor "
            "anything this run did after that (the inventory of objects it created, the "
            f"resources' status, the run's outcome). {advice}, then run the same `aios "
            "apply` again: it observes the target afresh and changes only what still differs",
            retryable=cause.retryable,
        )

    def _check_integrity(self) -> None:
        """Before an apply: a damaged page anywhere is refused now, not halfway through."""
        rows = self._query("PRAGMA quick_check")
        problems = [str(next(iter(r.values()))) for r in rows]
        if problems != ["ok"]:
            raise self._corrupt(f"integrity check: {'; '.join(problems[:3])}")

    # --- reading and writing -------------------------------------------------------

    def _query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[JSON]:
        try:
            return [dict(row) for row in self.conn.execute(sql, params)]
        except sqlite3.Error as exc:
            raise self._failure(exc, "read") from None

    def _insert(self, table: str, row: Mapping[str, Any], *, replace: bool = False) -> None:
        columns = ", ".join(f"[{c}]" for c in row)
        marks = ", ".join("?" for _ in row)
        verb = "insert or replace" if replace else "insert"
        self.conn.execute(f"{verb} into [{table}] ({columns}) values ({marks})", list(row.values()))

    def _refuse_writes(self, what: str) -> None:
        if self.read_only:
            full = self._read_only_full
            advice = (
                "free space there"
                if full
                else f"make {self.state_dir} writable or choose another --state-dir"
            )
            raise self._unrecorded(what, Cause(self.read_only, advice, retryable=full))

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """One transaction recording `what`; a failure says what it leaves unrecorded."""
        self._refuse_writes(what)
        try:
            with self.conn:
                yield
        except (sqlite3.Error, OSError) as exc:
            raise self._unrecorded(what, self._cause(exc)) from None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    # --- generations -----------------------------------------------------------

    def current_generation(self, target: str) -> Generation | None:
        rows = self._query(
            "select * from generations where target = ? order by generation desc limit 1",
            [target],
        )
        return _generation(rows[0]) if rows else None

    def generation(self, target: str, number: int) -> Generation | None:
        rows = self._query(
            "select * from generations where target = ? and generation = ?", [target, number]
        )
        return _generation(rows[0]) if rows else None

    def generations(self, target: str) -> list[Generation]:
        rows = self._query(
            "select * from generations where target = ? order by generation", [target]
        )
        return [_generation(r) for r in rows]

    def add_generation(
        self, target: str, digest: str, documents: list[JSON], note: str = ""
    ) -> Generation:
        current = self.current_generation(target)
        number = (current.generation if current else 0) + 1
        row = {
            "target": target,
            "generation": number,
            "digest": digest,
            "specs": json.dumps(documents, sort_keys=True),
            "created": time.time(),
            "note": note,
        }
        with self._writing(f"generation {number} of {target}"):
            self._insert("generations", row)
        return _generation(row)

    # --- status ----------------------------------------------------------------

    def statuses(self, target: str) -> list[ResourceStatus]:
        rows = self._query("select * from status where target = ? order by resource", [target])
        return [_status(r) for r in rows]

    def status(self, target: str, resource: str) -> ResourceStatus | None:
        rows = self._query(
            "select * from status where target = ? and resource = ?", [target, resource]
        )
        return _status(rows[0]) if rows else None

    def put_status(self, target: str, status: ResourceStatus) -> None:
        with self._writing(f"the status of {status.resource}"):
            self._insert(
                "status",
                {
                    "target": target,
                    "resource": status.resource,
                    "domain": status.domain,
                    "observed_generation": status.observed_generation,
                    "revision": status.revision,
                    "conditions": json.dumps(list(status.conditions), sort_keys=True),
                    "history": json.dumps(list(status.history[:HISTORY_LIMIT]), sort_keys=True),
                    "updated": time.time(),
                },
                replace=True,
            )

    def drop_status(self, target: str, resource: str) -> None:
        with self._writing(f"the removal of {resource}'s status"):
            self.conn.execute(
                "delete from status where target = ? and resource = ?", [target, resource]
            )

    # --- inventory -------------------------------------------------------------

    def inventory(self, target: str, domain: str | None = None) -> dict[str, frozenset[str]]:
        sql = "select resource, object from inventory where target = ?"
        params: list[str] = [target]
        if domain is not None:
            sql += " and domain = ?"
            params.append(domain)
        owned: dict[str, set[str]] = {}
        for row in self._query(sql, params):
            owned.setdefault(row["resource"], set()).add(row["object"])
        return {k: frozenset(v) for k, v in owned.items()}

    def update_inventory(
        self,
        target: str,
        domain: str,
        *,
        added: Mapping[str, set[str]],
        removed: Mapping[str, set[str]],
    ) -> None:
        now = time.time()
        with self._writing(f"the {domain} inventory (objects aios created or removed)"):
            for objects in removed.values():
                for obj in objects:
                    self.conn.execute(
                        "delete from inventory where target = ? and object = ?", [target, obj]
                    )
            for resource, objects in added.items():
                for obj in objects:
                    self._insert(
                        "inventory",
                        {
                            "target": target,
                            "resource": resource,
                            "object": obj,
                            "domain": domain,
                            "created": now,
                        },
                        replace=True,
                    )

    def forget_resource(self, target: str, resource: str) -> None:
        """Drop a pruned resource's inventory and status."""
        with self._writing(f"that {resource} was pruned"):
            self.conn.execute(
                "delete from inventory where target = ? and resource = ?", [target, resource]
            )
            self.conn.execute(
                "delete from status where target = ? and resource = ?", [target, resource]
            )

    # --- journal and runs ------------------------------------------------------

    def journal(
        self,
        run: str,
        target: str,
        domain: str,
        call: int,
        tool: str,
        steps: tuple[int, ...],
        input_sha256: str,
        state: str,
        execution_id: str = "",
        error: str = "",
    ) -> None:
        label = f"{tool} (call {call} of {domain}, execution {execution_id or '?'})"
        if state == "done":  # the call returned: the target changed, recorded or not
            self._changed.append(label)
        elif state == "rolled_back":
            with contextlib.suppress(ValueError):
                self._changed.remove(label)
        if state == "started":
            what = f"the start of {tool} (call {call} of {domain}; it was not sent)"
        else:
            what = f"the journal entry '{state}' of {label}"
        with self._writing(what):
            self._insert(
                "journal",
                {
                    "run": run,
                    "target": target,
                    "domain": domain,
                    "call": call,
                    "tool": tool,
                    "steps": json.dumps(list(steps)),
                    "input_sha256": input_sha256,
                    "state": state,
                    "execution_id": execution_id,
                    "error": error,
                    "ts": time.time(),
                },
            )

    def journal_rows(self, run: str) -> list[JSON]:
        return [
            dict(r) for r in self._query("select * from journal where run = ? order by id", [run])
        ]

    def unfinished_calls(self, target: str) -> list[JSON]:
        """Calls journaled as started with no later outcome (a crash mid-step)."""
        sql = (
            "select j.* from journal j where j.target = ? and j.state = 'started' and not exists "
            "(select 1 from journal k where k.run = j.run and k.domain = j.domain "
            "and k.call = j.call and k.id > j.id)"
        )
        return self._query(sql, [target])

    def start_run(self, run: str, target: str, generation: int) -> None:
        with self._writing(f"the start of run {run}"):
            self._insert(
                "runs",
                {
                    "run": run,
                    "target": target,
                    "generation": generation,
                    "started": time.time(),
                    "finished": 0.0,
                    "outcome": "running",
                    "summary": "",
                },
            )

    def finish_run(self, run: str, outcome: str, summary: str) -> None:
        with self._writing(f"the outcome of run {run}"):
            self.conn.execute(
                "update runs set finished = ?, outcome = ?, summary = ? where run = ?",
                [time.time(), outcome, summary, run],
            )

    # --- cache -----------------------------------------------------------------

    # --- which daemon source declares which resource ------------------------------

    def source_resources(self, target: str) -> dict[str, str]:
        """Resource key -> the daemon source that declared it (reconciler.daemon)."""
        rows = self._query("select resource, source from sources where target = ?", [target])
        return {str(r["resource"]): str(r["source"]) for r in rows}

    def set_source_resources(self, target: str, owned: Mapping[str, str]) -> None:
        """Replace the target's resource -> source map in one transaction."""
        with self._writing("which resources the daemon's sources declare"):
            self.conn.execute("delete from sources where target = ?", [target])
            now = time.time()
            for resource, source in sorted(owned.items()):
                self._insert(
                    "sources",
                    {"target": target, "resource": resource, "source": source, "updated": now},
                )

    def cache_get(self, key: str) -> str | None:
        rows = self._query("select value from cache where key = ?", [key])
        return str(rows[0]["value"]) if rows else None

    def cache_put(self, key: str, value: str) -> None:
        """Remember a derived value; the oldest entries go beyond CACHE_LIMIT.

        Best effort: the value can be computed again, so a read-only, full or busy
        store simply does not remember it.
        """
        if self.read_only:
            return
        with contextlib.suppress(sqlite3.Error), self.conn:
            self._insert(
                "cache", {"key": key, "value": value, "updated": time.time()}, replace=True
            )
            self.conn.execute(
                "delete from cache where key not in "
                "(select key from cache order by updated desc limit ?)",
                [CACHE_LIMIT],
            )

    # --- the writer lock ---------------------------------------------------------

    @contextlib.contextmanager
    def writer(
        self, *, wait: float | None = 0.0, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[None]:
        """Hold the state directory's single-writer lock.

        Taken before an apply changes anything, so it is where a store that cannot
        record refuses: read-only, not enough free space, a lock path that is no file.
        Held by another process: refused at once (`wait` 0, the engine's default), or
        waited for up to `wait` seconds (None: for as long as it is held), telling
        `on_wait` once who holds it. Re-entrant on one Store: the CLI holds it across
        plan and apply, and the engine's apply inside takes it again for free.
        """
        if self._writing_lock:
            yield
            return
        path = self.state_dir / LOCK_NAME
        self._refuse_writes("this apply")
        if not os.path.lexists(path):  # a damaged store is refused before a file is made
            self._check_integrity()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except IsADirectoryError:
            raise StateStoreError(
                f"the writer lock {path} is a directory, not a file; aios changed nothing. "
                f"Remove it (rmdir {path}, after checking it holds nothing) and run again"
            ) from None
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise self._unrecorded("this apply", self._cause(exc)) from None
            raise StateStoreError(  # the pid written into it would land in the link's target
                f"the writer lock {path} is a symbolic link (to {path.readlink()}); aios "
                "changed nothing and wrote nothing through it. Remove the link and run again"
            ) from None
        try:
            _take_lock(fd, path, wait, on_wait)
            free = _free_bytes(self.state_dir)
            if free < MIN_FREE_BYTES:
                raise StateStoreError(
                    f"the file system holding {self.state_dir} has only {free} bytes free; an "
                    f"apply needs at least {MIN_FREE_BYTES >> 20} MiB there to journal what "
                    "it does, so aios changed nothing. Free space there, then run the "
                    "command again",
                    retryable=True,
                )
            self._check_integrity()
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"pid {os.getpid()}".encode())
            except OSError as exc:
                what = f"this apply (its writer lock {path})"
                raise self._unrecorded(what, self._cause(exc)) from None
            self._writing_lock = True
            try:
                yield
            finally:
                self._writing_lock = False
        finally:
            os.close(fd)


LOCK_POLL = 0.05  # seconds between two tries of a held writer lock


def _lock_holder(path: Path) -> str:
    holder = ""
    with contextlib.suppress(OSError, UnicodeError):
        holder = path.read_text().strip()
    return holder or "another process"


def _take_lock(
    fd: int, path: Path, wait: float | None, on_wait: Callable[[str], None] | None
) -> None:
    """flock(fd) exclusively: at once, or within `wait` seconds (None: forever)."""
    deadline = None if wait is None else time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _lock_holder(path)
        if deadline is not None and time.monotonic() >= deadline:
            waited = f" for more than {wait:g} s" if wait else ""
            raise StateStoreError(
                f"another writer holds {path} ({holder}){waited}; try again when it finishes",
                retryable=True,
            )
        if not told and on_wait is not None:
            on_wait(f"waiting for the state lock held by {holder} ({path})")
            told = True
        time.sleep(LOCK_POLL)


def _memory_db() -> sqlite3.Connection:
    """An empty store for reads where nothing was ever recorded (and nothing can be)."""
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    for ddl in TABLES.values():
        conn.execute(ddl)
    return conn


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _free_bytes(directory: Path) -> int:
    try:
        info = os.statvfs(directory)
    except OSError:
        return 0
    return info.f_bavail * info.f_frsize


def _filesystem_type(path: Path) -> str:
    """The type of the file system `path` (or its nearest existing ancestor) is on."""
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    resolved = str(probe.resolve())
    best, fstype = "", ""
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
    except OSError:
        return ""
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        point = _unescape(fields[4])
        sep = fields.index("-", 6)
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, fields[sep + 1]
    return fstype


def _unescape(text: str) -> str:
    """mountinfo's octal escapes (\\040 for a space, ...)."""
    if "\\" not in text:
        return text
    return text.encode().decode("unicode_escape")


def _generation(row: Mapping[str, Any]) -> Generation:
    return Generation(
        target=row["target"],
        generation=int(row["generation"]),
        digest=row["digest"],
        documents=tuple(json.loads(row["specs"])),
        created=float(row["created"]),
        note=row["note"] or "",
    )


def _status(row: Mapping[str, Any]) -> ResourceStatus:
    return ResourceStatus(
        resource=row["resource"],
        domain=row["domain"],
        observed_generation=int(row["observed_generation"]),
        revision=row["revision"],
        conditions=tuple(json.loads(row["conditions"])),
        history=tuple(json.loads(row["history"])),
    )
