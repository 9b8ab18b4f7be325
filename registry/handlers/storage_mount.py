"""Handlers of storage.mkfs, storage.mount and storage.umount (definitions in storage_defs).

They act in the registry's mount namespace (the sandbox's private one) under
its root, through registry.drivers.storage.mounting and registry.drivers.storage.blockdev.
Before-images:
mkfs keeps a sparse copy of an existing image (or notes that the image was
created, or that a device cannot be restored); mount and umount record what
was mounted at the target. Options are refused before anything runs unless
the type's allow-list (contract.vocab.fsoptions) takes them: mkfs gets no positional
argument and no flag outside the list, mount no comma and no path-valued key
but overlay's layers, which are mapped under the root for a mount and a
remount alike. Collected through registry.handlers.storage.TOOLS.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from contract.catalogue import storage as storage_defs
from contract.tooldef import JSON
from contract.vocab import fsoptions
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext
from registry.drivers.storage import blockdev, mounting

IMAGE_COPY = "image.before"
MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
}


def _fs_json(path: str, found: dict[str, str] | None) -> JSON | None:
    if found is None:
        return None
    return {
        "path": path,
        "type": found.get("TYPE") or found.get("PTTYPE"),
        "label": found.get("LABEL"),
        "uuid": found.get("UUID"),
    }


def _describe_fs(fs: JSON) -> str:
    return f"{fs['type']} (label {fs['label'] or '-'}, uuid {fs['uuid'] or '-'})"


class StorageMkfs(Tool):
    spec = storage_defs.STORAGE_MKFS

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"fs:{args.get('target', '')}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        target = args["target"]
        if target.startswith("/dev/"):
            return {"target": target, "kind": "device"}
        host = ctx.path(target)
        if not host.exists():
            return {"target": target, "kind": "image", "existed": False}
        found = await blockdev.probe(ctx, host) if host.is_file() else None
        if found is not None and not args.get("force", False):
            return {"target": target, "kind": "image", "existed": True, "copy": None}
        await ctx.runner.run(["cp", "--sparse=always", str(host), str(ctx.work / IMAGE_COPY)])
        return {"target": target, "kind": "image", "existed": True, "copy": IMAGE_COPY}

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        target = snapshot["target"]
        if snapshot["kind"] == "device":
            raise ToolError(f"a filesystem made on device {target} cannot be undone")
        host = ctx.path(target)
        if not snapshot["existed"]:
            host.unlink(missing_ok=True)
            return
        if snapshot.get("copy") is None:
            return  # the call refused to format: the image was never changed
        kept = ctx.work / snapshot["copy"]
        if not kept.exists():
            raise ToolError(f"the previous image {target} is gone from the backup")
        tmp = host.with_name(f".{host.name}.aios-restore")
        await ctx.runner.run(["cp", "--sparse=always", str(kept), str(tmp)])
        tmp.replace(host)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        target, fstype = args["target"], args["type"]
        options = check_mkfs_options(fstype, list(args.get("options", ())), bool(args.get("label")))
        host = mounting.source_host(ctx, target)
        created = False
        if target.startswith("/dev/"):
            if not host.is_block_device():
                raise ToolError(f"{target} is not a block device")
        elif not host.exists():
            if "image" not in args:
                raise ToolError(f"image {target} does not exist and no image.size was given")
            await asyncio.to_thread(host.parent.mkdir, parents=True, exist_ok=True)
            await ctx.runner.run(["truncate", "-s", str(args["image"]["size"]), str(host)])
            created = True
        elif not host.is_file():
            raise ToolError(f"{target} is neither an image file nor a device")
        previous = _fs_json(target, await blockdev.probe(ctx, host))
        if previous is not None and not args.get("force", False):
            raise ToolError(
                f"{target} already holds {_describe_fs(previous)}; refusing to format it "
                "without force"
            )
        label = ["-L", args["label"]] if args.get("label") else []
        await ctx.runner.run([*MKFS[fstype], *label, *options, str(host)])
        made = await blockdev.probe(ctx, host) or {}
        if made.get("TYPE") != fstype:
            raise ToolError(f"mkfs.{fstype} {target} left no {fstype} signature: {made}")
        return {
            "target": target,
            "type": fstype,
            "label": made.get("LABEL"),
            "uuid": made.get("UUID", ""),
            "image_created": created,
            "previous": previous,
        }


def check_mkfs_options(fstype: str, options: list[str], labelled: bool) -> list[str]:
    """`options` when mkfs.`fstype` may get them (contract.vocab.fsoptions.MKFS), else
    ToolError
    naming the item: no positional argument (it would be formatted too), no flag outside
    the allow-list, no value its flag's pattern refuses, no second label."""
    problem = fsoptions.mkfs_problem(fstype, options)
    if problem is not None:
        raise ToolError(f"options[{problem[0]}]: {problem[1]}")
    for i, item in enumerate(options):
        if labelled and item in fsoptions.LABEL_FLAGS:
            raise ToolError(f"options[{i}]: {item} sets the label, which `label` already sets")
    return options


