"""Running one tool: lock, context, before-image, timeout, restore, job table.

`Executor.run` does the part of the Execute pipeline that touches the
target: writes take an asyncio.Lock per namespace (reads take none); a fresh
Tool instance and a fresh ProcessRunner serve each execution (tools are
stateless classes; the runner owns the execution's process groups); a
reversible tool's `snapshot` is taken right before `run` and persisted with
`touches` (registry.server.backups). On timeout the run is cancelled, the runner's
process groups are killed, and a before-image, if any, is restored at once
("target left unchanged"). Cancellation (server shutdown) does the same.

Called by registry.server.pipeline (run) and registry.server.rollback (locks, contexts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.tooldef import JSON
from registry.core.errors import ToolError
from registry.core.process import ProcessRunner
from registry.core.tool import Progress, Tool, ToolContext
from registry.drivers.fs import image as fsimage
from registry.server.backups import BackupStore
from registry.server.plugins import PluginFailed
from registry.server.profiles import Entry

log = logging.getLogger(__name__)

RESTORE_TIMEOUT_S = 60.0


# Tool namespaces whose writes land under the scratch root: serialized together.
ROOT_NAMESPACES = frozenset({"fs", "storage", "pkg", "model"})


@dataclass(frozen=True)
class Settings:
    root: Path
    state_dir: Path
    netns: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    execution_id: str
    tool: str
    agent_id: str
    task_id: str
    started: str
    start: float
    progress: Progress

    def to_json(self) -> JSON:
        p = self.progress
        return {
            "execution_id": self.execution_id,
            "tool": self.tool,
            "agent_id": self.agent_id,
            "task_id": self.task_id,
            "started": self.started,
            "elapsed_ms": int((time.monotonic() - self.start) * 1000),
            "progress": {"done": p.done, "total": p.total, "message": p.message},
        }


@dataclass
class RunResult:
    output: JSON | None = None
    error: str = ""
    raw_output: bytes | None = None  # aiOS plugin failure: stdout goes back verbatim
    backup_id: str = ""


class Executor:
    def __init__(self, settings: Settings, backups: BackupStore, *, aios: bool) -> None:
        self.settings = settings
        self.backups = backups
        self.aios = aios
        self.jobs: dict[str, Job] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._free: list[Path] = []  # empty scratch directories, reused (mkdir costs)
        self._slots = 0

    @contextlib.asynccontextmanager
    async def guard(self, entry: Entry) -> AsyncIterator[None]:
        """Serialize writes per namespace; reads pass straight through.

        The namespaces whose tools write under the scratch root (ROOT_NAMESPACES)
        share one lock: a path resolved inside the root (registry.core.rootfs) and
        then handed to a program (mount, mkfs, losetup, dpkg) can only be
        swapped for a link by another writer under the root, and none runs
        while one of them does.
        """
        if not entry.writes:
            yield
            return
        key = "root" if entry.namespace in ROOT_NAMESPACES else entry.namespace
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            yield

    def context(
        self, execution_id: str, work: Path, runner: ProcessRunner, **extra: Any
    ) -> ToolContext:
        s = self.settings
        return ToolContext(
            runner=runner,
            root=s.root,
            state_dir=s.state_dir,
            work=work,
            execution_id=execution_id,
            netns=s.netns,
            progress=extra.pop("progress", Progress()),
            options={**s.options, "jobs": self.job_list, **extra},
        )

    def job_list(self) -> list[JSON]:
        return [j.to_json() for j in self.jobs.values()]

    async def run(
        self, entry: Entry, args: JSON, *, execution_id: str, request: dict[str, str], digest: str
    ) -> RunResult:
        assert entry.handler is not None
        async with self.guard(entry):
            job = Job(
                execution_id,
                entry.spec.name,
                request.get("agent_id", ""),
                request.get("task_id", ""),
                datetime.now(UTC).isoformat(),
                time.monotonic(),
                Progress(),
            )
            self.jobs[execution_id] = job
            try:
                return await self._run(entry, entry.handler(), args, job, request, digest)
            finally:
                del self.jobs[execution_id]

    async def _run(
        self, entry: Entry, tool: Tool, args: JSON, job: Job, request: dict[str, str], digest: str
    ) -> RunResult:
        eid, spec = job.execution_id, entry.spec
        runner = ProcessRunner()
        ctx = self.context(eid, self._scratch(eid), runner, progress=job.progress, request=request)
        keeps_backup = spec.reversible and (not self.aios or _aios_backs_up(ctx, spec.name, args))
        if keeps_backup:
            self._release(ctx.work)
            ctx.work = self.backups.prepare(eid)
        result = RunResult(backup_id=eid if keeps_backup or (self.aios and spec.reversible) else "")
        snapshot: JSON | None = None
        started_run = False
        try:
            async with asyncio.timeout(spec.timeout_ms / 1000) as deadline:
                if keeps_backup:
                    snapshot = await self._snapshot(tool, ctx, args)
                    self.backups.commit(
                        eid,
                        tool=spec.name,
                        input_sha256=digest,
                        touches=tool.touches(args),
                        snapshot=snapshot,
                    )
                started_run = True
                result.output = await tool.run(ctx, args)
        except TimeoutError:
            if not deadline.expired():
                result.error = f"Internal error in {spec.name}: TimeoutError: raised by the tool"
            else:
                runner.close()
                why = await self._undo(tool, ctx, snapshot, started_run, eid)
                result.error = f"Timed out after {spec.timeout_ms} ms; {why}"
                if self.aios and entry.kind == "plugin":
                    result.error = f"Execution timed out after {spec.timeout_ms // 1000}s"
        except asyncio.CancelledError:
            runner.close()
            await asyncio.shield(self._undo(tool, ctx, snapshot, started_run, eid))
            self._settle(entry, tool, args, eid, digest, keeps_backup, snapshot, result)
            raise
        except PluginFailed as exc:
            result.error = "" if self.aios else str(exc)
            result.raw_output = exc.stdout if self.aios else None
        except ToolError as exc:
            result.error = str(exc) or f"{spec.name} failed"
        except Exception as exc:
            log.exception("tool %s raised (execution %s)", spec.name, eid)
            result.error = f"Internal error in {spec.name}: {type(exc).__name__}: {exc}"
        finally:
            runner.close()
            if not keeps_backup:
                self._release(ctx.work)
        self._settle(entry, tool, args, eid, digest, keeps_backup, snapshot, result)
        return result

    def _settle(
        self,
        entry: Entry,
        tool: Tool,
        args: JSON,
        eid: str,
        digest: str,
        keeps_backup: bool,
        snapshot: JSON | None,
        result: RunResult,
    ) -> None:
        """Keep or drop the backup; remember what a successful write touched."""
        if keeps_backup and snapshot is None:
            self.backups.discard(eid)  # nothing was saved, so nothing can be rolled back
            if not self.aios:
                result.backup_id = ""
        elif keeps_backup:
            self.backups.finish(eid, succeeded=result.output is not None)
        elif result.output is not None and entry.writes and not self.aios:
            touches = tool.touches(args)
            if touches:
                self.backups.record_change(
                    eid, tool=entry.spec.name, input_sha256=digest, touches=touches
                )

    async def _snapshot(self, tool: Tool, ctx: ToolContext, args: JSON) -> JSON:
        if self.aios:  # §2.5: only fs.* with a pre-existing regular file at `path`
            return fsimage.capture(ctx, [args["path"]], deep=True)
        return await tool.snapshot(ctx, args)

    async def _undo(
        self, tool: Tool, ctx: ToolContext, snapshot: JSON | None, started: bool, eid: str
    ) -> str:
        """Restore the before-image after a timeout or cancellation; says what happened."""
        if not started:
            return "not restored: it timed out before the run started (nothing was changed)"
        if snapshot is None:
            return f"not restored: {tool.spec.name} keeps no before-image"
        try:
            async with asyncio.timeout(RESTORE_TIMEOUT_S):
                if self.aios:
                    fsimage.restore(ctx, snapshot)
                else:
                    await tool.restore(ctx, snapshot)
        except (ToolError, OSError, TimeoutError) as exc:
            log.error("restore after timeout of %s failed: %s", eid, exc)
            return f"not restored: {exc or type(exc).__name__}"
        self.backups.mark_rolled_back(eid)
        return "restored"

    def _scratch(self, execution_id: str) -> Path:
        """An empty directory private to this execution (reused once empty again)."""
        if self._free:
            return self._free.pop()
        self._slots += 1
        work = self.settings.state_dir / "work" / f"slot-{self._slots}"
        shutil.rmtree(work, ignore_errors=True)  # left over from an earlier run
        work.mkdir(parents=True)
        return work

    def _release(self, work: Path) -> None:
        try:
            empty = not any(work.iterdir())
        except OSError:
            return
        if empty:
            self._free.append(work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _aios_backs_up(ctx: ToolContext, name: str, args: JSON) -> bool:
    """aiOS saves a copy only for fs.* tools whose `path` is an existing regular file."""
    path = args.get("path")
    if not name.startswith("fs.") or not isinstance(path, str):
        return False
    try:
        return ctx.path(path).is_file() and not ctx.path(path).is_symlink()
    except ToolError:
        return False
