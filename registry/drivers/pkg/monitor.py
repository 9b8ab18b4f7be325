"""Watch the packages domain for changes: the package database's status files.

`watch(emit, armed, root=…)` runs until it is cancelled and reports each change
of the installed-package database as `emit("inotify:<path>", detail, False)`;
it sets `armed` once it listens. Called by registry.server.changefeed (the
change feed's hub).

What is watched, inside the registry's `--root` (resolved as the tools resolve
paths, registry.core.rootfs): dpkg's `<root>/var/lib/dpkg/status` — dpkg and
apt write it as `status-new` renamed over `status`, so the change arrives as
`status added`, once per transaction step — and, where the root is an Alpine
one, apk's `<root>/lib/apk/db/installed`. Only those names count: dpkg's
`lock`, `lock-frontend`, `status-new`, `status-old`, `*.tmp`, `updates/` (its
journal) and `triggers/` come and go during every run and say nothing the
final status file does not. A database directory that does not exist yet (a
fresh root) is waited for on its closest existing ancestor and announced once
it appears (registry.core.watch.dir_batches); inotify (watchfiles, step 50
ms) means no polling.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import watchfiles

from registry.core import rootfs
from registry.core.watch import Emit, dir_batches, shown

DATABASES = {"/var/lib/dpkg": "status", "/lib/apk/db": "installed"}


async def watch_database(
    emit: Emit, armed: asyncio.Event, *, root: Path, directory: str, name: str
) -> None:
    target = rootfs.host_path(root, directory)
    wanted = str(target / name)

    def relevant(_change: watchfiles.Change, path: str) -> bool:
        return path in (wanted, str(target))

    async for batch in dir_batches(target, relevant, armed, recursive=False, floor=root):
        for change, path in sorted(batch):
            where = shown(root, path)
            emit(f"inotify:{where}", f"{where} {change.name}", False)


async def watch(
    emit: Emit, armed: asyncio.Event, *, root: Path = Path("/"), netns: str | None = None
) -> None:
    """dpkg's and apk's databases until cancelled; `armed` once both are watched."""
    del netns
    ready = [asyncio.Event() for _ in DATABASES]
    async with asyncio.TaskGroup() as group:
        for event, (directory, name) in zip(ready, DATABASES.items(), strict=True):
            group.create_task(
                watch_database(emit, event, root=root, directory=directory, name=name)
            )
        for event in ready:
            await event.wait()
        armed.set()
