"""Handlers of storage.state, storage.fstab and storage.dir; TOOLS of the storage namespace.

storage.state reads mounts (findmnt), filesystems (blkid -p), the fstab
(registry.drivers.storage.fstab), path metadata and swap files, all in the registry's mount
namespace and under its root. storage.fstab rewrites the managed block
atomically; storage.dir manages one directory, resolving owner and group
names through the root's /etc/passwd and /etc/group (not the host's).
mkfs/mount/umount live in registry.handlers.storage_mount, swapfile in
registry.handlers.storage_swap. Collected by registry.handlers.index through TOOLS.

Paths are resolved inside the root (registry.core.rootfs): storage.state reports
what is at each requested path itself (a link is a `symlink`, its parent
directories resolved inside the root), and storage.dir creates, chmods,
chowns, copies and removes through directory fds, never through a link: a
link at the managed path is refused ("exists and is not a directory"), a
link on the way is resolved inside the root. Its before-image of a removed
tree is an fd-based copy (registry.core.rootfs.copy_tree, owners kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
from pathlib import Path

from contract.catalogue import storage as storage_defs
from contract.tooldef import JSON
from registry.core import rootfs
from registry.core.atomicfile import read_or_none, restore_content, write_atomic
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext
from registry.drivers.storage import blockdev, fstab, mounting
from registry.handlers.storage_mount import StorageMkfs, StorageMount, StorageUmount
from registry.handlers.storage_swap import StorageSwapfile, swapfile_states

FSTAB = "/etc/fstab"
TREE_COPY = "tree.before"


def accounts(ctx: ToolContext, database: str) -> dict[str, int]:
    """name -> id from the root's /etc/passwd or /etc/group."""
    out: dict[str, int] = {}
    text = read_or_none(ctx.path(f"/etc/{database}")) or b""
    for line in text.decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            out.setdefault(fields[0], int(fields[2]))
    return out


def resolve_id(ctx: ToolContext, value: str, database: str) -> int:
    if value.isdigit():
        return int(value)
    found = accounts(ctx, database).get(value)
    if found is None:
        where = "passwd" if database == "passwd" else "group"
        raise ToolError(f"no {value!r} in the root's /etc/{where}")
    return found


def path_info(ctx: ToolContext, host: Path) -> JSON:
    try:
        st = host.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return dict.fromkeys(("type", "mode", "uid", "gid", "owner", "group", "size", "empty")) | {
            "exists": False
        }
    kind = (
        "symlink"
        if stat.S_ISLNK(st.st_mode)
        else "dir"
        if stat.S_ISDIR(st.st_mode)
        else "file"
        if stat.S_ISREG(st.st_mode)
        else "other"
    )
    users = {v: k for k, v in accounts(ctx, "passwd").items()}
    groups = {v: k for k, v in accounts(ctx, "group").items()}
    return {
        "exists": True,
        "type": kind,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "uid": st.st_uid,
        "gid": st.st_gid,
        "owner": users.get(st.st_uid),
        "group": groups.get(st.st_gid),
        "size": st.st_size if kind == "file" else None,
        "empty": _empty(host) if kind == "dir" else None,
    }


def _empty(host: Path) -> bool | None:
    """Whether a directory holds nothing (None when it cannot be read)."""
    try:
        with os.scandir(host) as entries:
            return next(entries, None) is None
    except OSError:
        return None


class StorageState(Tool):
    spec = storage_defs.STORAGE_STATE

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        loops = await blockdev.loops(ctx)
        mounts = [
            mounting.describe(ctx, m, loops)
            for m in await blockdev.mounts(ctx)
            if mounting.target_form(ctx, m["target"]) is not None
        ]
        filesystems = []
        for path in args.get("probe", ()):
            # Under a sandbox a /dev path would be a host device: report it unknown, unread.
            sandboxed_device = path.startswith("/dev/") and mounting.in_sandbox(ctx)
            host = None if sandboxed_device else mounting.source_host(ctx, path)
            found = await blockdev.probe(ctx, host) if host and host.exists() else None
            filesystems.append(
                {
                    "path": path,
                    "type": (found or {}).get("TYPE") or (found or {}).get("PTTYPE"),
                    "label": (found or {}).get("LABEL"),
                    "uuid": (found or {}).get("UUID"),
                }
            )
        text = read_or_none(ctx.path(FSTAB)) or b""
        return {
            "mounts": mounts,
            "filesystems": filesystems,
            "fstab": fstab.parse(text.decode(errors="replace")),
            "paths": {
                p: path_info(ctx, rootfs.entry_path(ctx.root, p)) for p in args.get("paths", ())
            },
            "swapfiles": await swapfile_states(ctx),
        }


class StorageFstab(Tool):
    spec = storage_defs.STORAGE_FSTAB

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"file:{FSTAB}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        content = read_or_none(ctx.path(FSTAB))
        return {"content": None if content is None else content.decode(errors="surrogateescape")}

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        content = snapshot["content"]
        data = None if content is None else content.encode(errors="surrogateescape")
        if read_or_none(ctx.path(FSTAB)) != data:
            restore_content(ctx.path(FSTAB), data)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        host = ctx.path(FSTAB)
        old = read_or_none(host)
        text = (old or b"").decode(errors="surrogateescape")
        try:
            new = fstab.with_block(text, list(args["entries"]))
        except ValueError as exc:
            raise ToolError(f"{FSTAB}: {exc}") from None
        data = new.encode(errors="surrogateescape")
        changed = data != old and not (old is None and not data)
        if changed:
            await asyncio.to_thread(write_atomic, host, data, mode=0o644)
        return {"path": FSTAB, "changed": changed, "entries": len(args["entries"])}


