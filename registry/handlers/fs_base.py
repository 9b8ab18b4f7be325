"""Shared parts of the `fs.*` handlers: argument parsing, before-images.

Every fs handler checks its own arguments and answers aiOS's
`fs.<op>: missing required field '<key>'` for a missing key or a wrong type
(the `aios` profile has no schemas, so this is what callers see there; on
`full` the JSON Schema of contract.catalogue.fs rejects such input first, a
path that is not absolute or holds a `..` component or NUL included). Paths are resolved inside the
root by registry.core.rootfs at the moment of use; a tool acts through the
directory fd and name it gets there (see each tool for whether it follows a
link in the last component, always inside the root).

Reversible tools name the argument keys of the paths they change in `paths`.
The before-image (registry.drivers.fs.image) records each as the entry the tool acts
on (`snapshot_targets`: links on the way resolved inside the root, the last
one too when the tool follows it), read and put back through a context whose
`path` keeps the last component as it is (so a link is saved and restored as
a link); permission and owner changes are put back by fd, following inside
the root. Used by registry.handlers.fs and registry.handlers.fs_write.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from contract.tooldef import JSON
from registry.core import rootfs
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext
from registry.drivers.fs import image as fsimage


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class _EntryContext(ToolContext):
    """A context whose `path` keeps the last component as it is (registry.core.rootfs.entry_path):
    for before-images, which save and put back a link as a link."""

    def path(self, target: str) -> Path:
        return rootfs.entry_path(self.root, target)


def entry_context(ctx: ToolContext) -> ToolContext:
    return _EntryContext(**{f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)})


def restore_image(ctx: ToolContext, image: JSON) -> None:
    """Put a before-image back (fsimage.restore), owner and mode changes by fd.

    An entry that kept only metadata is put back on the object its path
    resolves to inside the root (chown first: it clears setuid bits); every
    other entry goes through fsimage with the last component kept as it is.
    """
    entries = entry_context(ctx)
    for item in reversed(image["entries"]):
        if item["kind"] != "meta":
            fsimage.restore(entries, {"entries": [item]})
            continue
        try:
            with rootfs.entry(ctx.root, item["path"], follow=True) as found:
                found.chown(item["uid"], item["gid"])
                found.chmod(item["mode"])
        except OSError as exc:
            raise ToolError(f"restore of {item['path']} failed: {exc.strerror or exc}") from None


class FsTool(Tool):
    """Shared argument parsing with aiOS's error strings."""

    op: ClassVar[str]
    paths: ClassVar[tuple[str, ...]] = ()  # argument keys naming touched paths
    follows: ClassVar[bool] = False  # the tool acts on a link's (in-root) target, not the link
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

    def snapshot_targets(self, ctx: ToolContext, args: JSON) -> list[str]:
        """The touched paths as the entries this tool will act on (module docstring)."""
        return [rootfs.canonical(ctx.root, t, follow=self.follows) for t in self.targets(args)]

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        targets = self.snapshot_targets(ctx, args)
        return fsimage.capture(entry_context(ctx), targets, deep=self.deep, remove=self.remove)

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        restore_image(ctx, snapshot)


def parse_mode(text: str) -> int | None:
    """aiOS accepts "644", "0644" and "0o644"."""
    digits = text[2:] if text.startswith("0o") else text
    if not digits or len(digits) > 4 or any(c not in "01234567" for c in digits):
        return None
    return int(digits, 8)
