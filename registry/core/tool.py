"""The interface every registry tool handler implements, and what a handler may act on.

A tool is a `Tool` subclass with a class-level `spec` (a frozen
contract.tooldef.ToolSpec: name, JSON Schemas, risk, flags, timeout,
capabilities) and an async `run`. Reversible tools also implement `snapshot`
(before-image of what `run` will touch, taken by the pipeline just before
`run`) and `restore` (put the before-image back; used by Rollback and after a
timeout). `touches` names the objects a call changes, so Rollback can refuse
when a later execution changed the same object.

Called by: the handlers in registry.handlers (subclasses), the drivers
(ToolContext, Runner), registry.server.pipeline (runs tools) and
registry.core.process (implements Runner).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from contract.tooldef import JSON, ToolSpec
from registry.core import rootfs
from registry.core.errors import ToolError


@dataclass
class Progress:
    """Progress of a long execution, readable through `registry.progress`."""

    done: int = 0
    total: int = 0
    message: str = ""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()


class Runner:
    """Runs external commands for tools. Implemented by registry.core.process.

    Every child starts in its own process group; when the execution is
    cancelled (timeout) the whole group is killed before the cancellation
    propagates. `check=True` raises ToolError naming the command and its stderr.
    """

    async def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> CommandResult:
        raise NotImplementedError


@dataclass
class ToolContext:
    """What a tool may act on during one execution.

    `netns`: the network namespace net/firewall tools act in (None: the
    registry's own namespace). `root`: the scratch root package, storage, file
    and model tools act under ("/" on a real machine). `work`: a directory
    private to this execution (snapshots may keep files there; it survives
    restarts for reversible tools). `progress` is updated by long tools.
    """

    runner: Runner
    root: Path
    state_dir: Path
    work: Path
    execution_id: str
    netns: str | None = None
    progress: Progress = field(default_factory=Progress)
    options: Mapping[str, Any] = field(default_factory=dict)

    def path(self, target: str) -> Path:
        """Map an absolute target path under `root`, never through a link out of it.

        `..` components and NUL are refused. Links on the way are resolved
        inside the root at this moment (an absolute link target means "from
        the root", `..` stops there: registry.core.rootfs): the result is the
        lexical `<root>/<target>` when following that on the host means the
        same, else the in-root resolution, so a caller may follow the last
        component or not. Tools that must not race a concurrent change use
        registry.core.rootfs.entry (fd-based) instead.
        """
        return rootfs.host_path(self.root, target)

    def ip(self, *args: str) -> list[str]:
        """argv for `ip` acting in this context's network namespace."""
        return ["ip", *(["-n", self.netns] if self.netns else []), *args]

    def in_netns(self, argv: list[str]) -> list[str]:
        """argv that runs a command inside this context's network namespace."""
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv


class Tool:
    """Base of every tool handler. Subclasses set `spec` and implement `run`."""

    spec: ClassVar[ToolSpec]

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        raise NotImplementedError

    def touches(self, args: JSON) -> tuple[str, ...]:
        """Objects this call may change, as `kind:identity` strings.

        Examples: `link:br0`, `nft:inet/filter`, `pkg:curl`, `file:/etc/fstab`,
        `mount:/srv/models`, `model:/var/lib/aios/models/x.gguf`.
        Read-only tools return ().
        """
        return ()

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        """Before-image of what `run` will change (reversible tools only).

        Returned JSON is stored on disk with the backup; large content (files)
        may be written into `ctx.work` and referenced by name.
        """
        raise ToolError(f"{self.spec.name} keeps no before-image")

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        """Bring back the before-image `snapshot` took (reversible tools only)."""
        raise ToolError(f"{self.spec.name} cannot be restored")
