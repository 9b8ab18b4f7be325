"""Storage diff: declared filesystems, mounts and fstab entries against the observed state.

Pure. Compares only what the specs set: a filesystem's type and label (its
mkfs options and image size count only when a plan makes it: they cannot be
read back), a mount's source (LABEL=/UUID= resolved among the declared
filesystems), type (not for `auto` or `bind`) and options (a subset, see
controllers.storage.options), the managed fstab entry of a persisted mount
(whole), directories (controllers.storage.diff_paths) and swap files.
Formatting a filesystem that holds another type or label is destructive
(needs `force: true`); so is deleting an image (`state: absent`). Every
declared item that needs nothing gets a NoOp reason. Changes and no-ops come
out sorted. Used by controllers.storage.controller (and the verifier, on
predicted states).
"""

from __future__ import annotations

from controllers.storage import diff_paths
from controllers.storage.desired import (
    Item,
    Items,
    fstab_entry,
    gather,
    label_candidates,
    resolved_source,
)
from controllers.storage.options import missing
from controllers.storage.state import FsState, MkfsRecord, StorageState
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.diffing import Collector
from reconciler.sdk.plan import Change
from specs.storage import Filesystem, Mount

REMAKING_FIELDS = ("", "type", "label")
REMOUNTING_FIELDS = ("", "source", "type")


def diff(desired: Desired, state: StorageState) -> Diff:
    items = gather(desired)
    out = Collector()
    for item in items.filesystems.values():
        diff_filesystem(item, state, out)
    for mount in items.mounts.values():
        diff_mount(mount, items, state, out)
        diff_fstab(mount, state, out)
    disturbed = disturbed_targets(items, state, out.changes)
    for directory in items.directories.values():
        diff_paths.diff_directory(directory, state, disturbed, out)
    for swap in items.swapfiles.values():
        diff_paths.diff_swapfile(swap, state, out)
    diff_paths.diff_undeclared(desired, items, state, out)
    return out.result()


def describe_fs(fs: FsState) -> str:
    label = f", label {fs.label}" if fs.label else ""
    uuid = f", uuid {fs.uuid}" if fs.uuid else ""
    return f"{fs.type}{label}{uuid}"


def diff_filesystem(item: Item[Filesystem], state: StorageState, out: Collector) -> None:
    spec, key = item.spec, item.resource
    target = spec.target
    obj = f"filesystem:{target}"
    fs = state.filesystem(target) or FsState(path=target, exists=False)
    if spec.state == "absent":
        if fs.exists:
            held = f" (it holds {describe_fs(fs)})" if fs.type else ""
            out.change(
                key,
                obj,
                "remove",
                old={"type": fs.type, "label": fs.label},
                destructive=True,
                forced=spec.force,
                detail=f"deleting image {target}{held} destroys its data",
            )
        else:
            out.noop(key, obj, f"image {target} is absent as declared")
        return
    wanted = {"type": spec.type, "label": spec.label}
    if fs.type is None:
        out.change(key, obj, "add", new=wanted | _made(spec))
        return
    destroys = f"{target} holds {describe_fs(fs)}: formatting it destroys its data"
    for name, have, want in (("type", fs.type, spec.type), ("label", fs.label, spec.label)):
        if want is not None and have != want:
            out.change(
                key,
                obj,
                "change",
                name,
                old=have,
                new=want,
                destructive=True,
                forced=spec.force,
                detail=destroys,
            )
    if fs.made_with is not None:  # a prediction: what the plan makes must be what is declared
        _diff_made(key, obj, spec, fs.made_with, out)
    if any(c.object == obj for c in out.changes):
        return
    label = f" labelled {fs.label}" if spec.label else ""
    out.noop(
        key,
        obj,
        f"{target} holds {fs.type}{label} as declared (mkfs options and image size apply "
        "only when the filesystem is made)",
    )


