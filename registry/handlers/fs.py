"""aiOS's 13 `fs.*` tools (docs/aios-contract.md §3.4), acting under the context's root.

This module holds the read-only ones (read, list, stat, search, disk_usage)
and TOOLS (every fs handler, for registry.handlers.index); the writing ones
are in registry.handlers.fs_write, the shared argument parsing in
registry.handlers.fs_base, the definitions (`spec`s) in contract.catalogue.fs. Paths are target
paths resolved inside `ctx.root` by registry.core.rootfs (a link never leads out
of it; `..` and NUL are refused); outputs name target paths as given. read,
list, search and disk_usage follow a link in the last component (inside the
root); stat does not (lstat). Files and directories are opened by fd with
O_NOFOLLOW, and search walks by fd without following links. Called by
registry.server.pipeline through registry.handlers.index (both profiles).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import PurePosixPath

from contract.catalogue import fs as fs_defs
from contract.tooldef import JSON
from registry.core import rootfs
from registry.core.tool import Tool, ToolContext
from registry.handlers.fs_base import FsTool, rfc3339
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
    spec = fs_defs.FS_READ

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
    spec = fs_defs.FS_LIST

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
    spec = fs_defs.FS_STAT

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
    spec = fs_defs.FS_SEARCH

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
    spec = fs_defs.FS_DISK_USAGE

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
