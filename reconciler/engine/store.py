"""The reconciler's durable state: generations, status, inventory, journal.

One sqlite database per state directory (`reconciler.db`, WAL), through
sqlite-utils. Tables:
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
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from reconciler.errors import TemporaryError

HISTORY_LIMIT = 5
JSON = dict[str, Any]


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
        self.db = sqlite_utils.Database(state_dir / "reconciler.db")
        self.db.conn.execute("PRAGMA journal_mode=WAL")
        self.db.conn.execute("PRAGMA synchronous=NORMAL")
        self.db.conn.execute("PRAGMA busy_timeout=5000")
        self._ensure_schema()

    def _ensure_schema(self) -> None:
        db = self.db
        if "generations" in db.table_names():
            return
        with db.conn:
            db.table("generations").create(
                {
                    "target": str,
                    "generation": int,
                    "digest": str,
                    "specs": str,
                    "created": float,
                    "note": str,
                },
                pk=("target", "generation"),
            )
            db.table("status").create(
                {
                    "target": str,
                    "resource": str,
                    "domain": str,
                    "observed_generation": int,
                    "revision": str,
                    "conditions": str,
                    "history": str,
                    "updated": float,
                },
                pk=("target", "resource"),
            )
            db.table("inventory").create(
                {"target": str, "resource": str, "object": str, "domain": str, "created": float},
                pk=("target", "resource", "object"),
            )
            db.table("journal").create(
                {
                    "id": int,
                    "run": str,
                    "target": str,
                    "domain": str,
                    "call": int,
                    "tool": str,
                    "steps": str,
                    "input_sha256": str,
                    "state": str,
                    "execution_id": str,
                    "error": str,
                    "ts": float,
                },
                pk="id",
            )
            db.table("runs").create(
                {
                    "run": str,
                    "target": str,
                    "generation": int,
                    "started": float,
                    "finished": float,
                    "outcome": str,
                    "summary": str,
                },
                pk="run",
            )
            db.table("cache").create({"key": str, "value": str, "updated": float}, pk="key")

    def close(self) -> None:
        self.db.close()

    # --- generations -----------------------------------------------------------

    def current_generation(self, target: str) -> Generation | None:
        rows = list(
            self.db.query(
                "select * from generations where target = ? order by generation desc limit 1",
                [target],
            )
        )
        return _generation(rows[0]) if rows else None

    def generation(self, target: str, number: int) -> Generation | None:
        rows = list(
            self.db.query(
                "select * from generations where target = ? and generation = ?", [target, number]
            )
        )
        return _generation(rows[0]) if rows else None

    def generations(self, target: str) -> list[Generation]:
        rows = self.db.query(
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
        with self.db.conn:
            self.db.table("generations").insert(row)
        return _generation(row)

    # --- status ----------------------------------------------------------------

    def statuses(self, target: str) -> list[ResourceStatus]:
        rows = self.db.query("select * from status where target = ? order by resource", [target])
        return [_status(r) for r in rows]

    def status(self, target: str, resource: str) -> ResourceStatus | None:
        rows = list(
            self.db.query(
                "select * from status where target = ? and resource = ?", [target, resource]
            )
        )
        return _status(rows[0]) if rows else None

    def put_status(self, target: str, status: ResourceStatus) -> None:
        with self.db.conn:
            self.db.table("status").upsert(
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
                pk=("target", "resource"),
            )

    def drop_status(self, target: str, resource: str) -> None:
        with self.db.conn:
            self.db.execute(
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
        for row in self.db.query(sql, params):
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
        with self.db.conn:
            for objects in removed.values():
                for obj in objects:
                    self.db.execute(
                        "delete from inventory where target = ? and object = ?", [target, obj]
                    )
            for resource, objects in added.items():
                for obj in objects:
                    self.db.table("inventory").upsert(
                        {
                            "target": target,
                            "resource": resource,
                            "object": obj,
                            "domain": domain,
                            "created": now,
                        },
                        pk=("target", "resource", "object"),
                    )

    def forget_resource(self, target: str, resource: str) -> None:
        """Drop a pruned resource's inventory and status."""
        with self.db.conn:
            self.db.execute(
                "delete from inventory where target = ? and resource = ?", [target, resource]
            )
            self.db.execute(
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
        with self.db.conn:
            self.db.table("journal").insert(
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
                }
            )

    def journal_rows(self, run: str) -> list[JSON]:
        return list(self.db.query("select * from journal where run = ? order by id", [run]))

    def unfinished_calls(self, target: str) -> list[JSON]:
        """Calls journaled as started with no later outcome (a crash mid-step)."""
        sql = (
            "select j.* from journal j where j.target = ? and j.state = 'started' and not exists "
            "(select 1 from journal k where k.run = j.run and k.domain = j.domain "
            "and k.call = j.call and k.id > j.id)"
        )
        return list(self.db.query(sql, [target]))

    def start_run(self, run: str, target: str, generation: int) -> None:
        with self.db.conn:
            self.db.table("runs").insert(
                {
                    "run": run,
                    "target": target,
                    "generation": generation,
                    "started": time.time(),
                    "finished": 0.0,
                    "outcome": "running",
                    "summary": "",
                }
            )

    def finish_run(self, run: str, outcome: str, summary: str) -> None:
        with self.db.conn:
            self.db.table("runs").update(
                run, {"finished": time.time(), "outcome": outcome, "summary": summary}
            )

    # --- cache -----------------------------------------------------------------

    def cache_get(self, key: str) -> str | None:
        rows = list(self.db.query("select value from cache where key = ?", [key]))
        return str(rows[0]["value"]) if rows else None

    def cache_put(self, key: str, value: str) -> None:
        with self.db.conn:
            self.db.table("cache").upsert(
                {"key": key, "value": value, "updated": time.time()}, pk="key"
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
