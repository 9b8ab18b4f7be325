"""The `fs.*` tools that change files (aios-contract.md §3.4), under the context's root.

write, delete, mkdir, move, copy, chmod, chown, symlink, with aiOS's inputs,
outputs and error strings. All but delete are reversible: they save a
before-image of the paths they touch (registry.fsimage), so Rollback and a
timeout restore exactly what was there. `fs.write` also keeps aiOS's
`<path>.bak` copy of an existing file (and its rollback restores the old
`.bak` too). Symlink targets are stored verbatim. Collected into TOOLS by
registry.tools.fs.
"""

from __future__ import annotations

import os
import shutil

from registry.tooling import JSON, ToolContext
from registry.tools.fs_base import BOOL, INT, STR, TRUE, FsTool, exists, fs_spec, parse_mode


class FsWrite(FsTool):
    op = "write"
    paths = ("path",)
    spec = fs_spec(
        "write",
        "Write text to a file (creates parents; an existing file is kept as <path>.bak).",
        {"path": STR, "content": STR},
        ("path", "content"),
        {"bytes_written": INT},
        risk="medium",
        idempotent=False,
        reversible=True,
        timeout_ms=10000,
        write=True,
    )

    def targets(self, args: JSON) -> list[str]:
        path = self.str_arg(args, "path")
        return [path, path + ".bak"]

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        data = self.str_arg(args, "content").encode("utf-8")
        host = ctx.path(path)
        try:
            host.parent.mkdir(parents=True, exist_ok=True)
            if host.is_file():
                shutil.copy(host, host.with_name(host.name + ".bak"))
            host.write_bytes(data)
        except OSError:
            raise self.fail(f"failed to write {path}") from None
        return {"bytes_written": len(data)}


class FsDelete(FsTool):
    op = "delete"
    paths = ("path",)
    spec = fs_spec(
        "delete",
        "Delete a file, symlink or directory (`recursive` for non-empty ones).",
        {"path": STR, "recursive": BOOL},
        ("path",),
        {"deleted": TRUE},
        risk="high",
        idempotent=False,
        reversible=False,
        timeout_ms=10000,
        write=True,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        host = ctx.path(path)
        if not exists(host):
            raise self.fail(f"path does not exist: {path}")
        try:
            if host.is_dir() and not host.is_symlink():
                if self.bool_arg(args, "recursive"):
                    shutil.rmtree(host)
                else:
                    host.rmdir()
            else:
                host.unlink()
        except OSError:
            raise self.fail(f"failed to delete {path}") from None
        return {"deleted": True}


class FsMkdir(FsTool):
    op = "mkdir"
    paths = ("path",)
    deep = False
    remove = "empty"
    spec = fs_spec(
        "mkdir",
        "Create a directory (`recursive`: with parents, and no error if it exists).",
        {"path": STR, "recursive": BOOL},
        ("path",),
        {"created": TRUE},
        risk="low",
        idempotent=True,
        reversible=True,
        timeout_ms=5000,
        write=True,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        try:
            if self.bool_arg(args, "recursive"):
                ctx.path(path).mkdir(parents=True, exist_ok=True)
            else:
                ctx.path(path).mkdir()
        except OSError:
            raise self.fail(f"failed to create directory {path}") from None
        return {"created": True}


class FsMove(FsTool):
    op = "move"
    paths = ("source", "destination")
    spec = fs_spec(
        "move",
        "Move a file or directory (rename, else copy and delete); creates parents.",
        {"source": STR, "destination": STR},
        ("source", "destination"),
        {"moved": TRUE},
        risk="medium",
        idempotent=False,
        reversible=True,
        timeout_ms=10000,
        write=True,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        source, destination = self.targets(args)
        src, dst = ctx.path(source), ctx.path(destination)
        if not exists(src):
            raise self.fail(f"source does not exist: {source}")
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src, dst)
        except OSError:
            raise self.fail(f"failed to move {source} to {destination}") from None
        return {"moved": True}


class FsCopy(FsTool):
    op = "copy"
    paths = ("destination",)
    spec = fs_spec(
        "copy",
        "Copy a file (with permission bits) or a directory tree; creates parents.",
        {"source": STR, "destination": STR},
        ("source", "destination"),
        {"copied": TRUE},
        risk="medium",
        idempotent=False,
        reversible=True,
        timeout_ms=30000,
        write=True,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        source = self.str_arg(args, "source")
        destination = self.str_arg(args, "destination")
        src, dst = ctx.path(source), ctx.path(destination)
        if not exists(src):
            raise self.fail(f"source does not exist: {source}")
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
            else:
                shutil.copy(src, dst)
        except OSError:
            raise self.fail(f"failed to copy {source} to {destination}") from None
        return {"copied": True}


class FsChmod(FsTool):
    op = "chmod"
    paths = ("path",)
    deep = False
    spec = fs_spec(
        "chmod",
        'Set permission bits (mode as an octal string, e.g. "0644"); follows links.',
        {"path": STR, "mode": {"type": "string", "pattern": "^(0o)?[0-7]{1,4}$"}},
        ("path", "mode"),
        {"changed": TRUE},
        risk="high",
        idempotent=True,
        reversible=True,
        timeout_ms=5000,
        write=True,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        text = self.str_arg(args, "mode")
        mode = parse_mode(text)
        if mode is None:
            raise self.fail(f"invalid mode '{text}'")
        try:
            ctx.path(path).chmod(mode)
        except OSError:
            raise self.fail(f"failed to chmod {path}") from None
        return {"changed": True}


class FsChown(FsTool):
    op = "chown"
    paths = ("path",)
    deep = False
    spec = fs_spec(
        "chown",
        "Set numeric owner and group; follows links.",
        {
            "path": STR,
            "uid": {"type": "integer", "minimum": 0},
            "gid": {"type": "integer", "minimum": 0},
        },
        ("path", "uid", "gid"),
        {"changed": TRUE},
        risk="critical",
        idempotent=True,
        reversible=True,
        timeout_ms=5000,
        write=True,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        uid, gid = self.int_arg(args, "uid"), self.int_arg(args, "gid")
        try:
            os.chown(ctx.path(path), uid, gid)
        except (OSError, OverflowError):
            raise self.fail(f"failed to chown {path}") from None
        return {"changed": True}


class FsSymlink(FsTool):
    op = "symlink"
    paths = ("link",)
    deep = False
    spec = fs_spec(
        "symlink",
        "Create symlink `link` -> `target` (target stored verbatim); creates parents.",
        {"target": STR, "link": STR},
        ("target", "link"),
        {"created": TRUE},
        risk="medium",
        idempotent=False,
        reversible=True,
        timeout_ms=5000,
        write=True,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        target = self.str_arg(args, "target")
        link = self.str_arg(args, "link")
        host = ctx.path(link)
        try:
            host.parent.mkdir(parents=True, exist_ok=True)
            host.symlink_to(target)
        except OSError:
            raise self.fail(f"failed to create symlink {link}") from None
        return {"created": True}
