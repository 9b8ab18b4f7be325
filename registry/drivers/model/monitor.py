"""Watch the models domain for changes: the model directory, recursively.

`watch(emit, armed, root=…)` runs until it is cancelled and reports each change
under `<root>/var/lib/aios/models` (contract.catalogue.model.DEFAULT_DIRECTORY,
resolved inside the registry's `--root` as the tools resolve it,
registry.core.rootfs) as `emit("inotify:<path>", detail, False)`, one change
per debounced batch (the first path, `(+N more)`); it sets `armed` once the
directory is watched. Called by registry.server.changefeed (the change feed's
hub).

A download in progress writes its `<name>.part` file continuously: changes
to `.part` files are not reported (the finished file's rename is — as the
model's own path, `added`), nor are dot-files (the temporary names the `.sha256`
sidecar and a restore are written under before their rename).
A directory missing at the start is waited for on its closest existing
ancestor and announced once it appears (registry.core.watch.dir_batches), and
so is one removed or replaced later. A filesystem mounted over the directory
after the watch started hides what inotify watches: the hub restarts this
watcher when the directory's identity changes (registry.server.changefeed).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import watchfiles

from contract.catalogue.model import DEFAULT_DIRECTORY
from registry.core import rootfs
from registry.core.watch import Emit, dir_batches, identity, one_line, shown

IGNORED_SUFFIXES = (".part", ".tmp", "~")


def model_dir(root: Path) -> Path:
    return rootfs.host_path(root, DEFAULT_DIRECTORY)


def dir_identity(root: Path) -> tuple[int, int] | None:
    """What the hub compares to notice a mount over (or a swap of) the model directory."""
    try:
        return identity(model_dir(root))
    except OSError:
        return None


def relevant(_change: watchfiles.Change, path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return not name.endswith(IGNORED_SUFFIXES) and not name.startswith(".")


async def watch(
    emit: Emit, armed: asyncio.Event, *, root: Path = Path("/"), netns: str | None = None
) -> None:
    del netns
    target = model_dir(root)
    async for batch in dir_batches(target, relevant, armed, recursive=True, floor=root):
        lines = [f"{shown(root, path)} {change.name}" for change, path in sorted(batch)]
        emit(f"inotify:{shown(root, target)}", one_line(lines), False)
