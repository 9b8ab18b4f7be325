"""Observe storage: one `storage.state` read shaped by the specs, parsed into StorageState.

The read names the paths to stat (declared directories and swap files, image
files, and the paths of objects aios created or a pruned resource made) and
the probe candidates for blkid (declared filesystems: devices and images —
LABEL=/UUID= sources are resolved only among these, never by scanning the
host's devices). With no Storage resource at all (`aios export`), a first
read finds what is mounted and a second probes the image files mounted by
loop, so the export can declare their filesystems. Stacked mounts collapse
to the topmost one per target, which is what a path resolves to. Used by
controllers.storage.controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.storage.desired import gather
from controllers.storage.state import (
    FsState,
    FstabEntry,
    MountState,
    PathState,
    StorageState,
    SwapState,
)
from reconciler.sdk.controller import Desired, StateReader
from reconciler.sdk.errors import ToolFailed

TOOL = "storage.state"
OBJECT_PATH_KINDS = ("directory", "swapfile", "filesystem")


def read_args(desired: Desired) -> dict[str, list[str]]:
    """`paths` and `probe` for the one storage.state read."""
    items = gather(desired)
    paths: set[str] = set(items.directories) | set(items.swapfiles)
    probe: set[str] = set()
    for target, item in items.filesystems.items():
        probe.add(target)
        paths.add(target)
        if item.spec.image is not None:
            paths.add(item.spec.image.path)
    for objects in (*desired.owned.values(), *desired.pruned.values()):
        for obj in objects:
            kind, _, path = obj.partition(":")
            if kind in OBJECT_PATH_KINDS:
                paths.add(path)
    return {"paths": sorted(paths), "probe": sorted(probe)}


async def observe(reader: StateReader, desired: Desired) -> StorageState:
    args = read_args(desired)
    output = await reader.read(TOOL, args)
    if not any(True for _ in desired.resources) and not desired.owned and not desired.pruned:
        images = loop_images(output)
        if images:
            output = await reader.read(TOOL, {"paths": images, "probe": images})
    return parse(output)


def loop_images(output: Mapping[str, Any]) -> list[str]:
    """Image files mounted by loop (their source is a path, their device a /dev/loop)."""
    return sorted(
        {
            m["source"]
            for m in output.get("mounts", ())
            if str(m.get("device", "")).startswith("/dev/loop") and m["source"].startswith("/")
        }
    )


def parse(output: Mapping[str, Any]) -> StorageState:
    try:
        return StorageState(
            mounts=_mounts(output["mounts"]),
            filesystems=_filesystems(output["filesystems"], output["paths"]),
            fstab=tuple(_entry(e) for e in output["fstab"]["managed"]),
            paths=tuple(
                PathState(path=path, **_known(info, PathState))
                for path, info in sorted(output["paths"].items())
            ),
            swapfiles=tuple(
                SwapState(**_known(s, SwapState))
                for s in sorted(output["swapfiles"], key=lambda s: s["path"])
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolFailed(
            f"{TOOL} returned output the storage controller cannot read: {exc}"
        ) from None


def _known(data: Mapping[str, Any], model: type[Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in model.model_fields}


def _mounts(entries: list[Mapping[str, Any]]) -> tuple[MountState, ...]:
    topmost: dict[str, MountState] = {}
    for entry in entries:  # findmnt lists a stacked mount after the one it covers
        topmost[entry["target"]] = MountState(
            target=entry["target"],
            source=entry["source"],
            device=entry["device"],
            fstype=entry["fstype"],
            options=tuple(entry["options"]),
        )
    return tuple(topmost[t] for t in sorted(topmost))


def _filesystems(
    probed: list[Mapping[str, Any]], paths: Mapping[str, Mapping[str, Any]]
) -> tuple[FsState, ...]:
    out = []
    for fs in sorted(probed, key=lambda f: f["path"]):
        info = paths.get(fs["path"])
        exists = bool(info["exists"]) if info is not None else fs["type"] is not None
        out.append(
            FsState(
                path=fs["path"], exists=exists, type=fs["type"], label=fs["label"], uuid=fs["uuid"]
            )
        )
    return tuple(out)


def _entry(entry: Mapping[str, Any]) -> FstabEntry:
    return FstabEntry(
        source=entry["source"],
        target=entry["target"],
        type=entry["type"],
        options=tuple(entry["options"]),
        dump=entry["dump"],
        passno=entry["pass"],
    )
