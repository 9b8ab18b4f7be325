"""Watch the storage domain for changes: the mount table, /proc/self/mountinfo.

`watch(emit, armed, root=…)` runs until it is cancelled and reports each
change of the registry's mount table as `emit("mountinfo", detail, False)`;
it sets `armed` once it listens. Called by registry.server.changefeed (the
change feed's hub).

/proc/self/mountinfo is pollable: the kernel flags POLLPRI | POLLERR on an
open instance whenever the mount namespace changes (a mount, an unmount, a
remount, a propagation change). The file is registered for exactly those in
an epoll instance of its own, and that epoll fd is watched by the event loop
(an epoll fd is readable while its interest list is ready), so an idle watch
costs no wake-up and no thread. A wake re-reads the table and compares it
with the last one; an unchanged table emits nothing. The kernel clears the
flag when it reports it (also to the loop's own readiness check), so a wake
whose epoll poll returns no events is normal: the content decides.

The table is the registry process's own mount namespace: the sandbox's
registry runs inside `unshare -m`, so it is the sandbox's. The detail names
what changed, mount points as the target sees them (inside `--root`):
`+/mnt/data ext4 /dev/loop3`, `-/mnt/data`, `~/mnt/data rw,relatime -> ro,…`
for a remount, `(+N more)` when several changed at once. With a root other
than /, only mounts at or under it are the target's: the sandbox's mount
namespace still receives the host's mounts and unmounts elsewhere (another
sandbox's /run/netns entry), which are no change of its storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import select
from pathlib import Path

from registry.core.watch import Emit, one_line, shown

MOUNTINFO = "/proc/self/mountinfo"

# mountinfo(5): id parent major:minor root mountpoint options [optional fields] - fstype
# source superoptions; the mount point's spaces and the like are octal escapes.
Mount = tuple[str, str, str, str]  # mount point, fstype, source, options


_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape(text: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m[1], 8)), text)


def parse(text: str) -> dict[str, Mount]:
    """Mount id → (mount point, fstype, source, options) of one mountinfo table."""
    table: dict[str, Mount] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 7 or "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        tail = [*fields[sep + 1 :], "", ""]
        table[fields[0]] = (unescape(fields[4]), tail[0], tail[1], fields[5])
    return table


def inside(root: Path, mount_point: str) -> bool:
    """Whether a mount point is the target's: under the root (everything when it is /)."""
    text = str(root).rstrip("/")
    return not text or mount_point == text or mount_point.startswith(text + "/")


def differences(before: dict[str, Mount], after: dict[str, Mount], root: Path) -> list[str]:
    """One line per mount that came, went or changed its options, in mount-id order."""
    lines: list[str] = []
    for mid in sorted(set(before) | set(after), key=lambda x: int(x) if x.isdigit() else 0):
        old, new = before.get(mid), after.get(mid)
        if not inside(root, (new or old or ("",))[0]):
            continue
        if old is None and new is not None:
            lines.append(f"+{shown(root, new[0])} {new[1]} {new[2]}")
        elif new is None and old is not None:
            lines.append(f"-{shown(root, old[0])}")
        elif old is not None and new is not None and old != new:
            lines.append(f"~{shown(root, new[0])} {old[3]} -> {new[3]}")
    return lines


def read_table(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


async def watch(
    emit: Emit, armed: asyncio.Event, *, root: Path = Path("/"), netns: str | None = None
) -> None:
    del netns  # mounts are the process's mount namespace's, not the network namespace's
    loop = asyncio.get_running_loop()
    fd = os.open(MOUNTINFO, os.O_RDONLY | os.O_CLOEXEC)
    poller = select.epoll()
    woke = asyncio.Event()
    try:
        poller.register(fd, select.EPOLLPRI | select.EPOLLERR)
        loop.add_reader(poller.fileno(), woke.set)
        try:
            before = parse(read_table(fd))
            armed.set()
            while True:
                await woke.wait()
                woke.clear()
                poller.poll(0)  # consume the readiness (it may already be gone)
                after = parse(read_table(fd))
                changed = differences(before, after, root)
                if changed:
                    emit("mountinfo", one_line(changed), False)
                before = after
        finally:
            loop.remove_reader(poller.fileno())
    finally:
        poller.close()
        with contextlib.suppress(OSError):
            os.close(fd)
