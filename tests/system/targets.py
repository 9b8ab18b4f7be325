"""Drive registry tools directly against a scratch root, the way the pipeline does.

`ScratchTarget.call` takes the before-image of a reversible tool, then runs
it (so a test can later `restore` it, i.e. what Rollback(execution_id)
does); errors come back as ToolError. Used by the pkg and model system tests
(storage tests go through tests/system/tooldriver.py inside a private mount
namespace instead).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contract.tooldef import JSON
from registry.core.process import ProcessRunner
from registry.core.tool import Progress, ToolContext
from registry.handlers.index import tool_classes


@dataclass
class Call:
    tool: str
    output: JSON
    snapshot: JSON | None
    ctx: ToolContext


@dataclass
class ScratchTarget:
    root: Path
    state_dir: Path
    progress: Progress = field(default_factory=Progress)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def context(self) -> ToolContext:
        eid = f"exec{next(self._ids)}"
        work = self.state_dir / "backups" / eid
        work.mkdir(parents=True)
        self.progress = Progress()
        return ToolContext(
            runner=ProcessRunner(),
            root=self.root,
            state_dir=self.state_dir,
            work=work,
            execution_id=eid,
            progress=self.progress,
        )

    async def call(self, tool: str, args: JSON) -> Call:
        handler = tool_classes()[tool]()
        ctx = self.context()
        snapshot = await handler.snapshot(ctx, args) if handler.spec.reversible else None
        output = await handler.run(ctx, args)
        return Call(tool, output, snapshot, ctx)

    async def rollback(self, call: Call) -> None:
        assert call.snapshot is not None
        await tool_classes()[call.tool]().restore(call.ctx, call.snapshot)


def make_target(tmp_path: Path) -> ScratchTarget:
    root = tmp_path / "root"
    state = tmp_path / "state"
    root.mkdir()
    state.mkdir()
    return ScratchTarget(root, state)
