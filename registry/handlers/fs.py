"""aiOS's 13 `fs.*` tools (docs/aios-contract.md §3.4), acting under the context's root.

This module holds the read-only ones (read, list, stat, search, disk_usage)
and TOOLS for the catalogue; the writing ones are in registry.handlers.fs_write,
the shared argument parsing in registry.handlers.fs_base. Paths are target
paths resolved inside `ctx.root` by registry.core.rootfs (a link never leads out
of it; `..` and NUL are refused); outputs name target paths as given. read,
list, search and disk_usage follow a link in the last component (inside the
root); stat does not (lstat). Files and directories are opened by fd with
O_NOFOLLOW, and search walks by fd without following links. Called by
registry.server.pipeline through the catalogue (both profiles).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import PurePosixPath

from contract.tooldef import JSON, obj_schema
from registry.core import rootfs
from registry.core.tool import Tool, ToolContext
from registry.handlers.fs_base import BOOL, INT, PATH, STR, FsTool, fs_spec, rfc3339
from registry.handlers.fs_write import (
    FsChmod,
    FsChown,
    FsCopy,
    FsDelete,
    FsMkdir,
    FsMove,
    FsSymlink,
    FsWrite,
)


class FsRead(FsTool):
    op = "read"
    spec = fs_spec(
        "read",
        "Read a UTF-8 text file (a link is followed inside the root).",
        {"path": PATH},
        ("path",),
        {"content": STR, "size": INT},
        risk="low",
        idempotent=True,
        reversible=False,
        timeout_ms=5000,
        write=False,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        try:
            with rootfs.entry(ctx.root, path, follow=True) as found:
                data = found.read_bytes()
            return {"content": data.decode("utf-8"), "size": len(data)}
        except (OSError, UnicodeDecodeError):
            raise self.fail(f"failed to read {path}") from None


class FsList(FsTool):
    op = "list"
    _entry = obj_schema(
        {
            "name": STR,
            "type": {"enum": ["file", "dir", "symlink"]},
            "size": INT,
            "modified": STR,
        },
        ("name", "type", "size", "modified"),
    )
    spec = fs_spec(
        "list",
        "List a directory (lstat semantics; a link to a directory is followed inside the root).",
        {"path": PATH},
        ("path",),
        {"entries": {"type": "array", "items": _entry}},
        risk="low",
        idempotent=True,
        reversible=False,
        timeout_ms=5000,
        write=False,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        try:
            with rootfs.entry(ctx.root, path, follow=True) as found:
                fd = found.open_dir()
            try:
                with os.scandir(fd) as it:
                    children = sorted(it, key=lambda e: e.name)
                stats = []
                for child in children:
                    try:
                        stats.append((child, child.stat(follow_symlinks=False)))
                    except OSError:
                        continue
            finally:
                os.close(fd)
        except OSError:
            raise self.fail(f"failed to read directory {path}") from None
        entries = []
        for child, st in stats:
            kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
            kind = "symlink" if stat.S_ISLNK(st.st_mode) else kind
            entries.append(
                {
                    "name": child.name,
                    "type": kind,
                    "size": st.st_size,
                    "modified": rfc3339(st.st_mtime),
                }
            )
        return {"entries": entries}


class FsStat(FsTool):
    op = "stat"
    spec = fs_spec(
        "stat",
        "Size, permissions and times of a path (lstat: links are not followed).",
        {"path": PATH},
        ("path",),
        {
            "size": INT,
            "permissions": {"type": "string", "pattern": "^[0-7]{4}$"},
            "modified": STR,
            "accessed": STR,
            "is_dir": BOOL,
            "is_file": BOOL,
            "is_symlink": BOOL,
        },
        risk="low",
        idempotent=True,
        reversible=False,
        timeout_ms=5000,
        write=False,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        try:
            with rootfs.entry(ctx.root, path, follow=False) as found:
                st = os.stat(found.name, dir_fd=found.dir_fd, follow_symlinks=False)
        except OSError:
            raise self.fail(f"failed to stat {path}") from None
        return {
            "size": st.st_size,
            "permissions": f"{stat.S_IMODE(st.st_mode):04o}",
            "modified": rfc3339(st.st_mtime),
            "accessed": rfc3339(st.st_atime),
            "is_dir": stat.S_ISDIR(st.st_mode),
            "is_file": stat.S_ISREG(st.st_mode),
            "is_symlink": stat.S_ISLNK(st.st_mode),
        }


class FsSearch(FsTool):
    op = "search"
    spec = fs_spec(
        "search",
        "Find entries whose name matches a glob (*, ?, [abc], [!abc]) under a directory.",
        {"directory": PATH, "pattern": STR, "max_depth": {"type": "integer", "minimum": 0}},
        ("directory", "pattern"),
        {"matches": {"type": "array", "items": STR}},
        risk="low",
        idempotent=True,
        reversible=False,
        timeout_ms=30000,
        write=False,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        directory = self.str_arg(args, "directory")
        pattern = self.str_arg(args, "pattern")
        depth = args.get("max_depth")
        max_depth = depth if isinstance(depth, int) and not isinstance(depth, bool) else 0
        try:
            with rootfs.entry(ctx.root, directory, follow=True) as found:
                fd = found.open_dir()
        except OSError:
            raise self.fail(f"failed to read directory {directory}") from None
        prefix = directory.rstrip("/")
        matches: list[str] = []
        try:
            # fwalk: by fd, links are listed but never entered (nor can one be swapped in)
            for root, dirs, files, _fd in os.fwalk(".", dir_fd=fd, follow_symlinks=False):
                rel = PurePosixPath(root).parts
                for name in [*dirs, *files]:
                    if fnmatch.fnmatchcase(name, pattern):
                        matches.append("/".join([prefix, *rel, name]))
                if max_depth and len(rel) + 1 >= max_depth:
                    dirs.clear()  # entries below this level would be deeper than max_depth
        finally:
            os.close(fd)
        return {"matches": sorted(matches)}


class FsDiskUsage(FsTool):
    op = "disk_usage"
    spec = fs_spec(
        "disk_usage",
        "Size and use of the filesystem holding a path (statvfs).",
        {"path": PATH},
        ("path",),
        {
            "total_bytes": INT,
            "used_bytes": INT,
            "available_bytes": INT,
            "usage_percent": {"type": "number"},
        },
        risk="low",
        idempotent=True,
        reversible=False,
        timeout_ms=5000,
        write=False,
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        try:
            with rootfs.entry(ctx.root, path, follow=True) as found:
                fd = found.open(os.O_PATH)
            try:
                st = os.statvfs(fd)
            finally:
                os.close(fd)
        except OSError:
            raise self.fail(f"failed to get disk usage of {path}") from None
        total = st.f_frsize * st.f_blocks
        available = st.f_frsize * st.f_bavail
        used = total - available
        percent = round(used / total * 100, 2) if total else 0.0
        return {
            "total_bytes": total,
            "used_bytes": used,
            "available_bytes": available,
            "usage_percent": percent,
        }


TOOLS: tuple[type[Tool], ...] = (
    FsChmod,
    FsChown,
    FsCopy,
    FsDelete,
    FsDiskUsage,
    FsList,
    FsMkdir,
    FsMove,
    FsRead,
    FsSearch,
    FsStat,
    FsSymlink,
    FsWrite,
)
