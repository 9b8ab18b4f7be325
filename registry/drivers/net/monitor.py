"""Watch the network domain for changes: rtnetlink events, the resolver files, net.* sysctls.

`watch(emit, armed, root=…, netns=…)` runs until it is cancelled and reports
each change as `emit(source, detail, resync)`; it sets `armed` once all three
sources below are listening, so nothing that happens afterwards is missed.
Called by registry.server.changefeed (the change feed's hub), one task per
network-domain watch.

- `rtnetlink`: `ip -o monitor link address route rule` (with `-n NS` when
  the registry acts in another namespace; the sandbox's registry runs inside
  its netns and needs none), read with registry.core.watch.monitor_chunks: a
  child in a process group of its own, killed with its group when the watch
  stops; one change per chunk, the detail is the first line (`+N more`), so
  a burst (a link with its addresses and routes, a 200-link apply) is a few
  changes, not hundreds. Armed once `ip` sleeps in its own read (it
  subscribes before the first read).
- `inotify:<path>`: the resolver files net.dns_set manages (`/etc/resolv.conf`,
  the unbound forward-zone file; contract.vocab.netvalues), resolved inside
  the registry's `--root` as the tools resolve them (registry.core.rootfs),
  watched through their directories (registry.core.watch.dir_batches:
  watchfiles, step 50 ms); a directory missing when the watch starts (the
  unbound one usually) is waited for on its closest existing ancestor and
  announced when it appears; resolv.conf as a link to a file elsewhere is
  seen when the link itself is replaced, not when its target is edited.
- `sysctl`: /proc/sys cannot be watched with inotify, so — the one polled
  source of the feed — the net.* sysctls net.state reports
  (registry.drivers.net.system.SYSCTL_DIRS; in our own netns read with plain
  os calls, ~2 ms for ~360 files, else read_sysctls through `ip netns exec`)
  are read every SYSCTL_POLL_S (2 s) and compared; a change arrives up to
  2 s late.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import watchfiles

from contract.vocab.netvalues import RESOLV_CONF, UNBOUND_FORWARD
from registry.core import rootfs
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.core.watch import Emit, dir_batches, forever, monitor_chunks, one_line, shown
from registry.drivers.net.system import SYSCTL_DIRS, read_sysctls

MONITOR_OBJECTS = ("link", "address", "route", "rule")
SYSCTL_POLL_S = 2.0


def monitor_argv(netns: str | None) -> list[str]:
    return ["ip", *(["-n", netns] if netns else []), "-o", "monitor", *MONITOR_OBJECTS]


async def watch_rtnetlink(emit: Emit, armed: asyncio.Event, *, netns: str | None) -> None:
    async for lines in monitor_chunks(monitor_argv(netns), "ip", armed):
        emit("rtnetlink", one_line(lines), False)


def resolver_dirs(root: Path) -> dict[Path, set[str]]:
    """Host directories holding the resolver files (inside the root), and the names watched."""
    found: dict[Path, set[str]] = {}
    for target in (RESOLV_CONF, UNBOUND_FORWARD):
        parent, name = target.rsplit("/", 1)
        try:
            directory = rootfs.host_path(root, parent or "/")
        except OSError:
            continue
        found.setdefault(directory, set()).add(name)
    return found


async def watch_resolver_dir(
    emit: Emit, armed: asyncio.Event, *, root: Path, directory: Path, names: set[str]
) -> None:
    wanted = {str(directory / n) for n in names} | {str(directory)}

    def relevant(_change: watchfiles.Change, path: str) -> bool:
        return path in wanted

    async for batch in dir_batches(directory, relevant, armed, recursive=False, floor=root):
        for change, path in sorted(batch):
            target = shown(root, path)
            emit(f"inotify:{target}", f"{target} {change.name}", False)


async def watch_resolver(emit: Emit, armed: asyncio.Event, *, root: Path) -> None:
    dirs = resolver_dirs(root)
    ready = [asyncio.Event() for _ in dirs]
    async with asyncio.TaskGroup() as group:
        for event, (directory, names) in zip(ready, dirs.items(), strict=True):
            group.create_task(
                watch_resolver_dir(emit, event, root=root, directory=directory, names=names)
            )
        for event in ready:
            await event.wait()
        armed.set()
        if not dirs:
            await forever()


PROC_SYS = "/proc/sys/"


def sysctl_files() -> list[str]:
    """The files behind the net.* sysctls net.state reports, in this netns."""
    found = (p for d in SYSCTL_DIRS for p in Path(PROC_SYS, "net", d).glob("*"))
    return sorted(str(p) for p in found if p.is_file())


def read_files(paths: list[str]) -> dict[str, str | None]:
    """Sysctl key -> value of each file (None: unreadable); plain os calls, ~2 ms for 360."""
    out: dict[str, str | None] = {}
    for path in paths:
        key = path[len(PROC_SYS) :].replace("/", ".")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            out[key] = None
            continue
        try:
            out[key] = os.read(fd, 65536).decode(errors="replace").removesuffix("\n")
        except OSError:
            out[key] = None
        finally:
            os.close(fd)
    return out


async def watch_sysctls(emit: Emit, armed: asyncio.Event, *, root: Path, netns: str | None) -> None:
    if netns is None:  # our own netns (the sandbox's registry runs inside it): read directly
        paths = await asyncio.to_thread(sysctl_files)

        async def read() -> dict[str, str | None]:
            return await asyncio.to_thread(read_files, paths)
    else:
        ctx = ToolContext(
            runner=ProcessRunner(),
            root=root,
            state_dir=root,
            work=root,
            execution_id="",
            netns=netns,
        )

        async def read() -> dict[str, str | None]:
            return await read_sysctls(ctx, None)

    before = await read()
    armed.set()
    while True:
        await asyncio.sleep(SYSCTL_POLL_S)
        now = await read()
        changed = [
            f"{k}: {before.get(k)} -> {now.get(k)}"
            for k in sorted(set(before) | set(now))
            if before.get(k) != now.get(k)
        ]
        if changed:
            emit("sysctl", one_line(changed), False)
        before = now


async def watch(
    emit: Emit, armed: asyncio.Event, *, root: Path = Path("/"), netns: str | None = None
) -> None:
    """All three network sources until cancelled; `armed` once every one listens."""
    ready = [asyncio.Event() for _ in range(3)]
    async with asyncio.TaskGroup() as group:
        group.create_task(watch_rtnetlink(emit, ready[0], netns=netns))
        group.create_task(watch_resolver(emit, ready[1], root=root))
        group.create_task(watch_sysctls(emit, ready[2], root=root, netns=netns))
        for event in ready:
            await event.wait()
        armed.set()