class StorageDir(Tool):
    spec = storage_defs.STORAGE_DIR

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"dir:{args.get('path', '')}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        path = args["path"]
        image = {"path": path, **path_info(ctx, rootfs.entry_path(ctx.root, path))}
        image["created_from"] = rootfs.first_missing(ctx.root, path)
        image["tree"] = None
        if image["type"] == "dir" and args.get("state") == "absent" and not image["empty"]:
            await asyncio.to_thread(_save_tree, ctx, path, ctx.work / TREE_COPY)
            image["tree"] = TREE_COPY
        return image

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        await asyncio.to_thread(self._restore, ctx, snapshot)

    @staticmethod
    def _restore(ctx: ToolContext, snapshot: JSON) -> None:
        path = snapshot["path"]
        if not snapshot["exists"]:
            _remove_created(ctx, path, snapshot["created_from"] or path)
            return
        if snapshot["type"] != "dir":
            return
        with rootfs.entry(ctx.root, path, follow=False, parents=True) as found:
            if found.lstat() is None:
                found.mkdir()
                if snapshot["tree"]:
                    _put_tree(ctx.work / snapshot["tree"], found)
            if found.kind() != "dir":
                raise ToolError(f"{path} is no longer a directory; not restored")
            found.chown(snapshot["uid"], snapshot["gid"])
            found.chmod(int(snapshot["mode"], 8))

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        if args["path"] == "/":
            raise ToolError("the root directory is not managed")
        state = args.get("state", "present")
        try:
            changed = await asyncio.to_thread(
                self._absent if state == "absent" else self._present, ctx, args
            )
        except OSError as exc:
            raise ToolError(f"{args['path']}: {exc.strerror or exc}") from None
        info = path_info(ctx, rootfs.entry_path(ctx.root, args["path"]))
        return {
            "path": args["path"],
            "state": state,
            "changed": changed,
            "mode": info["mode"],
            "uid": info["uid"],
            "gid": info["gid"],
        }

    @staticmethod
    def _absent(ctx: ToolContext, args: JSON) -> bool:
        with rootfs.entry(ctx.root, args["path"], follow=False) as found:
            kind = found.kind()
            if kind is None:
                return False
            if kind != "dir":
                raise ToolError(f"{args['path']} is not a directory; refusing to remove it")
            try:
                found.rmdir()
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                if not args.get("force", False):
                    message = f"{args['path']} is not empty; removing it needs force"
                    raise ToolError(message) from None
                found.rmtree()
        return True

    @staticmethod
    def _present(ctx: ToolContext, args: JSON) -> bool:
        changed = False
        with rootfs.entry(ctx.root, args["path"], follow=False, parents=True) as found:
            if found.kind() is None:
                found.mkdir()
                changed = True
            st = found.lstat()
            if st is None or not stat.S_ISDIR(st.st_mode):
                raise ToolError(f"{args['path']} exists and is not a directory")
            if "mode" in args and stat.S_IMODE(st.st_mode) != int(args["mode"], 8):
                found.chmod(int(args["mode"], 8))
                changed = True
            uid = resolve_id(ctx, args["owner"], "passwd") if "owner" in args else st.st_uid
            gid = resolve_id(ctx, args["group"], "group") if "group" in args else st.st_gid
            if (uid, gid) != (st.st_uid, st.st_gid):
                found.chown(uid, gid)
                if "mode" in args:
                    found.chmod(int(args["mode"], 8))  # chown clears setuid/setgid bits
                changed = True
        return changed


def _save_tree(ctx: ToolContext, path: str, copy: Path) -> None:
    """The directory's tree, owners kept, copied by fd into the backup `copy`."""
    copy.mkdir(mode=0o700)
    dst = os.open(copy, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with rootfs.entry(ctx.root, path, follow=False) as found:
            src = found.open_dir()
            try:
                rootfs.copy_tree(src, dst, owner=True)
            finally:
                os.close(src)
    finally:
        os.close(dst)


def _put_tree(copy: Path, found: rootfs.Entry) -> None:
    src = os.open(copy, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dst = found.open_dir()
        try:
            rootfs.copy_tree(src, dst, owner=True)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _remove_created(ctx: ToolContext, path: str, created: str) -> None:
    """rmdir `path` and its parents up to `created` (what storage.dir made), if empty."""
    names = rootfs.parts(path)
    stop = len(rootfs.parts(created))
    for depth in range(len(names), stop - 1, -1):
        current = "/" + "/".join(names[:depth])
        with (
            contextlib.suppress(OSError),  # not empty (kept), or already gone
            rootfs.entry(ctx.root, current, follow=False) as found,
        ):
            if found.kind() == "dir":
                found.rmdir()


TOOLS: tuple[type[Tool], ...] = (
    StorageState,
    StorageMkfs,
    StorageMount,
    StorageUmount,
    StorageFstab,
    StorageDir,
    StorageSwapfile,
)
