"""Rollback(execution_id): put back the before-image an execution saved.

`full`: the backup must exist (`unknown execution id …`), not be rolled back
already (`execution … was already rolled back`), hold a before-image, and no
later successful, not rolled-back execution may have touched one of its
objects (`cannot roll back <id>: <object> was changed later by <tool> (<id>)`).
The restore runs under the tool namespace's write lock, through the tool's
own `restore`; a failure comes back as success=false with the reason. A
rolled-back backup stays on disk (state rolled_back) until pruned, so asking
twice gets a clear answer. Every Rollback is audited (tool `rollback`,
target = the execution undone).

`aios` (§2.5): one-shot; only an fs.* backup of a pre-existing regular file
restores (success=true); everything else is success=false with error "";
an I/O error while restoring raises RollbackIOError (gRPC INTERNAL
`Rollback failed: …`).

Called by registry.server.pipeline, which builds one `Rollbacks` from the parts it
owns (tool set, backups, audit log, executor): this module never imports the pipeline.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from registry.core.errors import ToolError
from registry.core.process import ProcessRunner
from registry.core.tool import Progress
from registry.drivers.fs import image as fsimage
from registry.server.audit import AuditEntry, AuditLog, input_digest
from registry.server.backups import BackupStore
from registry.server.execution import Executor
from registry.server.toolset import ToolSet


class RollbackIOError(Exception):
    """aios profile: the restore itself failed (gRPC INTERNAL)."""


@dataclass(frozen=True)
class Rollbacks:
    """Rollback over the pipeline's parts: which tool restores, its backups, audit and locks."""

    toolset: ToolSet
    backups: BackupStore
    audit: AuditLog
    executor: Executor

    async def rollback(self, execution_id: str, reason: str) -> tuple[bool, str]:
        """(success, error); raises RollbackIOError only on aios (see module docstring)."""
        start = time.monotonic()
        if self.toolset.profile.aios_rollback:
            ok, error = await self._aios(execution_id)
        else:
            ok, error = await self._full(execution_id)
        backup = self.backups.get(execution_id)
        await self.audit.append(
            AuditEntry(
                execution_id=str(uuid.uuid4()),
                tool="rollback",
                agent="",
                task="",
                reason=reason,
                input_sha256=input_digest(execution_id.encode()),
                success=ok,
                duration_ms=int((time.monotonic() - start) * 1000),
                target=f"{execution_id} ({backup.tool})" if backup else execution_id,
            )
        )
        return ok, error


    async def _full(self, execution_id: str) -> tuple[bool, str]:
        backups = self.backups
        backup = backups.get(execution_id)
        if backup is None:
            return False, (
                f"unknown execution id {execution_id}: no backup is kept for it "
                "(not a reversible execution, pruned, or never ran here)"
            )
        if backup.state == "rolled_back":
            return False, f"execution {execution_id} was already rolled back"
        entry = self.toolset.handler_of(backup.tool)
        if entry is None or entry.handler is None:
            return False, f"cannot roll back {execution_id}: tool {backup.tool} is not available"
        async with self.executor.guard(entry):
            backup = backups.get(execution_id)
            if backup is None:
                return False, f"unknown execution id {execution_id}: its backup was pruned"
            if backup.state == "rolled_back":
                return False, f"execution {execution_id} was already rolled back"
            if not backup.restorable or backup.snapshot is None:
                return False, f"execution {execution_id} ({backup.tool}) keeps no before-image"
            conflict = backups.conflict(backup)
            if conflict is not None:
                later, obj = conflict
                return False, (
                    f"cannot roll back {execution_id}: {obj} was changed later by "
                    f"{later.tool} ({later.execution_id})"
                )
            runner = ProcessRunner()
            ctx = self.executor.context(
                execution_id, backups.path(execution_id), runner, progress=Progress()
            )
            tool = entry.handler()
            try:
                async with asyncio.timeout(max(entry.spec.timeout_ms / 1000, 10.0)):
                    await tool.restore(ctx, backup.snapshot)
            except ToolError as exc:
                return False, f"rollback of {execution_id} failed: {exc}"
            except TimeoutError:
                return False, f"rollback of {execution_id} failed: restore timed out"
            except Exception as exc:
                return False, f"rollback of {execution_id} failed: {type(exc).__name__}: {exc}"
            finally:
                runner.close()
            backups.mark_rolled_back(execution_id)
            return True, ""


    async def _aios(self, execution_id: str) -> tuple[bool, str]:
        backups = self.backups
        backup = backups.get(execution_id)
        if backup is None or backup.state != "active" or backup.snapshot is None:
            if backup is not None:
                backups.discard(execution_id)
            return False, ""
        ctx = self.executor.context(
            execution_id, backups.path(execution_id), ProcessRunner(), progress=Progress()
        )
        try:
            fsimage.restore(ctx, backup.snapshot)
        except ToolError as exc:
            raise RollbackIOError(f"Rollback failed: {exc}") from None
        finally:
            backups.discard(execution_id)
        return True, ""
