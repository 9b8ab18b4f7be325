"""The daemon's spec source: the specs directories, watched, loaded whole.

reconciler.daemon.core.Daemon owns one SpecSource. `load()` reads and validates
every spec file under the directories as one set (specs.loader.load_paths:
the same walk, skips and file:line:col errors as `aios apply -f DIR`).
`changes()` yields once per settled burst of file-system events (inotify,
through asyncinotify): the daemon then calls `load()` again — never a single
file, so a half-written file, an atomic replace (temp file + rename), a rename,
a delete and a ConfigMap-style directory swapped by symlink (`..data`) all end
in one reload of the whole set once the writer has finished.

What settles a burst: a quiet period with no further inotify event. While a
file is being written — it was modified (or created) and its writer has not
closed it yet (no IN_CLOSE_WRITE), nor was it renamed away or deleted
(`Writes`) — the quiet period is `settle_ms` (20 ms): a file written in two
chunks with a pause shorter than that is reloaded once, complete. When no
write is open — the burst ended with a close, a rename into place (an atomic
replace), a delete or a symlink swap, so every file is whole — `quick_ms`
(2 ms) is enough: it only gathers the last events of the same operation (the
rename after the close) into one reload, and an edit reaches the planner
~18 ms sooner. A pause longer than `settle_ms` with the file still open yields
a reload of the half-written file; it fails validation (the set stays on the
last good generation) or is a valid smaller set that the second chunk corrects
at once — either way nothing half-written is applied silently: a YAML document
cut in the middle does not parse.

Events whose every path is an editor leftover (`x~`, `.x.swp`, `#x#`, `x.tmp`,
`4913`, vim's write test) are ignored; events under dot-directories are kept
(the `..data` swap happens there).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specs.errors import SpecError
from specs.kinds import KindTable
from specs.loader import load_paths
from specs.specset import SpecSet

_LEFTOVER_SUFFIXES = ("~", ".swp", ".swo", ".swx", ".tmp", ".bak", ".orig", ".rej")


@dataclass(frozen=True)
class Loaded:
    """One load of the whole set: the set, or every error (file:line:col first)."""

    specset: SpecSet | None
    errors: tuple[str, ...]


def editor_leftover(path: str) -> bool:
    """Whether a changed path is an editor's temporary or backup file."""
    name = Path(path).name
    return (
        name.endswith(_LEFTOVER_SUFFIXES)
        or (name.startswith("#") and name.endswith("#"))
        or (name.startswith(".#"))
        or name == "4913"  # vim's "can I write here" probe
    )


class Writes:
    """Which files are being written: modified or created, not closed, renamed away or
    deleted since. A symlink or a directory is created whole (no close follows: a
    CREATE counts only for what is a regular file when the event is read)."""

    LIMIT = 4096  # a writer that never closes keeps the slow settle, not unbounded memory

    def __init__(self) -> None:
        self.open: set[str] = set()

    def note(self, path: str, *, written: bool, created: bool, finished: bool) -> None:
        if finished:
            self.open.discard(path)
        elif (written or (created and _regular(path))) and len(self.open) < self.LIMIT:
            self.open.add(path)

    def busy(self) -> bool:
        return bool(self.open)


def _regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


