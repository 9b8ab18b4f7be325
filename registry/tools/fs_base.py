"""Shared parts of the `fs.*` tools: spec builder, argument parsing, before-images.

Every fs handler checks its own arguments and answers aiOS's
`fs.<op>: missing required field '<key>'` for a missing key or a wrong type
(the `aios` profile has no schemas, so this is what callers see there; on
`full` the JSON Schema rejects such input first). Reversible tools name the
argument keys of the paths they change in `paths`; snapshot/restore use
registry.fsimage on those paths. Used by registry.tools.fs and
registry.tools.fs_write.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from registry import fsimage
from registry.tooling import JSON, Risk, Tool, ToolContext, ToolError, ToolSpec, obj_schema

STR: JSON = {"type": "string"}
INT: JSON = {"type": "integer"}
BOOL: JSON = {"type": "boolean"}
TRUE: JSON = {"const": True}


def fs_spec(
    op: str,
    description: str,
    inputs: dict[str, Any],
    required: tuple[str, ...],
    outputs: dict[str, Any],
    *,
    risk: Risk,
    idempotent: bool,
    reversible: bool,
    timeout_ms: int,
    write: bool,
) -> ToolSpec:
    return ToolSpec(
        name=f"fs.{op}",
        description=description,
        input_schema=obj_schema(inputs, required),
        output_schema=obj_schema(outputs, tuple(outputs)),
        risk=risk,
        idempotent=idempotent,
        reversible=reversible,
        timeout_ms=timeout_ms,
        capabilities=("fs_write",) if write else ("fs_read",),
    )


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def exists(path: Path) -> bool:
    """lexists: a dangling symlink exists too."""
    return path.is_symlink() or path.exists()


class FsTool(Tool):
    """Shared argument parsing with aiOS's error strings."""

    op: ClassVar[str]
    paths: ClassVar[tuple[str, ...]] = ()  # argument keys naming touched paths
    deep: ClassVar[bool] = True
    remove: ClassVar[str] = "tree"

    def fail(self, message: str) -> ToolError:
        return ToolError(f"fs.{self.op}: {message}")

    def str_arg(self, args: JSON, key: str) -> str:
        value = args.get(key)
        if not isinstance(value, str):
            raise self.fail(f"missing required field '{key}'")
        return value

    def int_arg(self, args: JSON, key: str) -> int:
        value = args.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(f"missing required field '{key}'")
        return value

    @staticmethod
    def bool_arg(args: JSON, key: str) -> bool:
        value = args.get(key)
        return value if isinstance(value, bool) else False

    def targets(self, args: JSON) -> list[str]:
        return [self.str_arg(args, key) for key in self.paths]

    def touches(self, args: JSON) -> tuple[str, ...]:
        try:
            return tuple(f"file:{t}" for t in self.targets(args))
        except ToolError:
            return ()

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        return fsimage.capture(ctx, self.targets(args), deep=self.deep, remove=self.remove)

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        fsimage.restore(ctx, snapshot)


def parse_mode(text: str) -> int | None:
    """aiOS accepts "644", "0644" and "0o644"."""
    digits = text[2:] if text.startswith("0o") else text
    if not digits or len(digits) > 4 or any(c not in "01234567" for c in digits):
        return None
    return int(digits, 8)
