"""The `fs.*` tools that change files (docs/aios-contract.md §3.4), under the context's root.

write, delete, mkdir, move, copy, chmod, chown, symlink, with aiOS's inputs,
outputs and error strings. All but delete are reversible: they save a
before-image of the paths they touch (registry.drivers.fs.image through
registry.handlers.fs_base), so Rollback and a timeout restore exactly what was
there. `fs.write` also keeps aiOS's `<path>.bak` copy of an existing file
(and its rollback restores the old `.bak` too). Definitions: contract.catalogue.fs.
Collected into TOOLS by registry.handlers.fs.

Every path is resolved inside the root at the moment of use (registry.core.rootfs)
and acted on through a directory fd and a name, never through a link out of
the root. A link in the last component:
- write, chmod, chown, and copy's destination: followed inside the root (the
  link's in-root target is written or changed; `/etc/resolv.conf` pointing at
  `/run/...` means the root's `/run/...`);
- read side of copy: followed inside the root too;
- delete, move, symlink: the link itself (removed, renamed; symlink refuses an
  existing name); mkdir: an existing link is fine for `recursive` only when it
  leads to a directory inside the root, and nothing is created through it;
- `<path>.bak`: replaced as a name, never written through.
Symlink targets: stored verbatim. An absolute target means "from the root"
(every resolution here is inside the root, so it cannot lead out); a relative
one may not climb above the root from the link's directory (refused).
"""

from __future__ import annotations

import errno
import os

from contract.catalogue import fs as fs_defs
from contract.tooldef import JSON
from registry.core import rootfs
from registry.core.tool import ToolContext
from registry.handlers.fs_base import FsTool, parse_mode


