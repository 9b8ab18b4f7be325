"""Handler of storage.swapfile, and the record of swap files (a double under a sandbox).

Swap is global to the kernel, so `swapon`/`swapoff` are real only when the
root is "/". Under a scratch root the activation is a double: it is recorded
in `<state_dir>/swapfiles.json` (keyed by host path) and reported by
storage.state with simulated=true. The file itself is always real: allocated
with fallocate (zeros written when the filesystem cannot), mode 0600, mkswap.
Collected through registry.handlers.storage.TOOLS; `swapfile_states` serves
storage.state.

The path is resolved inside the root (registry.core.rootfs): its parent
directories (a link on the way is resolved inside the root) and then the
file itself, created, truncated, chmodded and removed through the directory
fd with O_NOFOLLOW; a link at the swap file's own path is refused ("exists
and is not a regular file"). blkid and mkswap are given the file the
registry holds open (`/proc/<registry pid>/fd/<n>`), not its path, so a link
swapped in after the check is never what they read or format. swapon (only
with root "/", where nothing can lead out of the root) takes the path.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

from contract.catalogue import storage as storage_defs
from contract.catalogue.parts import size_bytes
from contract.tooldef import JSON
from registry.core import rootfs
from registry.core.atomicfile import write_atomic
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext
from registry.drivers.storage import blockdev, mounting

RECORD = "swapfiles.json"


def parse_proc_swaps(text: str) -> dict[str, int]:
    """/proc/swaps -> path: priority."""
    out: dict[str, int] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            out[fields[0].replace("\\040", " ")] = int(fields[4])
    return out


class SwapRecord:
    """Swap files this registry manages; under a sandbox also their (simulated) activation."""

    def __init__(self, ctx: ToolContext) -> None:
        self.ctx = ctx
        self.file = ctx.state_dir / RECORD
        self.simulated = mounting.in_sandbox(ctx)

    def load(self) -> dict[str, JSON]:
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, JSON]) -> None:
        write_atomic(self.file, json.dumps(data, sort_keys=True).encode(), mode=0o600)

    def real_active(self) -> dict[str, int]:
        try:
            return parse_proc_swaps(Path("/proc/swaps").read_text())
        except OSError:
            return {}

    def active(self, host: Path) -> tuple[bool, int | None]:
        if self.simulated:
            entry = self.load().get(str(host))
            return (bool(entry and entry.get("active")), entry.get("priority") if entry else None)
        found = self.real_active()
        return (str(host) in found, found.get(str(host)))

    async def activate(self, host: Path, priority: int | None) -> None:
        if not self.simulated:
            prio = ["-p", str(priority)] if priority is not None else []
            await self.ctx.runner.run(["swapon", *prio, str(host)])
        self._set(host, {"active": self.simulated, "priority": priority})

    async def deactivate(self, host: Path) -> None:
        if not self.simulated:
            await self.ctx.runner.run(["swapoff", str(host)])
        self._set(host, {"active": False, "priority": None})

    def forget(self, host: Path) -> None:
        data = self.load()
        if data.pop(str(host), None) is not None:
            self.save(data)

    def _set(self, host: Path, entry: JSON) -> None:
        data = self.load()
        data[str(host)] = entry
        self.save(data)


async def swapfile_states(ctx: ToolContext) -> list[JSON]:
    """Managed and active swap files under the root (storage.state's `swapfiles`)."""
    record = SwapRecord(ctx)
    hosts = set(record.load())
    if not record.simulated:
        hosts |= set(record.real_active())
    out = []
    for host_text in sorted(hosts):
        host = Path(host_text)
        target = mounting.target_form(ctx, host)
        size = _file_size(host)
        if target is None or size is None:
            continue
        active, priority = record.active(host)
        found = await blockdev.probe(ctx, host)
        out.append(
            {
                "path": target,
                "size": size,
                "signature": bool(found and found.get("TYPE") == "swap"),
                "active": active,
                "simulated": record.simulated,
                "priority": priority,
            }
        )
    return out


def _file_size(host: Path) -> int | None:
    """Size of a regular file (not through a link), None when there is none."""
    try:
        st = host.lstat()
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _regular(ctx: ToolContext, target: str) -> os.stat_result | None:
    """lstat of the swap file itself; ToolError when something other than a file is there."""
    try:
        with rootfs.entry(ctx.root, target, follow=False) as found:
            st = found.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ToolError(f"{target} exists and is not a regular file")
    return st


def _open_file(ctx: ToolContext, target: str) -> int | None:
    """A read-write fd of the regular file at `target` itself (never through a link);
    None when nothing is there; ToolError when something else is."""
    try:
        with rootfs.entry(ctx.root, target, follow=False) as found:
            if found.lstat() is None:
                return None
            try:
                fd = found.open(os.O_RDWR | os.O_NONBLOCK)
            except OSError as exc:
                raise ToolError(f"{target} exists and is not a regular file") from exc
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ToolError(f"{target} exists and is not a regular file")
    return fd


def held(fd: int) -> Path:
    """The file this process holds open as `fd`, as a path another process can open."""
    return Path(f"/proc/{os.getpid()}/fd/{fd}")


def _allocate(ctx: ToolContext, target: str, size: int) -> int:
    """Create or truncate the file, allocate `size` bytes; returns its fd (caller closes)."""
    with rootfs.entry(ctx.root, target, follow=False, parents=True) as found:
        fd = found.open(os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError:
            block = bytes(1 << 20)
            remaining = size
            while remaining:
                remaining -= os.write(fd, block[: min(remaining, len(block))])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _chmod(ctx: ToolContext, target: str, mode: int) -> None:
    with rootfs.entry(ctx.root, target, follow=False) as found:
        found.chmod(mode)


def _unlink(ctx: ToolContext, target: str) -> None:
    with rootfs.entry(ctx.root, target, follow=False) as found:
        found.unlink()


def swap_host(ctx: ToolContext, target: str) -> Path:
    """The host path of a swap file: parents resolved inside the root, the file itself."""
    return rootfs.entry_path(ctx.root, target)


async def converge(ctx: ToolContext, target: str, want: JSON) -> bool:
    """Make the swap file at `target` match `want` ({state, size?, priority?}); changed?"""
    host = swap_host(ctx, target)
    record = SwapRecord(ctx)
    active, priority = record.active(host)
    changed = False
    if want["state"] == "absent":
        if active:
            await record.deactivate(host)
            changed = True
        if _regular(ctx, target) is not None:
            await asyncio.to_thread(_unlink, ctx, target)
            changed = True
        record.forget(host)
        return changed
    size = size_bytes(want["size"])
    fd = _open_file(ctx, target)
    try:
        found = await blockdev.probe(ctx, held(fd)) if fd is not None else None
        current = os.fstat(fd).st_size if fd is not None else None
    finally:
        if fd is not None:
            os.close(fd)
    if not (found and found.get("TYPE") == "swap" and current == size):
        if active:
            await record.deactivate(host)
            active = False
        fd = await asyncio.to_thread(_allocate, ctx, target, size)
        try:
            await ctx.runner.run(["mkswap", str(held(fd))])
        finally:
            os.close(fd)
        changed = True
    st = _regular(ctx, target)
    if st is not None and st.st_mode & 0o777 != 0o600:
        await asyncio.to_thread(_chmod, ctx, target, 0o600)
        changed = True
    wanted_priority = want.get("priority")
    if active and wanted_priority is not None and wanted_priority != priority:
        await record.deactivate(host)
        active = False
    if not active:
        await record.activate(host, wanted_priority)
        changed = True
    return changed


class StorageSwapfile(Tool):
    spec = storage_defs.STORAGE_SWAPFILE

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"swap:{args.get('path', '')}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        host = swap_host(ctx, args["path"])
        active, priority = SwapRecord(ctx).active(host)
        size = _file_size(host)
        existed = size is not None
        return {
            "path": args["path"],
            "existed": existed,
            "size": size or 0,
            "active": active,
            "priority": priority,
        }

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        target = snapshot["path"]
        if not snapshot["existed"]:
            await converge(ctx, target, {"state": "absent"})
            return
        await converge(
            ctx,
            target,
            {"state": "present", "size": snapshot["size"], "priority": snapshot["priority"]},
        )
        if not snapshot["active"]:
            await SwapRecord(ctx).deactivate(swap_host(ctx, target))

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        state = args.get("state", "present")
        try:
            changed = await converge(ctx, args["path"], {**args, "state": state})
        except OSError as exc:
            raise ToolError(f"{args['path']}: {exc.strerror or exc}") from None
        host = swap_host(ctx, args["path"])
        record = SwapRecord(ctx)
        active, _priority = record.active(host)
        return {
            "path": args["path"],
            "state": state,
            "changed": changed,
            "size": _file_size(host) or 0,
            "active": active,
            "simulated": record.simulated,
        }
