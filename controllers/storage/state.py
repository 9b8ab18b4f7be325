"""The observed (or predicted) storage state: mounts, filesystems, fstab block, paths, swap.

Frozen pydantic models, built by controllers.storage.observe from one
`storage.state` read and by controllers.storage.effects when it predicts the
effect of a plan. Lists are sorted (mounts, filesystems, paths, swap files by
path; the managed fstab block keeps its file order) so the JSON dump — the
fingerprint a saved plan is bound to — is deterministic. `FsState.made_with`
exists only in predictions: what a planned mkfs makes (its options, and the
size of the image it creates), which nothing can read back from a filesystem.
Must not import specs (the effect model uses it).
"""

from __future__ import annotations

from reconciler.sdk.plan import Frozen


class MountState(Frozen):
    """What is mounted at `target` (the topmost mount), sources in spec form."""

    target: str
    source: str  # image path, bind source directory, tmpfs, overlay or a /dev device
    device: str = ""  # findmnt's SOURCE: /dev/loopN, dev[/path], tmpfs ("" when predicted)
    fstype: str = ""  # "" when unknown (a predicted bind or auto mount)
    options: tuple[str, ...] = ()


class MkfsRecord(Frozen):
    """What a planned mkfs makes (predictions only)."""

    options: tuple[str, ...] = ()
    image_size: str | None = None  # the size an image is created at; None: not created


class FsState(Frozen):
    """A probed device or image file and the filesystem blkid finds on it."""

    path: str
    exists: bool
    type: str | None = None
    label: str | None = None
    uuid: str | None = None
    made_with: MkfsRecord | None = None


class FstabEntry(Frozen):
    """One line of the managed fstab block ('defaults' reads as no options)."""

    source: str
    target: str
    type: str
    options: tuple[str, ...] = ()
    dump: int = 0
    passno: int = 0

    def tool_form(self) -> dict[str, object]:
        """The entry as storage.fstab takes it."""
        return {
            "source": self.source,
            "target": self.target,
            "type": self.type,
            "options": list(self.options),
            "dump": self.dump,
            "pass": self.passno,
        }


class PathState(Frozen):
    """stat of a path the specs name (owner/group names from the root's databases)."""

    path: str
    exists: bool
    type: str | None = None  # file, dir, symlink, other
    mode: str | None = None  # "0750"
    uid: int | None = None
    gid: int | None = None
    owner: str | None = None
    group: str | None = None
    size: int | None = None  # regular files
    empty: bool | None = None  # directories


class SwapState(Frozen):
    """A swap file the registry manages or the kernel uses."""

    path: str
    size: int
    signature: bool
    active: bool
    priority: int | None = None
    simulated: bool = False  # activation is the registry's double (under a sandbox)


class StorageState(Frozen):
    mounts: tuple[MountState, ...] = ()
    filesystems: tuple[FsState, ...] = ()
    fstab: tuple[FstabEntry, ...] = ()  # the managed block
    paths: tuple[PathState, ...] = ()
    swapfiles: tuple[SwapState, ...] = ()

    def mount_at(self, target: str) -> MountState | None:
        return next((m for m in self.mounts if m.target == target), None)

    def filesystem(self, path: str) -> FsState | None:
        return next((f for f in self.filesystems if f.path == path), None)

    def entry_for(self, target: str) -> FstabEntry | None:
        return next((e for e in self.fstab if e.target == target), None)

    def path_info(self, path: str) -> PathState | None:
        return next((p for p in self.paths if p.path == path), None)

    def swapfile(self, path: str) -> SwapState | None:
        return next((s for s in self.swapfiles if s.path == path), None)


def is_under(path: str, parent: str) -> bool:
    """`path` equals `parent` or lies below it ('/a/b' is under '/a', '/ab' is not)."""
    return path == parent or parent == "/" or path.startswith(parent.rstrip("/") + "/")


def depth(path: str) -> tuple[str, ...]:
    """Sort key that puts parents before their children."""
    return tuple(p for p in path.split("/") if p)


def shadowing(path: str, disturbed: frozenset[str]) -> str | None:
    """The disturbed mount target `path` lies at or below (the deepest), if any."""
    below = [t for t in disturbed if is_under(path, t)]
    return max(below, key=len) if below else None
