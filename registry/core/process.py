"""Run external commands for tools, each in its own process group.

`ProcessRunner` is the `Runner` every tool uses (via `ToolContext.runner`).
A child is started with `start_new_session=True`; if the awaiting task is
cancelled (the pipeline's timeout) or the runner is closed, the whole process
group gets SIGKILL and is reaped before the cancellation propagates, so no
grandchild outlives its execution. Called by registry.server.pipeline (which owns one
runner per execution) and by tests that drive tools directly.

`spawn_detached` and `stop_group` start and stop the sandbox's long-running
servers (its registry, its file server): each in a session of its own, logging
to a file, stopped as a whole group (SIGTERM, then SIGKILL after a grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from registry.core.errors import ToolError
from registry.core.tool import CommandResult, Runner

# Commands run with a predictable locale and PATH; callers may add variables.
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}
STDERR_LIMIT = 2000


def kill_group(pgid: int) -> None:
    """SIGKILL a process group, ignoring one that is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def spawn_detached(argv: list[str], *, log: Path, cwd: Path) -> int:
    """Start `argv` in a new session, stdout and stderr appended to `log`; its pid."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )
    return proc.pid


def group_alive(pgid: int) -> bool:
    """Any process of group `pgid` that is not a zombie (a zombie leader we own is reaped)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop_group(pgid: int, grace_s: float) -> None:
    """SIGTERM a process group, SIGKILL what is left after `grace_s`, wait until it is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    kill_group(pgid)
    for _ in range(100):
        if not group_alive(pgid):
            return
        time.sleep(0.05)


class ProcessRunner(Runner):
    """Runs commands as process-group leaders and kills the group on cancel."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = {**BASE_ENV, **(env or {})}
        self._groups: set[int] = set()

    async def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> CommandResult:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**self._env, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise ToolError(f"{argv[0]}: command not found") from None
        self._groups.add(proc.pid)
        try:
            out, err = await proc.communicate(stdin)
        except BaseException:
            kill_group(proc.pid)
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            raise
        finally:
            self._groups.discard(proc.pid)
        result = CommandResult(tuple(argv), proc.returncode or 0, out, err)
        if check and result.returncode != 0:
            raise ToolError(command_failure(result))
        return result

    def close(self) -> None:
        """Kill every process group still running (execution abandoned)."""
        for pgid in list(self._groups):
            kill_group(pgid)
        self._groups.clear()


def command_failure(result: CommandResult) -> str:
    """One line naming the command, its exit status and (trimmed) stderr."""
    cmd = " ".join(result.argv)
    if len(cmd) > 200:
        cmd = cmd[:200] + "…"
    err = result.err or result.text.strip()
    if len(err) > STDERR_LIMIT:
        err = err[:STDERR_LIMIT] + "…"
    return (
        f"`{cmd}` exited {result.returncode}: {err}"
        if err
        else f"`{cmd}` exited {result.returncode}"
    )