class FsWrite(FsTool):
    op = "write"
    paths = ("path",)
    spec = fs_defs.FS_WRITE

    def targets(self, args: JSON) -> list[str]:
        path = self.str_arg(args, "path")
        return [path, path + ".bak"]

    def snapshot_targets(self, ctx: ToolContext, args: JSON) -> list[str]:
        path, backup = self.targets(args)
        return [
            rootfs.canonical(ctx.root, path, follow=True),
            rootfs.canonical(ctx.root, backup, follow=False),
        ]

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        data = self.str_arg(args, "content").encode("utf-8")
        try:
            with rootfs.entry(ctx.root, path, follow=True, parents=True) as found:
                if found.kind() == "file":
                    self._keep_bak(ctx, found, path + ".bak")
                fd = found.open(os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
        except OSError:
            raise self.fail(f"failed to write {path}") from None
        return {"bytes_written": len(data)}

    @staticmethod
    def _keep_bak(ctx: ToolContext, found: rootfs.Entry, backup: str) -> None:
        with rootfs.entry(ctx.root, backup, follow=False) as bak:
            kind = bak.kind()
            if kind == "dir":
                raise IsADirectoryError(errno.EISDIR, "is a directory", backup)
            if kind not in (None, "file"):
                bak.unlink()  # a link or a special file at the name is replaced, not written to
            rootfs.copy_file(found, bak, times=False)


class FsDelete(FsTool):
    op = "delete"
    paths = ("path",)
    spec = fs_defs.FS_DELETE

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        try:
            with rootfs.entry(ctx.root, path, follow=False) as found:
                kind = found.kind()
                if kind is None:
                    raise self.fail(f"path does not exist: {path}")
                if found.name == ".":
                    raise self.fail(f"failed to delete {path}")  # the root itself stays
                if kind == "dir":
                    if self.bool_arg(args, "recursive"):
                        found.rmtree()
                    else:
                        found.rmdir()
                else:
                    found.unlink()
        except FileNotFoundError:
            raise self.fail(f"path does not exist: {path}") from None
        except OSError:
            raise self.fail(f"failed to delete {path}") from None
        return {"deleted": True}


class FsMkdir(FsTool):
    op = "mkdir"
    paths = ("path",)
    follows = True  # an existing link to a directory is that directory
    deep = False
    remove = "empty"
    spec = fs_defs.FS_MKDIR

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        recursive = self.bool_arg(args, "recursive")
        try:
            with rootfs.entry(ctx.root, path, follow=False, parents=recursive) as found:
                try:
                    found.mkdir()
                except FileExistsError:
                    if not recursive or not rootfs.is_dir(ctx.root, path):
                        raise
        except OSError:
            raise self.fail(f"failed to create directory {path}") from None
        return {"created": True}


def _into_directory(ctx: ToolContext, source: str, destination: str) -> str:
    """shutil's rule: a destination that is a directory (inside the root) gets `source`'s
    name inside it. The target path of the entry that is written, links resolved."""
    if rootfs.is_dir(ctx.root, destination):
        inside = rootfs.canonical(ctx.root, destination, follow=True).rstrip("/")
        return f"{inside}/{rootfs.parts(source)[-1]}" if rootfs.parts(source) else inside
    return destination


def _copy_entry(ctx: ToolContext, src: rootfs.Entry, dst: rootfs.Entry, *, times: bool) -> None:
    """Copy a file (content, mode), a link (verbatim) or a directory tree into `dst`."""
    kind = src.kind()
    if kind == "symlink":
        if dst.kind() not in (None, "dir"):
            dst.unlink()
        dst.symlink(src.readlink())
        return
    if kind != "dir":
        rootfs.copy_file(src, dst, times=times)
        return
    st = src.lstat()
    assert st is not None
    if dst.kind() is None:
        dst.mkdir(0o700)
    src_fd, dst_fd = src.open_dir(), -1
    try:
        dst_fd = dst.open_dir()
        rootfs.copy_tree(src_fd, dst_fd)
        os.fchmod(dst_fd, st.st_mode & 0o7777)
        os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(src_fd)
        if dst_fd >= 0:
            os.close(dst_fd)


class FsMove(FsTool):
    op = "move"
    paths = ("source", "destination")
    spec = fs_defs.FS_MOVE

    def snapshot_targets(self, ctx: ToolContext, args: JSON) -> list[str]:
        source, destination = self.targets(args)
        return [
            rootfs.canonical(ctx.root, source, follow=False),
            rootfs.canonical(ctx.root, _into_directory(ctx, source, destination), follow=False),
        ]

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        source, destination = self.targets(args)
        try:
            with rootfs.entry(ctx.root, source, follow=False) as src:
                if src.lstat() is None or src.name == ".":
                    raise self.fail(f"source does not exist: {source}")
                written = _into_directory(ctx, source, destination)
                with rootfs.entry(ctx.root, written, follow=False, parents=True) as dst:
                    if written != destination and dst.lstat() is not None:
                        raise FileExistsError(errno.EEXIST, "destination exists", written)
                    self._move(ctx, src, dst)
        except FileNotFoundError as exc:
            if exc.filename == source:
                raise self.fail(f"source does not exist: {source}") from None
            raise self.fail(f"failed to move {source} to {destination}") from None
        except OSError:
            raise self.fail(f"failed to move {source} to {destination}") from None
        return {"moved": True}

    @staticmethod
    def _move(ctx: ToolContext, src: rootfs.Entry, dst: rootfs.Entry) -> None:
        try:
            os.rename(src.name, dst.name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _copy_entry(ctx, src, dst, times=True)  # another filesystem: copy, then delete
            src.remove()


class FsCopy(FsTool):
    op = "copy"
    paths = ("destination",)
    follows = True
    spec = fs_defs.FS_COPY

    def _written(self, ctx: ToolContext, args: JSON) -> str:
        source = self.str_arg(args, "source")
        destination = self.str_arg(args, "destination")
        if rootfs.is_dir(ctx.root, source):
            return destination
        return _into_directory(ctx, source, destination)

    def snapshot_targets(self, ctx: ToolContext, args: JSON) -> list[str]:
        return [rootfs.canonical(ctx.root, self._written(ctx, args), follow=True)]

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        source = self.str_arg(args, "source")
        destination = self.str_arg(args, "destination")
        try:
            with rootfs.entry(ctx.root, source, follow=True) as src:
                if src.lstat() is None:
                    raise self.fail(f"source does not exist: {source}")
                written = self._written(ctx, args)
                with rootfs.entry(ctx.root, written, follow=True, parents=True) as dst:
                    _copy_entry(ctx, src, dst, times=False)
        except FileNotFoundError as exc:
            if exc.filename == source:
                raise self.fail(f"source does not exist: {source}") from None
            raise self.fail(f"failed to copy {source} to {destination}") from None
        except OSError:
            raise self.fail(f"failed to copy {source} to {destination}") from None
        return {"copied": True}


class FsChmod(FsTool):
    op = "chmod"
    paths = ("path",)
    follows = True
    deep = False
    spec = fs_defs.FS_CHMOD

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        text = self.str_arg(args, "mode")
        mode = parse_mode(text)
        if mode is None:
            raise self.fail(f"invalid mode '{text}'")
        try:
            with rootfs.entry(ctx.root, path, follow=True) as found:
                found.chmod(mode)
        except OSError:
            raise self.fail(f"failed to chmod {path}") from None
        return {"changed": True}


class FsChown(FsTool):
    op = "chown"
    paths = ("path",)
    follows = True
    deep = False
    spec = fs_defs.FS_CHOWN

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        path = self.str_arg(args, "path")
        uid, gid = self.int_arg(args, "uid"), self.int_arg(args, "gid")
        try:
            with rootfs.entry(ctx.root, path, follow=True) as found:
                found.chown(uid, gid)
        except (OSError, OverflowError):
            raise self.fail(f"failed to chown {path}") from None
        return {"changed": True}


def climbs_above_root(directory: str, target: str) -> bool:
    """Whether relative link text `target`, read in `directory`, goes above "/" lexically."""
    depth = len(rootfs.parts(directory))
    for comp in target.split("/"):
        if comp == "..":
            depth -= 1
            if depth < 0:
                return True
        elif comp not in ("", "."):
            depth += 1
    return False


class FsSymlink(FsTool):
    op = "symlink"
    paths = ("link",)
    deep = False
    spec = fs_defs.FS_SYMLINK

    def _check_target(self, target: str, directory: str) -> None:
        if not target or "\x00" in target:
            raise self.fail(f"invalid target {target!r}: empty or holds NUL")
        if not target.startswith("/") and climbs_above_root(directory, target):
            raise self.fail(f"target {target!r} climbs above the root from {directory}")

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        link = self.str_arg(args, "link")
        if rootfs.lexists(ctx.root, link):
            raise self.fail(f"failed to create symlink {link}")  # what run would say
        return await super().snapshot(ctx, args)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        target = self.str_arg(args, "target")
        link = self.str_arg(args, "link")
        where = rootfs.canonical(ctx.root, link, follow=False)
        self._check_target(target, where.rsplit("/", 1)[0] or "/")  # before making parents
        try:
            with rootfs.entry(ctx.root, link, follow=False, parents=True) as found:
                self._check_target(target, found.path.rsplit("/", 1)[0] or "/")
                found.symlink(target)
        except OSError:
            raise self.fail(f"failed to create symlink {link}") from None
        return {"created": True}
