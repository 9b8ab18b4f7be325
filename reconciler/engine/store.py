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
  cache        small key/value cache (e.g. canonical firewall tables by digest)
A process-wide writer lock (`writer.lock`, flock) makes sure two writers never
run against one state directory; it is released when its holder dies.
Used by reconciler.engine.reconcile and the CLI's read-only commands.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import TemporaryError

HISTORY_LIMIT = 5
CACHE_LIMIT = 512  # canonical firewall tables, inputs known valid: derived, re-computable
JSON = dict[str, Any]
# The tables as sqlite-utils created them (existing state directories keep working).
SCHEMA = """
CREATE TABLE [generations] (
   [target] TEXT, [generation] INTEGER, [digest] TEXT, [specs] TEXT, [created] FLOAT,
   [note] TEXT,
   PRIMARY KEY ([target], [generation])
);
CREATE TABLE [status] (
   [target] TEXT, [resource] TEXT, [domain] TEXT, [observed_generation] INTEGER,
   [revision] TEXT, [conditions] TEXT, [history] TEXT, [updated] FLOAT,
   PRIMARY KEY ([target], [resource])
);
CREATE TABLE [inventory] (
   [target] TEXT, [resource] TEXT, [object] TEXT, [domain] TEXT, [created] FLOAT,
   PRIMARY KEY ([target], [resource], [object])
);
CREATE TABLE [journal] (
   [id] INTEGER PRIMARY KEY, [run] TEXT, [target] TEXT, [domain] TEXT, [call] INTEGER,
   [tool] TEXT, [steps] TEXT, [input_sha256] TEXT, [state] TEXT, [execution_id] TEXT,
   [error] TEXT, [ts] FLOAT
);
CREATE TABLE [runs] (
   [run] TEXT PRIMARY KEY, [target] TEXT, [generation] INTEGER, [started] FLOAT,
   [finished] FLOAT, [outcome] TEXT, [summary] TEXT
);
CREATE TABLE [cache] (
   [key] TEXT PRIMARY KEY, [value] TEXT, [updated] FLOAT
);
"""


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


class Store:
    """The sqlite store of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.state_dir = state_dir
        self.conn = sqlite3.connect(state_dir / "reconciler.db")
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        if self.conn.execute(
            "select 1 from sqlite_master where type = 'table' and name = 'generations'"
        ).fetchone():
            return
        with self.conn:
            self.conn.executescript(SCHEMA)

    def _query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[JSON]:
        return [dict(row) for row in self.conn.execute(sql, params)]

    def _insert(self, table: str, row: Mapping[str, Any], *, replace: bool = False) -> None:
        columns = ", ".join(f"[{c}]" for c in row)
        marks = ", ".join("?" for _ in row)
        verb = "insert or replace" if replace else "insert"
        self.conn.execute(f"{verb} into [{table}] ({columns}) values ({marks})", list(row.values()))

    def close(self) -> None:
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
        with self.conn:
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
        with self.conn:
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
        with self.conn:
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
        with self.conn:
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
        with self.conn:
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
        with self.conn:
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
        with self.conn:
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
        with self.conn:
            self.conn.execute(
                "update runs set finished = ?, outcome = ?, summary = ? where run = ?",
                [time.time(), outcome, summary, run],
            )

    # --- cache -----------------------------------------------------------------

    def cache_get(self, key: str) -> str | None:
        rows = self._query("select value from cache where key = ?", [key])
        return str(rows[0]["value"]) if rows else None

    def cache_put(self, key: str, value: str) -> None:
        """Remember a derived value; the oldest entries go beyond CACHE_LIMIT."""
        with self.conn:
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
    def writer(self) -> Iterator[None]:
        """Hold the state directory's single-writer lock (non-blocking)."""
        path = self.state_dir / "writer.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = path.read_text().strip() or "another process"
                raise TemporaryError(
                    f"another writer holds {path} ({holder}); try again when it finishes",
                    delay=2.0,
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}".encode())
            yield
        finally:
            os.close(fd)


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
