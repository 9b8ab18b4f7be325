"""Block devices, loop devices and mounts as seen from the registry's mount namespace.

Parsers for `blkid -p -o export`, `findmnt -J` and `losetup -J` (pure,
unit-tested against recorded output) and async readers that run them through
the context's runner. lsblk is not used: without udev it reports FSTYPE,
LABEL and UUID as null. Loop devices are global (not per namespace): callers
detach only devices whose backing file they know. Used by
registry.handlers.storage, storage_mount and storage_swap, and
registry.drivers.storage.mounting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from contract.tooldef import JSON
from registry.core.errors import ToolError
from registry.core.tool import ToolContext

_BIND_SOURCE = re.compile(r"^(?P<dev>[^\[]*)\[(?P<path>.*)\]$")


def parse_blkid_export(text: str) -> dict[str, str]:
    """KEY=value lines -> dict (TYPE, LABEL, UUID, PTTYPE, USAGE, …)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isupper():
            out[key] = value
    return out


def parse_findmnt(text: str) -> list[JSON]:
    """`findmnt -J --list -o TARGET,SOURCE,FSTYPE,OPTIONS` -> entries (children flattened)."""
    if not text.strip():
        return []
    data = json.loads(text)
    out: list[JSON] = []

    def walk(items: list[JSON]) -> None:
        for item in items:
            out.append(
                {
                    "target": item.get("target") or "",
                    "source": item.get("source") or "",
                    "fstype": item.get("fstype") or "",
                    "options": (item.get("options") or "").split(",")
                    if item.get("options")
                    else [],
                }
            )
            walk(item.get("children") or [])

    walk(data.get("filesystems") or [])
    return out


def parse_losetup(text: str) -> dict[str, str]:
    """`losetup -J` -> loop device: backing file."""
    if not text.strip():
        return {}
    data = json.loads(text)
    return {d["name"]: d.get("back-file") or "" for d in data.get("loopdevices") or []}


def bind_path(source: str) -> str | None:
    """findmnt's 'dev[/path]' for a bind mount -> '/path' (None when not that form)."""
    match = _BIND_SOURCE.match(source)
    return match.group("path") if match else None


async def probe(ctx: ToolContext, host_path: Path) -> dict[str, str] | None:
    """blkid's view of an image or device: TYPE/LABEL/UUID…, None when it holds nothing."""
    result = await ctx.runner.run(["blkid", "-p", "-o", "export", str(host_path)], check=False)
    if result.returncode == 2:
        return None
    if result.returncode != 0:
        raise ToolError(f"blkid {host_path} failed: {result.err or result.returncode}")
    found = parse_blkid_export(result.text)
    return found if ("TYPE" in found or "PTTYPE" in found) else None


async def mounts(ctx: ToolContext, host_target: Path | None = None) -> list[JSON]:
    """findmnt in the registry's mount namespace (all, or the one mounted at `host_target`)."""
    argv = ["findmnt", "-J", "--list", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS"]
    if host_target is not None:
        argv += ["--mountpoint", str(host_target)]
    result = await ctx.runner.run(argv, check=False)
    if result.returncode == 1 and not result.text.strip():
        return []  # nothing mounted there
    if result.returncode != 0:
        raise ToolError(f"findmnt failed: {result.err}")
    return parse_findmnt(result.text)


async def loops(ctx: ToolContext) -> dict[str, str]:
    result = await ctx.runner.run(["losetup", "-J"], check=False)
    if result.returncode != 0:
        raise ToolError(f"losetup -J failed: {result.err}")
    return parse_losetup(result.text)
