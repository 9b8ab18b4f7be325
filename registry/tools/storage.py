"""Handlers of storage.state, storage.fstab and storage.dir; TOOLS of the storage namespace.

storage.state reads mounts (findmnt), filesystems (blkid -p), the fstab
(registry.fstab), path metadata and swap files, all in the registry's mount
namespace and under its root. storage.fstab rewrites the managed block
atomically; storage.dir manages one directory, resolving owner and group
names through the root's /etc/passwd and /etc/group (not the host's).
mkfs/mount/umount live in registry.tools.storage_mount, swapfile in
registry.tools.storage_swap. Collected by registry.catalogue through TOOLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
from pathlib import Path

from registry import blockdev, fstab, mounting
from registry.atomicfile import read_or_none, restore_content, write_atomic
from registry.tooling import JSON, Tool, ToolContext, ToolError
from registry.tools import storage_defs
from registry.tools.storage_mount import StorageMkfs, StorageMount, StorageUmount
from registry.tools.storage_swap import StorageSwapfile, swapfile_states

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
    except FileNotFoundError:
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
            "paths": {p: path_info(ctx, ctx.path(p)) for p in args.get("paths", ())},
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


def _first_missing(ctx: ToolContext, target: str) -> str | None:
    parts = [p for p in target.split("/") if p]
    for i in range(1, len(parts) + 1):
        candidate = "/" + "/".join(parts[:i])
        if not os.path.lexists(ctx.path(candidate)):
            return candidate
    return None


class StorageDir(Tool):
    spec = storage_defs.STORAGE_DIR

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"dir:{args.get('path', '')}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        host = ctx.path(args["path"])
        image = {"path": args["path"], **path_info(ctx, host)}
        image["created_from"] = _first_missing(ctx, args["path"])
        image["tree"] = None
        if image["type"] == "dir" and args.get("state") == "absent" and any(host.iterdir()):
            await ctx.runner.run(["cp", "-a", str(host), str(ctx.work / TREE_COPY)])
            image["tree"] = TREE_COPY
        return image

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        host = ctx.path(snapshot["path"])
        if not snapshot["exists"]:
            created = snapshot["created_from"] or snapshot["path"]
            stop = ctx.path(created).parent
            current = host
            while current != stop and current.is_relative_to(ctx.path(created)):
                with contextlib.suppress(OSError):  # not empty: keep it
                    current.rmdir()
                current = current.parent
            return
        if snapshot["type"] != "dir":
            return
        if not host.exists():
            if snapshot["tree"]:
                await ctx.runner.run(["cp", "-a", str(ctx.work / snapshot["tree"]), str(host)])
            else:
                host.mkdir(parents=True)
        os.chown(host, snapshot["uid"], snapshot["gid"])
        host.chmod(int(snapshot["mode"], 8))

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        host = ctx.path(args["path"])
        if args["path"] == "/":
            raise ToolError("the root directory is not managed")
        state = args.get("state", "present")
        changed = await asyncio.to_thread(
            self._absent if state == "absent" else self._present, ctx, host, args
        )
        info = path_info(ctx, host)
        return {
            "path": args["path"],
            "state": state,
            "changed": changed,
            "mode": info["mode"],
            "uid": info["uid"],
            "gid": info["gid"],
        }

    @staticmethod
    def _absent(ctx: ToolContext, host: Path, args: JSON) -> bool:
        if not os.path.lexists(host):
            return False
        if host.is_symlink() or not host.is_dir():
            raise ToolError(f"{args['path']} is not a directory; refusing to remove it")
        if any(host.iterdir()):
            if not args.get("force", False):
                raise ToolError(f"{args['path']} is not empty; removing it needs force")
            shutil.rmtree(host)
        else:
            host.rmdir()
        return True

    @staticmethod
    def _present(ctx: ToolContext, host: Path, args: JSON) -> bool:
        changed = False
        if os.path.lexists(host) and (host.is_symlink() or not host.is_dir()):
            raise ToolError(f"{args['path']} exists and is not a directory")
        if not host.exists():
            host.mkdir(parents=True)
            changed = True
        st = host.stat()
        if "mode" in args and stat.S_IMODE(st.st_mode) != int(args["mode"], 8):
            host.chmod(int(args["mode"], 8))
            changed = True
        uid = resolve_id(ctx, args["owner"], "passwd") if "owner" in args else st.st_uid
        gid = resolve_id(ctx, args["group"], "group") if "group" in args else st.st_gid
        if (uid, gid) != (st.st_uid, st.st_gid):
            os.chown(host, uid, gid)
            changed = True
        return changed


TOOLS: tuple[type[Tool], ...] = (
    StorageState,
    StorageMkfs,
    StorageMount,
    StorageUmount,
    StorageFstab,
    StorageDir,
    StorageSwapfile,
)
