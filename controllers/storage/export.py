"""Export the observed storage state as one Storage document (`aios export Storage`).

It declares: every mount under the target root that is not a system mount
(not `/`, nothing under /proc, /sys, /dev or /run, no pseudo filesystems
such as proc, sysfs or cgroup) — a mount the managed fstab block holds is
written as that entry says (source, type, options; `persist: true`) when the
entry names what is mounted and its options are in effect; any other with
its live source, type and options minus the kernel defaults `rw` and
`relatime` (`persist: false`); either way only the options the spec
validator allows for that type (contract.vocab.fsoptions: a bind mount shows its
filesystem's `discard`, an ext4 mount `seclabel`, which a spec may not
declare); the filesystem of every image file
mounted by loop (image path and current size, type, label); and the active
swap files. Managed fstab entries that are not mounted are left out (the
export would mount them). Directories are not exported: nothing says which
ones matter. Applying the export to the same machine plans nothing. Used by
controllers.storage.controller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from contract.vocab.fsoptions import mount_option_problem
from controllers.storage.options import missing
from controllers.storage.state import FstabEntry, MountState, StorageState, is_under

SYSTEM_PREFIXES = ("/proc", "/sys", "/dev", "/run")
SYSTEM_FSTYPES = frozenset(
    {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs"}
    | {"tracefs", "mqueue", "hugetlbfs", "pstore", "bpf", "fusectl", "configfs", "autofs"}
    | {"binfmt_misc", "nsfs", "efivarfs", "rpc_pipefs", "selinuxfs"}
)
MOUNT_TYPES = ("ext4", "xfs", "btrfs", "tmpfs", "overlay")
FS_TYPES = ("ext4", "xfs", "btrfs")
KERNEL_DEFAULTS = ("rw", "relatime")
_SOURCE = re.compile(r"^((LABEL|UUID)=[A-Za-z0-9_.\-]{1,64}|tmpfs|none|overlay|/[^\s#]*)$")
_TARGET = re.compile(r"^/[^\s#]*$")  # as specs.storage takes it (an fstab line holds it)
NAME = "exported"


def system_mount(mount: MountState) -> bool:
    if mount.target == "/" or mount.fstype in SYSTEM_FSTYPES:
        return True
    return any(is_under(mount.target, prefix) for prefix in SYSTEM_PREFIXES)


def _entry_names(entry: FstabEntry, mount: MountState, state: StorageState) -> bool:
    """Whether the managed entry describes what is mounted (LABEL/UUID via the probes)."""
    if entry.source == mount.source:
        return True
    key, _, value = entry.source.partition("=")
    if key not in ("LABEL", "UUID"):
        return False
    fs = state.filesystem(mount.source)
    return fs is not None and (fs.label if key == "LABEL" else fs.uuid) == value


def _declarable(kind: str, options: Iterable[str]) -> list[str]:
    """The options a spec of mount type `kind` may declare (the validator's allow-list)."""
    return [o for o in options if mount_option_problem(kind, o) is None]


def _from_entry(entry: FstabEntry) -> dict[str, Any]:
    bind = entry.type == "none" and "bind" in entry.options
    kind = "bind" if bind else entry.type if entry.type in MOUNT_TYPES else "auto"
    options = _declarable(kind, (o for o in entry.options if not (bind and o == "bind")))
    out: dict[str, Any] = {
        "target": entry.target,
        "source": entry.source,
        "type": kind,
        "persist": True,
    }
    if options:
        out["options"] = options
    return out


def _from_live(mount: MountState) -> dict[str, Any]:
    bind = "[" in mount.device
    kind = "bind" if bind else mount.fstype if mount.fstype in MOUNT_TYPES else "auto"
    options = _declarable(kind, (o for o in mount.options if o not in KERNEL_DEFAULTS))
    out: dict[str, Any] = {
        "target": mount.target,
        "source": mount.source,
        "type": kind,
        "persist": False,
    }
    if options:
        out["options"] = options
    return out


def _mounts(state: StorageState) -> list[dict[str, Any]]:
    out = []
    for mount in state.mounts:
        if (
            system_mount(mount)
            or not _SOURCE.match(mount.source)
            or not _TARGET.match(mount.target)
        ):
            continue
        entry = state.entry_for(mount.target)
        if (
            entry is not None
            and _entry_names(entry, mount, state)
            and not missing(entry.options, mount.options)
        ):
            out.append(_from_entry(entry))
        else:
            out.append(_from_live(mount))
    return out


def _filesystems(state: StorageState) -> list[dict[str, Any]]:
    out = []
    for mount in state.mounts:
        fs = state.filesystem(mount.source)
        info = state.path_info(mount.source)
        if system_mount(mount) or not mount.device.startswith("/dev/loop"):
            continue
        if fs is None or fs.type not in FS_TYPES or info is None or not info.size:
            continue
        item: dict[str, Any] = {
            "image": {"path": mount.source, "size": str(info.size)},
            "type": fs.type,
        }
        if fs.label:
            item["label"] = fs.label
        out.append(item)
    return out


def _swapfiles(state: StorageState) -> list[dict[str, Any]]:
    out = []
    for swap in state.swapfiles:
        if swap.active and swap.signature and swap.size > 0:
            item: dict[str, Any] = {"path": swap.path, "size": str(swap.size)}
            if swap.priority is not None and swap.priority >= 0:  # the kernel's own are < 0
                item["priority"] = swap.priority
            out.append(item)
    return out


def export(state: StorageState) -> list[dict[str, Any]]:
    spec: dict[str, Any] = {}
    for name, items in (
        ("filesystems", _filesystems(state)),
        ("mounts", _mounts(state)),
        ("swapfiles", _swapfiles(state)),
    ):
        if items:
            spec[name] = items
    if not spec:
        return []
    return [
        {
            "apiVersion": "aios.dev/v1",
            "kind": "Storage",
            "metadata": {"name": NAME},
            "spec": spec,
        }
    ]
