"""The storage items the desired Storage resources declare, by object key.

`gather(desired)` flattens every Storage resource into items keyed by the
object they name (`filesystem:<target>`, `mount:<target>`, `directory:<path>`,
`swapfile:<path>`); the loader guarantees no two resources claim the same
one. Also: the fstab entry a persisted mount gets, how a mount's source reads
back once mounted, and the probe candidates of LABEL=/UUID= sources. Used by
observe, diff, plan and the controller (destructive/forced).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from contract.vocab.sizes import size_bytes
from controllers.storage.state import FstabEntry, StorageState
from reconciler.sdk.controller import Desired
from specs.storage import Directory, Filesystem, Mount, Storage, Swapfile

T = TypeVar("T")


@dataclass(frozen=True)
class Item(Generic[T]):
    resource: str  # Kind/name of the declaring resource
    spec: T


@dataclass(frozen=True)
class Items:
    filesystems: dict[str, Item[Filesystem]] = field(default_factory=dict)
    mounts: dict[str, Item[Mount]] = field(default_factory=dict)
    directories: dict[str, Item[Directory]] = field(default_factory=dict)
    swapfiles: dict[str, Item[Swapfile]] = field(default_factory=dict)
    prune: tuple[str, ...] = ()  # keys of resources with prune: true, sorted

    def objects(self) -> frozenset[str]:
        """Every object key a resource declares (present or absent)."""
        return frozenset(
            [f"filesystem:{t}" for t in self.filesystems]
            + [f"mount:{t}" for t in self.mounts]
            + [f"fstab:{t}" for t in self.mounts]
            + [f"directory:{p}" for p in self.directories]
            + [f"swapfile:{p}" for p in self.swapfiles]
        )

    def declares(self, resource: str) -> frozenset[str]:
        """The object keys `resource` declares."""
        keys = [f"filesystem:{t}" for t, i in self.filesystems.items() if i.resource == resource]
        for target, item in self.mounts.items():
            if item.resource == resource:
                keys += [f"mount:{target}", f"fstab:{target}"]
        keys += [f"directory:{p}" for p, i in self.directories.items() if i.resource == resource]
        keys += [f"swapfile:{p}" for p, i in self.swapfiles.items() if i.resource == resource]
        return frozenset(keys)


def storage_resources(desired: Desired) -> Iterator[Storage]:
    for resource in desired.resources:
        if isinstance(resource, Storage):
            yield resource


def gather(desired: Desired) -> Items:
    items = Items()
    prune = []
    for resource in sorted(storage_resources(desired), key=lambda r: r.key):
        key = resource.key
        if resource.spec.prune:
            prune.append(key)
        for fs in resource.spec.filesystems:
            items.filesystems[fs.target] = Item(key, fs)
        for mount in resource.spec.mounts:
            items.mounts[mount.target] = Item(key, mount)
        for directory in resource.spec.directories:
            items.directories[directory.path] = Item(key, directory)
        for swap in resource.spec.swapfiles:
            items.swapfiles[swap.path] = Item(key, swap)
    return Items(items.filesystems, items.mounts, items.directories, items.swapfiles, tuple(prune))


def fstab_entry(mount: Mount) -> FstabEntry:
    """The managed-block line a persisted mount gets ('defaults' is written as no options)."""
    options = tuple(o for o in mount.options if o != "defaults")
    kind: str = mount.type
    if kind == "bind":
        kind = "none"
        options = ("bind", *(o for o in options if o != "bind"))
    return FstabEntry(source=mount.source, target=mount.target, type=kind, options=options)


def label_candidates(source: str, items: Items, state: StorageState) -> tuple[str, ...]:
    """Declared filesystems that LABEL=/UUID= `source` can name (empty for other sources).

    A LABEL= source names a declared filesystem with that label (as declared
    when present, else as observed); UUID= only an observed one.
    """
    if not source.startswith(("LABEL=", "UUID=")):
        return ()
    key, _, value = source.partition("=")
    out = []
    for target, item in sorted(items.filesystems.items()):
        if item.spec.state == "absent":
            continue
        fs = state.filesystem(target)
        observed = None if fs is None else (fs.label if key == "LABEL" else fs.uuid)
        declared = item.spec.label if key == "LABEL" else None
        if (declared or observed) == value:
            out.append(target)
    return tuple(out)


def resolved_source(mount: Mount, items: Items, state: StorageState) -> str | None:
    """How `mount`'s source reads back once mounted (None: a LABEL/UUID nothing matches).

    LABEL=/UUID= resolve only among filesystems the specs declare, as
    observed (what the mount tool will find).
    """
    if not mount.source.startswith(("LABEL=", "UUID=")):
        return mount.source
    key, _, value = mount.source.partition("=")
    for target in sorted(items.filesystems):
        fs = state.filesystem(target)
        if fs is not None and (fs.label if key == "LABEL" else fs.uuid) == value:
            return target
    return None


def image_bytes(fs: Filesystem) -> int | None:
    return size_bytes(fs.image.size) if fs.image is not None else None