def _diff_made(key: str, obj: str, spec: Filesystem, made: MkfsRecord, out: Collector) -> None:
    if made.options != tuple(spec.mkfs_options):
        out.change(
            key, obj, "change", "mkfsOptions", old=list(made.options), new=list(spec.mkfs_options)
        )
    size = spec.image.size if spec.image is not None else None
    if made.image_size is not None and made.image_size != size:
        out.change(key, obj, "change", "size", old=made.image_size, new=size)


def _made(spec: Filesystem) -> dict[str, object]:
    made: dict[str, object] = {"mkfsOptions": list(spec.mkfs_options)}
    if spec.image is not None:
        made["size"] = spec.image.size
    return made


def diff_mount(item: Item[Mount], items: Items, state: StorageState, out: Collector) -> None:
    spec, key = item.spec, item.resource
    target = spec.target
    obj = f"mount:{target}"
    live = state.mount_at(target)
    if spec.state == "absent":
        if live is not None:
            out.change(key, obj, "remove", old={"source": live.source, "type": live.fstype})
        else:
            out.noop(key, obj, f"nothing is mounted at {target}, as declared")
        return
    if live is None:
        out.change(
            key,
            obj,
            "add",
            new={"source": spec.source, "type": spec.type, "options": list(spec.options)},
        )
        return
    source = resolved_source(spec, items, state)
    if live.source != source:
        detail = "" if source else f"no declared filesystem has {spec.source}"
        out.change(key, obj, "change", "source", old=live.source, new=spec.source, detail=detail)
        return
    if spec.type not in ("auto", "bind") and live.fstype != spec.type:
        out.change(key, obj, "change", "type", old=live.fstype, new=spec.type)
        return
    absent = missing(spec.options, live.options)
    if absent:
        out.change(
            key,
            obj,
            "change",
            "options",
            old=list(live.options),
            new=list(spec.options),
            detail=f"missing: {', '.join(absent)}",
        )
        return
    with_options = f" with {', '.join(spec.options)}" if spec.options else ""
    out.noop(
        key, obj, f"{live.source} is mounted at {target} ({live.fstype}){with_options} as declared"
    )


def diff_fstab(item: Item[Mount], state: StorageState, out: Collector) -> None:
    spec, key = item.spec, item.resource
    target = spec.target
    obj = f"fstab:{target}"
    have = state.entry_for(target)
    if spec.state == "absent" or not spec.persist:
        if have is not None:
            out.change(key, obj, "remove", old=have.tool_form())
        elif spec.state == "present":
            out.noop(
                key,
                obj,
                f"{target} is not persisted (persist: false): it has no managed fstab entry",
            )
        return
    want = fstab_entry(spec)
    if have is None:
        out.change(key, obj, "add", new=want.tool_form())
    elif have != want:
        out.change(key, obj, "change", "entry", old=have.tool_form(), new=want.tool_form())
    else:
        out.noop(key, obj, f"the managed fstab block mounts {target} as declared")


def remade(changes: list[Change] | tuple[Change, ...]) -> frozenset[str]:
    """Filesystem targets the changes (re)make."""
    return frozenset(
        c.object.partition(":")[2]
        for c in changes
        if c.object.startswith("filesystem:") and c.op != "remove" and c.field in REMAKING_FIELDS
    )


def disturbed_targets(
    items: Items, state: StorageState, changes: list[Change] | tuple[Change, ...]
) -> frozenset[str]:
    """Mount targets whose content changes: (un)mounted, replaced, or their filesystem remade.

    Paths at or below them cannot be judged from the observation: a plan
    sets them after mounting.
    """
    out = {
        c.object.partition(":")[2]
        for c in changes
        if c.object.startswith("mount:") and c.field in REMOUNTING_FIELDS
    }
    made = remade(changes)
    out |= {m.target for m in state.mounts if m.source in made}
    for target, item in items.mounts.items():
        sources = {item.spec.source, resolved_source(item.spec, items, state) or ""}
        sources |= set(label_candidates(item.spec.source, items, state))
        if item.spec.state == "present" and sources & made:
            out.add(target)
    return frozenset(out)
