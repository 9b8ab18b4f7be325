"""Before-images of reversible executions, on disk, bounded, rebuilt at start.

Layout: `<state_dir>/backups/<execution_id>/meta.json` plus whatever the tool's
`snapshot` wrote into that directory (it is the execution's `ctx.work`; the
name `meta.json` is reserved). meta.json holds the tool, the input digest,
`touches`, the snapshot JSON, a sequence number, `created`, whether the run
succeeded and the state (`active` or `rolled_back`; `superseded` is computed:
a later live change touched the same object).

Successful executions of non-reversible writes that name `touches` leave a
small record too (`restorable: false`), so Rollback can refuse to undo an
older change that something else has since overwritten.

Retention: at most `max_entries` records and `max_bytes` bytes; the oldest
(lowest sequence) go first, so a record that could block a rollback is never
pruned before the backup it would block.

Called by registry.server.pipeline (prepare/commit/finish/record_change) and
registry.server.rollback (get/conflict/mark_rolled_back).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

META = "meta.json"
DEFAULT_MAX_ENTRIES = 256
DEFAULT_MAX_BYTES = 1 << 30


@dataclass(frozen=True)
class Backup:
    execution_id: str
    tool: str
    input_sha256: str
    touches: tuple[str, ...]
    snapshot: dict[str, Any] | None
    restorable: bool
    seq: int
    created: str
    succeeded: bool | None  # None while running
    state: str  # active | rolled_back
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "tool": self.tool,
            "input_sha256": self.input_sha256,
            "touches": list(self.touches),
            "snapshot": self.snapshot,
            "restorable": self.restorable,
            "seq": self.seq,
            "created": self.created,
            "succeeded": self.succeeded,
            "state": self.state,
            "size": self.size,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Backup:
        return cls(
            execution_id=str(data["execution_id"]),
            tool=str(data["tool"]),
            input_sha256=str(data["input_sha256"]),
            touches=tuple(data["touches"]),
            snapshot=data["snapshot"],
            restorable=bool(data["restorable"]),
            seq=int(data["seq"]),
            created=str(data["created"]),
            succeeded=data["succeeded"],
            state=str(data["state"]),
            size=int(data.get("size", 0)),
        )


def _dir_size(path: Path) -> int:
    """Disk space the backup really uses: allocated blocks (a sparse image copy
    costs what it holds), and nothing for a file still hard-linked elsewhere
    (a kept model that is also the live file costs no extra space)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = (Path(root) / name).lstat()
            except OSError:
                continue
            if info.st_nlink == 1:
                total += info.st_blocks * 512
    return total


class BackupStore:
    def __init__(
        self,
        directory: Path,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.directory = directory
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._index: dict[str, Backup] = {}
        self._seq = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._load()

    def _load(self) -> None:
        for entry in sorted(self.directory.iterdir()):
            meta = entry / META
            try:
                backup = Backup.from_json(json.loads(meta.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("backups: dropping %s (%s)", entry, exc)
                shutil.rmtree(entry, ignore_errors=True)
                continue
            if backup.succeeded is None:  # the registry stopped mid-run
                backup = replace(backup, succeeded=False)
                self._write(backup)
            self._index[backup.execution_id] = backup
            self._seq = max(self._seq, backup.seq)

    # -- writing --

    def path(self, execution_id: str) -> Path:
        return self.directory / execution_id

    def prepare(self, execution_id: str) -> Path:
        """The execution's work directory (snapshot files go here)."""
        work = self.path(execution_id)
        work.mkdir(parents=True, exist_ok=True)
        return work

    def discard(self, execution_id: str) -> None:
        self._index.pop(execution_id, None)
        shutil.rmtree(self.path(execution_id), ignore_errors=True)

    def commit(
        self,
        execution_id: str,
        *,
        tool: str,
        input_sha256: str,
        touches: tuple[str, ...],
        snapshot: dict[str, Any] | None,
    ) -> Backup:
        """Persist a before-image taken just before `run` (or a change record)."""
        self._seq += 1
        backup = Backup(
            execution_id=execution_id,
            tool=tool,
            input_sha256=input_sha256,
            touches=touches,
            snapshot=snapshot,
            restorable=snapshot is not None,
            seq=self._seq,
            created=datetime.now(UTC).isoformat(),
            succeeded=None,
            state="active",
        )
        self.path(execution_id).mkdir(parents=True, exist_ok=True)
        self._write(backup)
        self._index[execution_id] = backup
        return backup

    def finish(self, execution_id: str, *, succeeded: bool) -> None:
        backup = self._index.get(execution_id)
        if backup is None:
            return
        size = _dir_size(self.path(execution_id))
        self._update(replace(backup, succeeded=succeeded, size=size))
        self.prune()

    def record_change(
        self, execution_id: str, *, tool: str, input_sha256: str, touches: tuple[str, ...]
    ) -> None:
        """A successful non-reversible write: remembered only to block rollbacks."""
        self.commit(
            execution_id, tool=tool, input_sha256=input_sha256, touches=touches, snapshot=None
        )
        self.finish(execution_id, succeeded=True)

    def mark_rolled_back(self, execution_id: str) -> None:
        self._update(replace(self._index[execution_id], state="rolled_back"))

    def _update(self, backup: Backup) -> None:
        self._write(backup)
        self._index[backup.execution_id] = backup

    def _write(self, backup: Backup) -> None:
        meta = self.path(backup.execution_id) / META
        tmp = meta.with_name(META + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(backup.to_json(), f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(meta)

    def prune(self) -> list[str]:
        """Drop the oldest records beyond the bounds; returns the ids dropped."""
        ordered = sorted(self._index.values(), key=lambda b: b.seq)
        total = sum(b.size for b in ordered)
        dropped: list[str] = []
        while ordered and (len(ordered) > self.max_entries or total > self.max_bytes):
            oldest = ordered.pop(0)
            if oldest.succeeded is None:  # still running: never prune
                break
            total -= oldest.size
            self.discard(oldest.execution_id)
            dropped.append(oldest.execution_id)
        return dropped

    # -- reading --

    def get(self, execution_id: str) -> Backup | None:
        return self._index.get(execution_id)

    def ids(self) -> list[str]:
        return [b.execution_id for b in sorted(self._index.values(), key=lambda b: b.seq)]

    def conflict(self, backup: Backup) -> tuple[Backup, str] | None:
        """A later live change that touched one of `backup`'s objects, and which object."""
        mine = set(backup.touches)
        for later in sorted(self._index.values(), key=lambda b: b.seq):
            if later.seq <= backup.seq or later.state == "rolled_back" or not later.succeeded:
                continue
            for obj in later.touches:
                if obj in mine:
                    return later, obj
        return None

    def status(self, execution_id: str) -> str:
        backup = self._index[execution_id]
        if backup.state == "active" and self.conflict(backup) is not None:
            return "superseded"
        return backup.state
