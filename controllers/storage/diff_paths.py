"""Storage diff, second half: directories, swap files, and objects no spec declares.

Directories compare mode, owner and group where the spec sets them (an owner
written as a number compares with the uid, a name with the owner's name in
the root's passwd). A directory at or below a mount target this plan
(re)mounts cannot be judged from the observation (the mount hides what is
there now), so it is (re)made after mounting. Removing a directory that is
not empty destroys what it holds: destructive, needs `force: true`.

Objects nobody declares any more (see controllers.storage.controller for the
prune scope): aios's own mounts are unmounted, its fstab entries and swap
files removed, its empty directories removed; a non-empty directory and an
image file are kept with a no-op saying why (deleting data needs an item
with `state: absent` and `force: true`). `prune: true` on a Storage resource
also drops managed fstab entries no spec declares. Used by
controllers.storage.diff.
"""

from __future__ import annotations

from contract.vocab.sizes import size_bytes
from controllers.storage.desired import Item, Items
from controllers.storage.state import PathState, StorageState, shadowing
from reconciler.sdk.controller import Desired
from reconciler.sdk.diffing import Collector
from reconciler.sdk.removals import Removals
from specs.storage import Directory, Swapfile


def _owner_matches(wanted: str, name: str | None, number: int | None) -> bool:
    return number == int(wanted) if wanted.isdigit() else name == wanted


def _mismatches(spec: Directory, info: PathState) -> list[tuple[str, object, str]]:
    """(field, observed, declared) for each field the spec sets that differs."""
    out: list[tuple[str, object, str]] = []
    if spec.mode is not None and spec.mode != info.mode:
        out.append(("mode", info.mode, spec.mode))
    for name, wanted, label, number in (
        ("owner", spec.owner, info.owner, info.uid),
        ("group", spec.group, info.group, info.gid),
    ):
        if wanted is not None and not _owner_matches(wanted, label, number):
            out.append((name, label or number, wanted))
    return out


def _attributes(spec: Directory) -> dict[str, str]:
    return {
        k: v
        for k, v in (("mode", spec.mode), ("owner", spec.owner), ("group", spec.group))
        if v is not None
    }


def diff_directory(
    item: Item[Directory], state: StorageState, disturbed: frozenset[str], out: Collector
) -> None:
    spec, key = item.spec, item.resource
    obj = f"directory:{spec.path}"
    info = state.path_info(spec.path) or PathState(path=spec.path, exists=False)
    if spec.state == "absent":
        _remove_directory(key, obj, info, spec.force, out)
        return
    mount = shadowing(spec.path, disturbed)
    if mount is not None:
        out.change(
            key,
            obj,
            "add",
            new=_attributes(spec),
            detail=f"at or below {mount}, which this plan mounts: set after mounting",
        )
        return
    if not info.exists:
        out.change(key, obj, "add", new=_attributes(spec))
        return
    if info.type != "dir":
        out.change(
            key,
            obj,
            "change",
            "type",
            old=info.type,
            new="dir",
            detail=f"{spec.path} exists and is a {info.type}, not a directory",
        )
        return
    mismatches = _mismatches(spec, info)
    for name, have, wanted in mismatches:
        out.change(key, obj, "change", name, old=have, new=wanted)
    changed = bool(mismatches)
    if not changed:
        set_ = ", ".join(f"{k} {v}" for k, v in _attributes(spec).items())
        out.noop(
            key,
            obj,
            f"directory {spec.path} exists" + (f" with {set_}" if set_ else "") + " as declared",
        )


def _remove_directory(key: str, obj: str, info: PathState, force: bool, out: Collector) -> None:
    path = obj.partition(":")[2]
    if not info.exists:
        out.noop(key, obj, f"directory {path} is absent as declared")
        return
    if info.type != "dir":
        out.change(
            key,
            obj,
            "change",
            "type",
            old=info.type,
            new="absent",
            detail=f"{path} is a {info.type}, not a directory: storage.dir will not remove it",
        )
        return
    empty = info.empty is True
    out.change(
        key,
        obj,
        "remove",
        old={"mode": info.mode, "empty": info.empty},
        destructive=not empty,
        forced=force,
        detail="" if empty else f"{path} is not empty: removing it deletes what it holds",
    )


