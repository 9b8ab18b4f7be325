"""Run lists of net commands (registry.drivers.net.commands) in the context's namespace, in order.

Consecutive `IpCmd`s of the same family flag go to ONE `ip [-n NS] [-6] -batch -`
process (ip stops at the first failing line and names it, `Command failed
-:N`); sysctls are written inside the namespace (`ip netns exec NS sysctl
-w`, or /proc/sys directly without a namespace); files are replaced
atomically under --root (tmp, fsync, rename, fsync of the directory). The
first failure raises `CommandFailed` with the index of the failing command.
Called by registry.handlers.net and registry.drivers.net.snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from pathlib import Path

from registry.core.atomicfile import write_atomic
from registry.core.errors import ToolError
from registry.core.tool import ToolContext
from registry.drivers.net.commands import Cmd, ExecCmd, FileCmd, IpCmd, SysctlCmd
from registry.drivers.net.system import sysctl_key, sysctl_path

_FAILED_LINE = re.compile(r"^Command failed -:(\d+)\s*$", re.MULTILINE)
_QUOTED = re.compile(r'"([^"\s]+)"')
MESSAGE_LIMIT = 1000


class CommandFailed(ToolError):
    """Command `index` of a list failed; `message` is what the backend said."""

    def __init__(self, index: int, cmd: Cmd, message: str) -> None:
        self.index = index
        self.cmd = cmd
        self.message = message[:MESSAGE_LIMIT]
        super().__init__(f"command {index} (`{cmd.text}`) failed: {self.message}")


async def execute(ctx: ToolContext, cmds: Sequence[Cmd]) -> None:
    """Run `cmds` in order; raise CommandFailed at the first failure."""
    i = 0
    while i < len(cmds):
        cmd = cmds[i]
        if isinstance(cmd, IpCmd):
            j = i
            while j < len(cmds) and _same_batch(cmds[j], cmd):
                j += 1
            await _ip_batch(ctx, cmds, i, j)
            i = j
            continue
        try:
            if isinstance(cmd, SysctlCmd):
                await write_sysctl(ctx, cmd.key, cmd.value)
            elif isinstance(cmd, FileCmd):
                await asyncio.to_thread(write_file, ctx.path(cmd.path), cmd.content, cmd.mode)
            elif isinstance(cmd, ExecCmd):
                result = await ctx.runner.run(ctx.in_netns(list(cmd.argv)), check=False)
                if result.returncode != 0:
                    raise ToolError(result.err or f"exited {result.returncode}")
        except CommandFailed:
            raise
        except (ToolError, OSError) as exc:
            raise CommandFailed(i, cmd, str(exc)) from None
        i += 1


def _same_batch(candidate: Cmd, first: IpCmd) -> bool:
    return isinstance(candidate, IpCmd) and candidate.inet6 == first.inet6


async def _ip_batch(ctx: ToolContext, cmds: Sequence[Cmd], start: int, end: int) -> None:
    batch = [c for c in cmds[start:end] if isinstance(c, IpCmd)]
    script = "".join(f"{c.line}\n" for c in batch).encode()
    flags = ["-6"] if batch[0].inet6 else []
    result = await ctx.runner.run(ctx.ip(*flags, "-batch", "-"), stdin=script, check=False)
    if result.returncode == 0:
        return
    err = result.err
    message = _FAILED_LINE.sub("", err).strip() or f"ip exited {result.returncode}"
    offset = _failed_offset(err, [c.line for c in batch])
    index = start + min(max(offset, 0), len(batch) - 1)
    raise CommandFailed(index, cmds[index], " ".join(message.split()))


def _failed_offset(err: str, lines: list[str]) -> int:
    """Which batch line failed: ip says `Command failed -:N`, except for arguments it
    rejects while parsing (it exits at once); then the line naming the quoted argument."""
    match = _FAILED_LINE.search(err)
    if match:
        return int(match.group(1)) - 1
    for token in _QUOTED.findall(err):
        for offset, line in enumerate(lines):
            if token in line.split():
                return offset
    return 0


async def write_sysctl(ctx: ToolContext, key: str, value: str) -> None:
    sysctl_key(key)
    if ctx.netns is None:
        await asyncio.to_thread(_write_proc, key, value)
        return
    result = await ctx.runner.run(
        ctx.in_netns(["sysctl", "-q", "-w", f"{key}={value}"]), check=False
    )
    if result.returncode != 0 or result.err:
        raise ToolError(result.err.removeprefix("sysctl: ") or f"sysctl exited {result.returncode}")


def _write_proc(key: str, value: str) -> None:
    try:
        Path(sysctl_path(key)).write_text(value + "\n")
    except OSError as exc:
        raise ToolError(f"setting {key}: {exc.strerror or exc}") from None


def write_file(path: Path, content: str | None, mode: int = 0o644) -> None:
    """Replace `path` atomically with `content`, or remove it when content is None."""
    if content is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    write_atomic(path, content.encode(), mode=mode)