def _mount_output(entry: JSON, changed: bool) -> JSON:
    return {**entry, "changed": changed}


class StorageMount(Tool):
    spec = storage_defs.STORAGE_MOUNT

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"mount:{args.get('target', '')}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        host = ctx.path(args["target"])
        return {
            "target": args["target"],
            "mounted": await mounting.current(ctx, host),
            "dir_existed": host.exists(),
        }

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        host = ctx.path(snapshot["target"])
        now = await mounting.current(ctx, host)
        before = snapshot["mounted"]
        if now is not None and (before is None or now["source"] != before["source"]):
            await mounting.unmount(ctx, host)
            now = None
        if before is not None and now is None:
            await remount(ctx, before, host)
        if before is None and not snapshot["dir_existed"] and host.is_dir():
            with contextlib.suppress(OSError):  # something was put there since: keep it
                host.rmdir()

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        host = ctx.path(args["target"])
        fstype = args.get("type", "auto")
        kind = mounting.option_kind(args["source"], fstype)
        options = mounting.check_options(kind, list(args.get("options", ())))
        source = await mounting.resolve_source(ctx, args["source"], list(args.get("probe", ())))
        existing = await mounting.current(ctx, host)
        if existing is not None:
            if existing["source"] != source:
                raise ToolError(
                    f"{args['target']} already has {existing['source']} mounted; unmount it first"
                )
            if mounting.wanted_options_present(options, existing["options"]):  # both spec form
                return _mount_output(existing, False)
            mapped = mounting.host_options(ctx, kind, options)
            remount_opts = ",".join(["remount", *(["bind"] if fstype == "bind" else []), *mapped])
            await ctx.runner.run(["mount", "-o", remount_opts, str(host)])
        else:
            commands = mounting.mount_commands(
                ctx, source=source, fstype=fstype, options=options, host_target=host
            )
            await asyncio.to_thread(host.mkdir, parents=True, exist_ok=True)
            for argv in commands:
                await ctx.runner.run(argv)
        entry = await mounting.current(ctx, host)
        if entry is None:
            raise ToolError(f"mount reported success but nothing is mounted at {args['target']}")
        return _mount_output(entry, True)


VFS_FLAGS = ("ro", "rw", "nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime")


def remount_commands(ctx: ToolContext, entry: JSON, host: Path) -> list[list[str]]:
    """mount(8) argv that mounts again what `mounting.current` described."""
    raw, fstype, options = entry["device"], entry["fstype"], list(entry["options"])
    target = str(host)
    if fstype == "overlay":  # `describe` gave the layer directories in spec form
        layers = mounting.host_options(ctx, "overlay", options)
        return [["mount", "-t", "overlay", "overlay", "-o", ",".join(layers), target]]
    if blockdev.bind_path(raw) is not None:
        flags = [o for o in options if o in VFS_FLAGS]
        return mounting.mount_commands(
            ctx, source=entry["source"], fstype="bind", options=flags, host_target=host
        )
    if fstype == "tmpfs":
        return mounting.mount_commands(
            ctx, source="tmpfs", fstype="tmpfs", options=options, host_target=host
        )
    return mounting.mount_commands(
        ctx, source=entry["source"], fstype=fstype, options=options, host_target=host
    )


async def remount(ctx: ToolContext, entry: JSON, host: Path) -> None:
    await asyncio.to_thread(host.mkdir, parents=True, exist_ok=True)
    for argv in remount_commands(ctx, entry, host):
        await ctx.runner.run(argv)


class StorageUmount(Tool):
    spec = storage_defs.STORAGE_UMOUNT

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"mount:{args.get('target', '')}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        return {
            "target": args["target"],
            "mounted": await mounting.current(ctx, ctx.path(args["target"])),
        }

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        host = ctx.path(snapshot["target"])
        if snapshot["mounted"] is not None and await mounting.current(ctx, host) is None:
            await remount(ctx, snapshot["mounted"], host)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        host = ctx.path(args["target"])
        mounted = await mounting.current(ctx, host) is not None
        detached = await mounting.unmount(ctx, host, lazy=bool(args.get("lazy", False)))
        return {"target": args["target"], "unmounted": mounted, "detached": detached}
