"""What the change feed's watchers are built on: monitor children and inotify watches.

A watcher (registry.drivers.<domain>.monitor.watch) reports each change as
`emit(source, detail, resync)` and sets an asyncio.Event once it listens, so
nothing that happens afterwards is missed. Two shapes of source cover most
domains, both here so that the per-domain drivers stay independent:

- `monitor_chunks(argv, comm, armed)`: a long-running monitor child (`ip -o
  monitor`, `nft monitor`) in a process group of its own, killed with its
  group when the iteration stops (cancelled or closed). Its output is read in
  chunks as it arrives; each chunk's complete lines come out together, so a
  burst (a link with its addresses and routes, a 200-rule transaction) is a
  few changes, not hundreds. Armed once the child (its `comm` past any exec:
  `ip netns exec NS nft monitor` becomes `nft`) sleeps: both subscribe to
  their netlink groups before their first blocking read. Given up waiting
  after ARM_LIMIT_S (armed anyway, with a warning). MonitorExited when the
  child ends, with its stderr.
- `file_batches(dirs, relevant, armed, recursive=…)`: watchfiles (inotify)
  on directories, debounced DEBOUNCE_MS; `armed` once the watches exist
  (watchfiles adds them synchronously when its generator first runs, before
  its first wait). A batch is the set of (Change, path) that passed `relevant`.

`one_line` makes a detail of several lines (the first, `(+N more)`); `shown`
names a host path as the target sees it (inside the registry's `--root`).

Called by registry.drivers.net.monitor, nft.monitor, pkg.monitor and
model.monitor (storage.monitor polls /proc/self/mountinfo itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import watchfiles

from registry.core.process import BASE_ENV, kill_group

log = logging.getLogger(__name__)

Emit = Callable[[str, str, bool], None]  # source, detail, resync
CHUNK = 65536
ARM_LIMIT_S = 5.0
DEBOUNCE_MS = 20
# watchfiles' Rust loop wakes (and takes the GIL) every step while idle: 5 ms cost ~1 % of
# a core per watch here, 50 ms ~0.1 %; a change then arrives within ~50-100 ms.
STEP_MS = 50


class MonitorExited(Exception):
    """A monitor child ended (it never should while it is watched)."""


def one_line(lines: list[str]) -> str:
    """The first line, whitespace (and `-o`'s backslashes) collapsed, `(+N more)` after it."""
    first = " ".join(lines[0].replace("\\", " ").split())
    return first + (f" (+{len(lines) - 1} more)" if len(lines) > 1 else "")


def shown(root: Path, path: str | Path) -> str:
    """A host path as the target names it: relative to the root, absolute."""
    text = str(path)
    if str(root) == "/":
        return text
    rel = os.path.relpath(text, root)
    return text if rel.startswith("..") else "/" + rel.removeprefix(".").lstrip("/")


def sleeping(pid: int, comm: str) -> bool:
    """Whether `pid` runs `comm` (past any exec) and sleeps: blocked in its first read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    return name == comm and stat.rsplit(")", 1)[1].split()[0] == "S"


async def monitor_chunks(
    argv: list[str], comm: str, armed: asyncio.Event
) -> AsyncIterator[list[str]]:
    """The complete, non-blank lines of each chunk `argv` writes; `armed` once it sleeps."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=BASE_ENV,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ARM_LIMIT_S
        while proc.returncode is None and not sleeping(proc.pid, comm):
            if loop.time() > deadline:
                log.warning("%s: not seen waiting for events after %.0f s", comm, ARM_LIMIT_S)
                break
            await asyncio.sleep(0.002)
        armed.set()
        rest = b""
        while True:
            data = await proc.stdout.read(CHUNK)
            if not data:
                err = (await proc.stderr.read(2000)).decode(errors="replace").strip()
                raise MonitorExited(f"`{' '.join(argv)}` exited: {err or 'no error text'}")
            complete, newline, tail = (rest + data).rpartition(b"\n")
            if not newline:  # no line ended yet: keep reading
                rest = tail
                continue
            rest = tail
            lines = [x for x in complete.decode(errors="replace").split("\n") if x.strip()]
            if lines:
                yield lines
    finally:
        kill_group(proc.pid)
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())


async def file_batches(
    dirs: list[Path],
    relevant: Callable[[watchfiles.Change, str], bool],
    armed: asyncio.Event,
    *,
    recursive: bool,
    announce: bool = False,
) -> AsyncIterator[set[tuple[watchfiles.Change, str]]]:
    """Batches of relevant changes under `dirs` (which must exist), armed once watched;
    `announce`: an empty batch first, as soon as it is armed."""
    stop = asyncio.Event()
    batches = watchfiles.awatch(
        *(str(d) for d in dirs),
        watch_filter=relevant,
        debounce=DEBOUNCE_MS,
        step=STEP_MS,
        stop_event=stop,
        recursive=recursive,
        yield_on_timeout=False,
    )
    first = asyncio.ensure_future(anext(batches))
    try:
        # The task's first step runs the generator up to its first wait: RustNotify (the
        # inotify watches) is made synchronously before it. A few turns make sure.
        for _ in range(3):
            await asyncio.sleep(0)
        if first.done():
            first.result()  # a watch that could not start: raise its error
        armed.set()
        if announce:
            yield set()
        batch = await first
        while True:
            yield batch
            batch = await anext(batches)
    finally:
        stop.set()
        first.cancel()
        with contextlib.suppress(BaseException):
            await first
        with contextlib.suppress(BaseException):
            await batches.aclose()


async def forever() -> None:
    """Wait until cancelled (a watcher with nothing to watch)."""
    await asyncio.Event().wait()


def nearest_existing(target: Path, floor: Path) -> Path:
    """`target` if it is a directory, else its closest existing ancestor (never above floor)."""
    here = target
    while here != floor and here != here.parent and not here.is_dir():
        here = here.parent
    return here


def identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a directory, None when there is none at `path`."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


async def dir_batches(
    target: Path,
    relevant: Callable[[watchfiles.Change, str], bool],
    armed: asyncio.Event,
    *,
    recursive: bool,
    floor: Path,
) -> AsyncIterator[set[tuple[watchfiles.Change, str]]]:
    """file_batches on `target`, also while it does not exist (yet) or after it goes.

    A missing `target` is waited for on its closest existing ancestor (down to
    `floor`, the root), one level at a time; once it exists and is watched, a
    batch saying it was added comes out (what happened inside it before is
    unknown: the subscriber looks). A target removed or replaced while watched
    (another inode at its path after a batch) is waited for again the same way.
    """
    appeared = False
    while True:
        here = nearest_existing(target, floor)
        if here == target:
            ident = identity(target)
            async for batch in file_batches(
                [target], relevant, armed, recursive=recursive, announce=appeared
            ):
                yield batch or {(watchfiles.Change.added, str(target))}
                if identity(target) != ident:
                    break
        else:
            wanted = Path(*target.parts[: len(here.parts) + 1])

            def next_step(_change: watchfiles.Change, path: str, wanted: str = str(wanted)) -> bool:
                return path == wanted

            async for _batch in file_batches(
                [here], next_step, armed, recursive=False, announce=True
            ):
                if identity(wanted) is not None:
                    break
        appeared = True