def diff_swapfile(item: Item[Swapfile], state: StorageState, out: Collector) -> None:
    spec, key = item.spec, item.resource
    obj = f"swapfile:{spec.path}"
    swap = state.swapfile(spec.path)
    info = state.path_info(spec.path)
    if spec.state == "absent":
        if swap is not None:
            out.change(key, obj, "remove", old={"size": swap.size, "active": swap.active})
        elif info is not None and info.exists:
            out.noop(
                key,
                obj,
                f"{spec.path} exists but is not a swap file the registry manages: left alone",
            )
        else:
            out.noop(key, obj, f"swap file {spec.path} is absent as declared")
        return
    if swap is None:
        if info is not None and info.exists:
            out.change(
                key,
                obj,
                "change",
                "type",
                old=info.type,
                new="swapfile",
                detail=f"{spec.path} exists and is not a swap file the registry manages",
            )
        else:
            out.change(key, obj, "add", new={"size": spec.size, "priority": spec.priority})
        return
    wanted = size_bytes(spec.size)
    checks = (
        ("size", swap.size, wanted),
        ("signature", swap.signature, True),
        ("active", swap.active, True),
    )
    changed = False
    for name, have, want in checks:
        if have != want:
            out.change(key, obj, "change", name, old=have, new=want)
            changed = True
    if spec.priority is not None and swap.priority != spec.priority:
        out.change(key, obj, "change", "priority", old=swap.priority, new=spec.priority)
        changed = True
    if not changed:
        how = " (activation simulated: swap is global)" if swap.simulated else ""
        prio = f" with priority {swap.priority}" if spec.priority is not None else ""
        out.noop(key, obj, f"swap file {spec.path} ({spec.size}) is active{prio}{how} as declared")


def diff_undeclared(desired: Desired, items: Items, state: StorageState, out: Collector) -> None:
    """Remove what aios created that no spec declares any more (and prune: true's scope),
    each object once (reconciler.sdk.removals)."""
    chosen = Removals(desired, items.objects().__contains__)
    for found in chosen.inventory:
        _release(found.resource, found.object, state, out)
    if items.prune:
        for entry in state.fstab:
            obj = f"fstab:{entry.target}"
            if chosen.claim(obj):
                out.change(
                    items.prune[0],
                    obj,
                    "remove",
                    old=entry.tool_form(),
                    detail="prune: true drops managed fstab entries no spec declares",
                )


def _release(resource: str, obj: str, state: StorageState, out: Collector) -> None:
    kind, _, path = obj.partition(":")
    if kind == "mount" and state.mount_at(path) is not None:
        live = state.mount_at(path)
        assert live is not None
        out.change(
            resource,
            obj,
            "remove",
            old={"source": live.source, "type": live.fstype},
            detail="aios mounted it; no spec declares it any more",
        )
    elif kind == "fstab" and state.entry_for(path) is not None:
        entry = state.entry_for(path)
        assert entry is not None
        out.change(resource, obj, "remove", old=entry.tool_form())
    elif kind == "swapfile" and state.swapfile(path) is not None:
        out.change(resource, obj, "remove", old={"size": state.swapfile(path).size})  # type: ignore[union-attr]
    elif kind == "directory":
        info = state.path_info(path)
        if info is None or not info.exists:
            return
        if info.type == "dir" and info.empty is True:
            out.change(
                resource,
                obj,
                "remove",
                old={"mode": info.mode, "empty": True},
                detail="aios created it; no spec declares it any more",
            )
        else:
            out.noop(
                resource,
                obj,
                f"directory {path} is no longer declared and not empty: "
                "kept (removing it needs state: absent with force: true)",
            )
    elif kind == "filesystem":
        info = state.path_info(path)
        if info is not None and info.exists:
            out.noop(
                resource,
                obj,
                f"image {path} is no longer declared: kept (deleting an "
                "image needs state: absent with force: true)",
            )