class SpecSource:
    def __init__(
        self,
        directories: Sequence[Path],
        kinds: KindTable,
        *,
        debounce_ms: int = 50,
        settle_ms: int = 20,
        quick_ms: int = 2,
    ) -> None:
        self.directories = tuple(directories)
        self.kinds = kinds
        self.debounce_ms = debounce_ms
        self.settle_ms = settle_ms
        self.quick_ms = min(quick_ms, settle_ms)

    def describe(self) -> tuple[str, ...]:
        return tuple(str(d) for d in self.directories)

    def load(self) -> Loaded:
        """Read and validate the whole set now; a missing directory is an error."""
        try:
            return Loaded(load_paths(list(self.directories), self.kinds), ())
        except SpecError as exc:
            return Loaded(None, tuple(str(issue) for issue in exc.issues))

    async def changes(self, stop: asyncio.Event) -> AsyncIterator[tuple[str, ...]]:
        """The changed paths of each settled burst, until `stop` is set.

        inotify (asyncinotify: the kernel's fd in the event loop, so an idle
        watch costs no wake-up at all) on every directory under the specs
        directories; a directory that does not exist yet is watched through its
        nearest existing parent, and directories created later are watched once
        seen. A burst ends after `settle_ms` without an event while a file is
        being written, `quick_ms` when none is (see the module docstring), or
        `debounce_ms` x 10 after it began when events never stop (a storm is then reloaded a
        few times a second, never once per event). A kernel queue overflow counts
        as a change of everything.
        """
        from asyncinotify import Inotify, Mask

        mask = (
            Mask.MODIFY | Mask.CLOSE_WRITE | Mask.CREATE | Mask.DELETE | Mask.MOVED_TO
            | Mask.MOVED_FROM | Mask.DELETE_SELF | Mask.MOVE_SELF | Mask.ATTRIB
        )  # fmt: skip
        slow, quick = self.settle_ms / 1000, self.quick_ms / 1000
        cap = max(0.2, self.debounce_ms * 10 / 1000)
        loop = asyncio.get_running_loop()
        writes = Writes()

        def note(event: Any) -> None:
            if event.path is None or event.mask & Mask.ISDIR:
                return
            writes.note(
                str(event.path),
                written=bool(event.mask & Mask.MODIFY),
                created=bool(event.mask & Mask.CREATE),
                finished=bool(event.mask & (Mask.CLOSE_WRITE | Mask.MOVED_FROM | Mask.DELETE)),
            )

        with Inotify() as inotify:
            self._arm(inotify, mask)
            stopped = asyncio.ensure_future(stop.wait())
            try:
                while not stop.is_set():
                    first = asyncio.ensure_future(inotify.get())
                    await asyncio.wait({first, stopped}, return_when=asyncio.FIRST_COMPLETED)
                    if not first.done():
                        first.cancel()
                        break
                    events = [first.result()]
                    note(events[0])
                    ends = loop.time() + cap
                    while (left := ends - loop.time()) > 0:
                        quiet = slow if writes.busy() else quick
                        try:
                            event = await asyncio.wait_for(inotify.get(), min(quiet, left))
                        except TimeoutError:
                            break
                        note(event)
                        events.append(event)
                    if any(e.mask & (Mask.ISDIR | Mask.Q_OVERFLOW) for e in events):
                        self._arm(inotify, mask)  # new directories, a swapped ..data
                    paths = {str(e.path) for e in events if e.path is not None}
                    if any(e.mask & Mask.Q_OVERFLOW for e in events):
                        paths |= {str(d) for d in self.directories}
                    relevant = tuple(sorted(p for p in paths if self._relevant(p)))
                    if relevant:
                        yield relevant
            finally:
                stopped.cancel()

    def _arm(self, inotify: Any, mask: Any) -> None:
        """Watch every directory under the specs directories (idempotent per path)."""
        for directory in self.directories:
            top = self._watchable(directory)
            with contextlib.suppress(OSError):
                inotify.add_watch(top, mask)
            if top != directory:
                continue
            for root, dirs, _ in os.walk(top):
                for name in dirs:
                    with contextlib.suppress(OSError):
                        inotify.add_watch(Path(root) / name, mask)

    def _relevant(self, path: str) -> bool:
        if editor_leftover(path):
            return False
        return any(
            path == str(d) or path.startswith(str(d).rstrip("/") + "/") or str(d).startswith(path)
            for d in self.directories
        )

    @staticmethod
    def _watchable(directory: Path) -> Path:
        path = directory
        while not path.exists() and path != path.parent:
            path = path.parent
        return path
