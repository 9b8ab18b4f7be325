"""The daemon's spec source: the specs directories, watched, loaded whole.

reconciler.daemon.core.Daemon owns one SpecSource. `load()` reads and validates
every spec file under the directories as one set (specs.loader.load_paths:
the same walk, skips and file:line:col errors as `aios apply -f DIR`).
`changes()` yields once per settled burst of file-system events (watchfiles,
inotify underneath): the daemon then calls `load()` again — never a single
file, so a half-written file, an atomic replace (temp file + rename), a rename,
a delete and a ConfigMap-style directory swapped by symlink (`..data`) all end
in one reload of the whole set once the writer has finished.

What settles a burst: watchfiles' debounce (`debounce_ms`, default 50) plus a
short quiet period (`settle_ms`): a file written in two chunks with a pause
shorter than that is reloaded once, complete. A pause longer than that yields
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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import watchfiles

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


class SpecSource:
    def __init__(
        self,
        directories: Sequence[Path],
        kinds: KindTable,
        *,
        debounce_ms: int = 50,
        settle_ms: int = 20,
    ) -> None:
        self.directories = tuple(directories)
        self.kinds = kinds
        self.debounce_ms = debounce_ms
        self.settle_ms = settle_ms

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

        A directory that does not exist yet is watched through its nearest
        existing parent (a directory created later is then picked up).
        """
        watched = [str(self._watchable(d)) for d in self.directories]
        async for batch in watchfiles.awatch(
            *watched,
            watch_filter=None,
            debounce=self.debounce_ms,
            step=5,
            stop_event=stop,
            recursive=True,
            yield_on_timeout=False,
        ):
            paths = tuple(sorted({p for _, p in batch if self._relevant(p)}))
            if not paths:
                continue
            await asyncio.sleep(self.settle_ms / 1000)  # let a writer finish its burst
            yield paths

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
