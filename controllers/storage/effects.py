"""The storage effect model: (state, steps) -> the state the steps would leave.

Models every input of the tools the storage planner emits, as the tools
behave (registry/handlers/storage*.py): mkfs (refuses an existing filesystem
without `force` and a mounted target; creates a missing image only with
`image.size`; records what it makes in `made_with`), mount (LABEL=/UUID=
resolved among `probe` candidates that were observed; refuses a target with
another source; a remount adds options the way the kernel shows them),
umount (refuses while something is mounted below), the managed fstab block
(replaced whole; every entry it adds, alters or drops must be one the step
says it satisfies), dir (mkdir -p, mode/owner/group; removal refuses a
non-empty directory without `force`), swapfile, and fs.delete of an observed
image. Mounting or unmounting a target hides what was at and below it: those
paths become unknown (not there) until a later step makes them. An unknown
tool or input field raises ValueError (the verifier turns it into a
finding). Must not import specs. Used by controllers.storage.controller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from contract.catalogue.parts import size_bytes
from controllers.storage.options import kernel_after
from controllers.storage.state import (
    FsState,
    FstabEntry,
    MkfsRecord,
    MountState,
    PathState,
    StorageState,
    SwapState,
    is_under,
)
from reconciler.sdk.plan import Step


class World:
    """A mutable copy of StorageState that steps act on."""

    def __init__(self, state: StorageState) -> None:
        self.mounts = {m.target: m for m in state.mounts}
        self.filesystems = {f.path: f for f in state.filesystems}
        self.fstab = list(state.fstab)
        self.paths = {p.path: p for p in state.paths}
        self.swapfiles = {s.path: s for s in state.swapfiles}

    def freeze(self) -> StorageState:
        return StorageState(
            mounts=tuple(self.mounts[t] for t in sorted(self.mounts)),
            filesystems=tuple(self.filesystems[p] for p in sorted(self.filesystems)),
            fstab=tuple(self.fstab),
            paths=tuple(self.paths[p] for p in sorted(self.paths)),
            swapfiles=tuple(self.swapfiles[p] for p in sorted(self.swapfiles)),
        )

    def hide(self, target: str) -> None:
        """(Un)mounting `target` changes what is at and below it: unknown until made again."""
        for path in list(self.paths):
            if path == target:
                self.paths[path] = PathState(path=path, exists=True, type="dir")
            elif is_under(path, target):
                self.paths[path] = PathState(path=path, exists=False)

    def mounted_source(self, path: str) -> str | None:
        return next((m.target for m in self.mounts.values() if m.source == path), None)

    def set_path(self, path: str, **values: Any) -> None:
        if path in self.paths:
            self.paths[path] = PathState(path=path, **values)


def _check_keys(step: Step, allowed: set[str]) -> Mapping[str, Any]:
    unknown = set(step.input) - allowed
    if unknown:
        raise ValueError(f"{step.tool}: cannot model input field(s) {', '.join(sorted(unknown))}")
    return step.input


def _mkfs(world: World, step: Step) -> None:
    inp = _check_keys(step, {"target", "image", "type", "label", "options", "force"})
    target = inp["target"]
    fs = world.filesystems.get(target)
    if fs is None:
        raise ValueError(f"storage.mkfs on {target}, which the observation did not probe")
    if world.mounted_source(target):
        raise ValueError(f"{target} is mounted at {world.mounted_source(target)}: unmount it first")
    if fs.type is not None and not inp.get("force", False):
        raise ValueError(f"{target} holds {fs.type}: storage.mkfs refuses it without force")
    created = not fs.exists
    if created and "image" not in inp:
        raise ValueError(f"image {target} does not exist and the step gives no image.size")
    size = str(inp["image"]["size"]) if created else None
    world.filesystems[target] = FsState(
        path=target,
        exists=True,
        type=inp["type"],
        label=inp.get("label"),
        made_with=MkfsRecord(options=tuple(inp.get("options", ())), image_size=size),
    )
    if created:
        world.set_path(target, exists=True, type="file", size=size_bytes(size or 0))


def _resolve(world: World, source: str, probe: Sequence[str]) -> str:
    if not source.startswith(("LABEL=", "UUID=")):
        return source
    key, _, value = source.partition("=")
    for candidate in probe:
        fs = world.filesystems.get(candidate)
        if fs is None:
            raise ValueError(f"probe candidate {candidate} was not observed")
        if (fs.label if key == "LABEL" else fs.uuid) == value:
            return candidate
    raise ValueError(f"no filesystem with {source} among the probe candidates")


def _mount(world: World, step: Step) -> None:
    inp = _check_keys(step, {"target", "source", "type", "options", "probe"})
    target, kind = inp["target"], inp.get("type", "auto")
    given = list(inp.get("options", ()))
    source = _resolve(world, inp["source"], inp.get("probe", ()))
    fs = world.filesystems.get(source)
    if fs is not None and not fs.exists:
        raise ValueError(f"mount source {source} does not exist")
    live = world.mounts.get(target)
    if live is not None:
        if live.source != source:
            raise ValueError(f"{target} already has {live.source} mounted; the tool refuses")
        options = kernel_after(live.options, given, fresh=False)
        world.mounts[target] = live.model_copy(update={"options": options})
        return
    fstype = kind
    if kind == "auto":
        fstype = (fs.type or "") if fs is not None else ""
    elif kind == "bind":
        fstype = ""  # a bind mount shows the fstype of the filesystem its source is on
    world.mounts[target] = MountState(
        target=target, source=source, fstype=fstype, options=kernel_after((), given, fresh=True)
    )
    world.hide(target)


def _umount(world: World, step: Step) -> None:
    inp = _check_keys(step, {"target", "lazy"})
    target = inp["target"]
    below = [t for t in world.mounts if t != target and is_under(t, target)]
    if below and not inp.get("lazy", False):
        raise ValueError(f"{target} has {below[0]} mounted below it: unmount that first")
    if world.mounts.pop(target, None) is not None:
        world.hide(target)


def _satisfied_objects(step: Step) -> set[str]:
    return {cid.split("|")[1] for cid in step.satisfies if cid.count("|") >= 1}


def _fstab(world: World, step: Step) -> None:
    inp = _check_keys(step, {"entries"})
    new = [
        FstabEntry(
            source=e["source"],
            target=e["target"],
            type=e["type"],
            options=tuple(e.get("options", ())),
            dump=e.get("dump", 0),
            passno=e.get("pass", 0),
        )
        for e in inp["entries"]
    ]
    before = {e.target: e for e in world.fstab}
    after = {e.target: e for e in new}
    touched = {t for t in set(before) | set(after) if before.get(t) != after.get(t)}
    unnamed = sorted(t for t in touched if f"fstab:{t}" not in _satisfied_objects(step))
    if unnamed:
        raise ValueError(
            f"the fstab step changes the entry for {', '.join(unnamed)}, which it does not "
            "say it satisfies"
        )
    world.fstab = new


def _dir(world: World, step: Step) -> None:
    inp = _check_keys(step, {"path", "mode", "owner", "group", "state", "force"})
    path = inp["path"]
    info = world.paths.get(path, PathState(path=path, exists=False))
    if inp.get("state", "present") == "absent":
        if not info.exists:
            return
        if info.type != "dir":
            raise ValueError(f"{path} is not a directory; storage.dir refuses to remove it")
        if info.empty is not True and not inp.get("force", False):
            raise ValueError(f"{path} is not (known to be) empty; removing it needs force")
        for other in list(world.paths):
            if is_under(other, path):
                world.paths[other] = PathState(path=other, exists=False)
        return
    if info.exists and info.type != "dir":
        raise ValueError(f"{path} exists and is not a directory; storage.dir refuses it")
    values: dict[str, Any] = info.model_dump(exclude={"path"}) if info.exists else {"empty": True}
    values |= {"exists": True, "type": "dir"}
    if "mode" in inp:
        values["mode"] = str(inp["mode"]).zfill(4)[-4:]
    for name, number in (("owner", "uid"), ("group", "gid")):
        if name in inp:
            given = str(inp[name])
            values[name], values[number] = (None, int(given)) if given.isdigit() else (given, None)
    world.paths[path] = PathState(path=path, **values)
    for other, known in list(world.paths.items()):  # mkdir -p makes the parents
        if other != path and is_under(path, other) and not known.exists:
            world.paths[other] = PathState(path=other, exists=True, type="dir")


def _swapfile(world: World, step: Step) -> None:
    inp = _check_keys(step, {"path", "size", "state", "priority"})
    path = inp["path"]
    old = world.swapfiles.get(path)
    if inp.get("state", "present") == "absent":
        world.swapfiles.pop(path, None)
        world.set_path(path, exists=False)
        return
    info = world.paths.get(path)
    if old is None and info is not None and info.exists:
        raise ValueError(f"{path} exists and is not a swap file the registry manages")
    simulated = old.simulated if old else any(s.simulated for s in world.swapfiles.values())
    size = size_bytes(inp["size"])
    priority = inp.get("priority", old.priority if old else None)
    world.swapfiles[path] = SwapState(
        path=path, size=size, signature=True, active=True, priority=priority, simulated=simulated
    )
    world.set_path(path, exists=True, type="file", mode="0600", size=size)


def _delete(world: World, step: Step) -> None:
    inp = _check_keys(step, {"path"})
    path = inp["path"]
    fs = world.filesystems.get(path)
    if fs is None or not fs.exists:
        raise ValueError(f"fs.delete of {path}: the storage domain deletes only observed images")
    if world.mounted_source(path):
        raise ValueError(f"{path} is mounted at {world.mounted_source(path)}: unmount it first")
    world.filesystems[path] = FsState(path=path, exists=False)
    world.set_path(path, exists=False)


HANDLERS: dict[str, Callable[[World, Step], None]] = {
    "storage.mkfs": _mkfs,
    "storage.mount": _mount,
    "storage.umount": _umount,
    "storage.fstab": _fstab,
    "storage.dir": _dir,
    "storage.swapfile": _swapfile,
    "fs.delete": _delete,
}


def simulate(state: StorageState, steps: Sequence[Step]) -> StorageState:
    world = World(state)
    for step in steps:
        handler = HANDLERS.get(step.tool)
        if handler is None:
            raise ValueError(f"the storage effect model does not know {step.tool}")
        handler(world, step)
    return world.freeze()
