"""Definitions (ToolSpecs) of the `storage.*` tools: JSON Schemas, risk, flags, capabilities.

The storage tools act in the registry's mount namespace (the sandbox's private
one under `aios sandbox`) and under its root. Target paths are written as the
spec writes them ("/srv/data") and mapped under `--root`. In a sandbox
(root != "/") only image files under the root are formatted or loop-mounted:
/dev paths are refused, LABEL=/UUID= are resolved only among the `probe`
candidates a call names (never by scanning the host's block devices), and
`swapon` is a recorded double (swap is global). mkfs and mount `options`
are checked item by item against the type's allow-list (the tables of
contract.vocab.fsoptions, turned into JSON Schema here by `mkfs_item_schema`
and `mount_item_schema`, so most refusals already come back as `Invalid
input: $.options[i]: ...`; no comma, no positional path; the handlers then
check what a schema cannot say: a value right after its flag, overlay's layer
paths mapped under the root). Every ToolSpec is made by contract.tooldef.define.
Read by registry.handlers.storage* (handlers) and contract.catalogue (ALL).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from contract.catalogue.parts import (
    ABS_PATH,
    BOOL,
    END,
    INT,
    MODE,
    NON_NEGATIVE,
    OPTION,
    OPTIONS,
    PATHS,
    SIZE,
    STATE,
    STR,
    USER_OR_ID,
    array,
    nullable,
    schema,
)
from contract.tooldef import JSON, ToolSpec, define, obj_schema
from contract.vocab.fsoptions import CHARSET, MARKERS, MKFS, mount_table

READ = ("fs_read",)
WRITE = ("storage_manage",)

FS_TYPES = ("ext4", "xfs", "btrfs")
MOUNT_TYPES = ("ext4", "xfs", "btrfs", "tmpfs", "bind", "overlay", "auto")
FS_TYPE = {"enum": list(FS_TYPES)}
MOUNT_TYPE = {"enum": list(MOUNT_TYPES), "default": "auto"}
LABEL = {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,255}" + END}
SOURCE = {
    "type": "string",
    "pattern": r"^((LABEL|UUID)=[A-Za-z0-9_.\-]{1,64}|tmpfs|none|overlay|/[^\s\u0000]*)" + END,
    "maxLength": 4095,
    "description": "An image or bind path under the root, a /dev device (root '/' only), "
    "LABEL=/UUID= (resolved among `probe`), tmpfs, or overlay.",
}
PROBE = {
    **PATHS,
    "description": "Images (or, on a real root, devices) among which LABEL=/UUID= are resolved.",
}
MKFS_OPTIONS = {
    "type": "array",
    "items": {"type": "string", "pattern": CHARSET.pattern},
    "maxItems": 64,
    "description": "Extra mkfs arguments, placed before the target (e.g. ['-m', '1']): "
    "flags of the type's allow-list (contract.vocab.fsoptions MKFS), each value as the next item; "
    "no positional argument, no comma.",
}
MOUNT_OPTIONS = {
    **OPTIONS,
    "description": "Mount options of the type's allow-list (contract.vocab.fsoptions), one per "
    "item (no comma); overlay's lowerdir/upperdir/workdir are mapped under the root.",
}


# First in every item schema: jsonschema then reports "should not be valid under
# {'pattern': '[,\\s]'}" for a comma or whitespace before any other mismatch of the
# item. It also closes the gap of `$`, which matches before a final newline under
# the `re.search` jsonschema uses ('noatime\n' would match '^noatime$').
NO_COMMA: JSON = {"not": {"pattern": r"[,\s]"}}


def _alternatives(patterns: Iterable[str]) -> str:
    return "|".join(f"(?:{MARKERS.get(p, p)})" for p in patterns)


def mkfs_item_schema(fstype: str) -> JSON:
    """One item of storage.mkfs `options` for `fstype`: an allowed flag or a possible value.

    The pairing (a value right after the flag that takes it; no positional
    argument) cannot be said in JSON Schema: the handler checks it with
    `mkfs_problem`. A path never matches, so a positional path is refused here.
    """
    table = MKFS[fstype]
    values = sorted({p for p in table.values() if p is not None})
    flags = "|".join(re.escape(f) for f in sorted(table))
    return {
        "type": "string",
        "allOf": [NO_COMMA, {"pattern": f"^(?:{flags}|{_alternatives(values)})$"}],
    }


def mount_item_schema(kind: str) -> JSON:
    """One item of storage.mount `options` for `kind`: the charset (no comma), a listed key,
    and for a `key=` its value pattern."""
    table = mount_table(kind)
    flags = sorted(k for k, v in table.items() if v is None)
    keyed = sorted(k for k, v in table.items() if v is not None)
    alternatives = [f"(?:{'|'.join(re.escape(f) for f in flags)})$"]
    if keyed:  # an empty group would match every option
        alternatives.append(f"(?:{'|'.join(re.escape(k) for k in keyed)})")
    return {
        "type": "string",
        "allOf": [
            NO_COMMA,
            {"pattern": CHARSET.pattern},
            {"pattern": f"^(?:{'|'.join(alternatives)})"},
            *(
                {
                    "if": {"pattern": f"^{re.escape(k)}"},
                    "then": {"pattern": f"^{re.escape(k)}(?:{MARKERS.get(p, p)})$"},
                }
                for k, p in sorted(table.items())
                if p is not None
            ),
        ],
    }


def _by_type(field: str, types: tuple[str, ...], item: Callable[[str], JSON]) -> JSON:
    """allOf of if-type-then-items: `field`'s items checked against each type's allow-list
    (contract.vocab.fsoptions). A missing type counts as 'auto', storage.mount's default."""
    return {
        "allOf": [
            {
                "if": {
                    "properties": {"type": {"const": kind}},
                    **({} if kind == "auto" else {"required": ["type"]}),
                },
                "then": {"properties": {field: {"items": item(kind)}}},
            }
            for kind in types
        ]
    }


FIELD = {"type": "string", "pattern": r"^[^\s#\u0000]{1,4095}" + END}

FILESYSTEM = obj_schema(
    {"path": STR, "type": nullable(STR), "label": nullable(STR), "uuid": nullable(STR)},
    ("path", "type", "label", "uuid"),
)
MOUNT = obj_schema(
    {
        "target": {**STR, "description": "As the spec writes it (relative to the root)."},
        "source": {**STR, "description": "Image path (spec form) for loop mounts, else findmnt's"},
        "device": STR,
        "fstype": STR,
        "options": array(STR),
    },
    ("target", "source", "device", "fstype", "options"),
)
FSTAB_ENTRY = obj_schema(
    {
        "source": FIELD,
        "target": FIELD,
        "type": FIELD,
        "options": array(OPTION, maxItems=64, description="Empty means 'defaults'."),
        "dump": {"type": "integer", "minimum": 0, "maximum": 9, "default": 0},
        "pass": {"type": "integer", "minimum": 0, "maximum": 9, "default": 0},
    },
    ("source", "target", "type"),
)
FSTAB_ENTRY_OUT = {
    **FSTAB_ENTRY,
    "required": ["source", "target", "type", "options", "dump", "pass"],
}
# `size` is required unless state is absent.
SIZE_UNLESS_ABSENT = {
    "if": {"properties": {"state": {"const": "absent"}}, "required": ["state"]},
    "else": {"required": ["size"]},
}
PATH_INFO = obj_schema(
    {
        "exists": BOOL,
        "type": nullable({"enum": ["file", "dir", "symlink", "other"]}),
        "mode": nullable(STR),
        "uid": nullable(INT),
        "gid": nullable(INT),
        "owner": nullable(STR),
        "group": nullable(STR),
        "size": nullable({**NON_NEGATIVE, "description": "Bytes of a regular file."}),
        "empty": nullable(
            {"type": "boolean", "description": "A directory holds nothing (null: not a dir)."}
        ),
    },
    ("exists", "type", "mode", "uid", "gid", "owner", "group", "size", "empty"),
)
SWAPFILE = obj_schema(
    {
        "path": STR,
        "size": NON_NEGATIVE,
        "signature": {"type": "boolean", "description": "blkid finds a swap signature."},
        "active": BOOL,
        "simulated": {"type": "boolean", "description": "true: swapon is a recorded double."},
        "priority": nullable(INT),
    },
    ("path", "size", "signature", "active", "simulated", "priority"),
)

STORAGE_STATE = define(
    name="storage.state",
    description=(
        "Mounts under the root (findmnt -J in the registry's mount namespace; targets as the "
        "spec writes them; loop mounts report their image as source), filesystems on the "
        "probed images/devices (blkid -p -o export: lsblk shows nulls without udev; under a "
        "sandbox a /dev probe is reported with nulls, never read), the "
        "fstab split into the managed block and other lines, stat of the requested paths "
        "(owner/group names from the root's passwd/group; a file's size; whether a "
        "directory is empty), and swap files (the managed ones and the active ones; under a "
        "sandbox activation is a double: simulated=true)."
    ),
    input_schema=schema({"paths": PATHS, "probe": PROBE}),
    output_schema=schema(
        {
            "mounts": array(MOUNT),
            "filesystems": array(FILESYSTEM),
            "fstab": obj_schema(
                {"managed": array(FSTAB_ENTRY_OUT), "other": array(FSTAB_ENTRY_OUT)},
                ("managed", "other"),
            ),
            "paths": {"type": "object", "additionalProperties": PATH_INFO},
            "swapfiles": array(SWAPFILE),
        },
        ("mounts", "filesystems", "fstab", "paths", "swapfiles"),
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=30_000,
    capabilities=READ,
)

STORAGE_MKFS = define(
    name="storage.mkfs",
    description=(
        "Make a filesystem on a device or an image file (created sparse with `truncate` at "
        "image.size when missing). Refuses when blkid finds any filesystem or signature there "
        "unless `force` (the error names type, label and uuid). Under a sandbox (root != '/') "
        "only image files under the root are allowed; /dev paths are refused. Reversible for "
        "images: Rollback deletes an image the call created, or puts back the previous image "
        "(a sparse copy kept in the execution's backup, within the registry's backup bound). "
        "A formatted device cannot be restored (Rollback says so). `options` holds only flags "
        "of the type's allow-list, each value as the next item: a positional argument (another "
        "device), a host directory to copy in (-d, -p, --rootdir) or a comma is refused."
    ),
    input_schema=schema(
        {
            "target": ABS_PATH,
            "image": obj_schema({"size": SIZE}, ("size",)),
            "type": FS_TYPE,
            "label": LABEL,
            "options": MKFS_OPTIONS,
            "force": {"type": "boolean", "default": False},
        },
        ("target", "type"),
    )
    | _by_type("options", FS_TYPES, mkfs_item_schema),
    output_schema=schema(
        {
            "target": STR,
            "type": STR,
            "label": nullable(STR),
            "uuid": STR,
            "image_created": BOOL,
            "previous": nullable(FILESYSTEM),
        },
        ("target", "type", "label", "uuid", "image_created", "previous"),
    ),
    risk="critical",
    idempotent=False,
    reversible=True,
    timeout_ms=300_000,
    capabilities=WRITE,
)

STORAGE_MOUNT = define(
    name="storage.mount",
    description=(
        "Mount `source` on `target` (created with mkdir -p under the root). Image files are "
        "loop-mounted (-o loop), bind sources and overlay dirs are mapped under the root, "
        "/dev devices only when root is '/'. Already mounted from the same source: options "
        "are applied with a remount, else nothing happens; another source mounted there is "
        "an error. Reversible: Rollback unmounts (and detaches the loop device), or mounts "
        "back what was there. `options`: the type's allow-list, one option per item (no "
        "comma); the only path-valued keys are overlay's lowerdir/upperdir/workdir, mapped "
        "under the root (lowerdir+=, datadir+=, journal_path=, logdev=, device=, loop=, "
        "context=, x-* ... are refused)."
    ),
    input_schema=schema(
        {
            "target": ABS_PATH,
            "source": SOURCE,
            "type": MOUNT_TYPE,
            "options": MOUNT_OPTIONS,
            "probe": PROBE,
        },
        ("target", "source"),
    )
    | _by_type("options", MOUNT_TYPES, mount_item_schema),
    output_schema=schema(
        {**MOUNT["properties"], "changed": BOOL},
        ("target", "source", "device", "fstype", "options", "changed"),
    ),
    risk="medium",
    idempotent=True,
    reversible=True,
    timeout_ms=60_000,
    capabilities=WRITE,
)

STORAGE_UMOUNT = define(
    name="storage.umount",
    description=(
        "Unmount `target` (lazily with `lazy`) and detach the loop device it used. Not "
        "mounted: nothing happens. Reversible: Rollback mounts the same source again (a "
        "tmpfs comes back empty)."
    ),
    input_schema=schema(
        {"target": ABS_PATH, "lazy": {"type": "boolean", "default": False}}, ("target",)
    ),
    output_schema=schema(
        {"target": STR, "unmounted": BOOL, "detached": array(STR)},
        ("target", "unmounted", "detached"),
    ),
    risk="medium",
    idempotent=True,
    reversible=True,
    timeout_ms=60_000,
    capabilities=WRITE,
)

STORAGE_FSTAB = define(
    name="storage.fstab",
    description=(
        "Replace the block between '# BEGIN aios-reconciler managed block' and '# END "
        "aios-reconciler managed block' in <root>/etc/fstab with `entries` (appended when "
        "missing; an empty list removes the block), leaving every other line untouched; "
        "written to a temporary file, fsynced and renamed. Reversible: previous content."
    ),
    input_schema=schema({"entries": array(FSTAB_ENTRY, maxItems=512)}, ("entries",)),
    output_schema=schema(
        {"path": STR, "changed": BOOL, "entries": NON_NEGATIVE}, ("path", "changed", "entries")
    ),
    risk="medium",
    idempotent=True,
    reversible=True,
    timeout_ms=10_000,
    capabilities=WRITE,
)

STORAGE_DIR = define(
    name="storage.dir",
    description=(
        "A directory present (mkdir -p, then mode/owner/group when given; names resolve "
        "through the root's /etc/passwd and /etc/group) or absent (an empty one is removed; "
        "a non-empty one needs `force`). Reversible: mode/owner, a created directory removed "
        "again when still empty, a removed tree copied back (kept in the execution's backup)."
    ),
    input_schema=schema(
        {
            "path": ABS_PATH,
            "mode": MODE,
            "owner": USER_OR_ID,
            "group": USER_OR_ID,
            "state": STATE,
            "force": {"type": "boolean", "default": False},
        },
        ("path",),
    ),
    output_schema=schema(
        {
            "path": STR,
            "state": {"enum": ["present", "absent"]},
            "changed": BOOL,
            "mode": nullable(STR),
            "uid": nullable(INT),
            "gid": nullable(INT),
        },
        ("path", "state", "changed", "mode", "uid", "gid"),
    ),
    risk="medium",
    idempotent=True,
    reversible=True,
    timeout_ms=30_000,
    capabilities=WRITE,
)

STORAGE_SWAPFILE = define(
    name="storage.swapfile",
    description=(
        "A swap file present (allocated at `size`, mode 0600, mkswap, swapon with "
        "`priority`) or absent (swapoff, delete). swapon/swapoff are real only when root is "
        "'/'; under a sandbox they are a double recorded in the registry's state dir and "
        "reported with simulated=true, because swap is global. A file of another size is "
        "recreated. Reversible: the previous file (size, activation) is recreated."
    ),
    input_schema=schema(
        {
            "path": ABS_PATH,
            "size": SIZE,
            "state": STATE,
            "priority": {"type": "integer", "minimum": -1, "maximum": 32767},
        },
        ("path",),
    )
    | SIZE_UNLESS_ABSENT,
    output_schema=schema(
        {
            "path": STR,
            "state": {"enum": ["present", "absent"]},
            "changed": BOOL,
            "size": NON_NEGATIVE,
            "active": BOOL,
            "simulated": BOOL,
        },
        ("path", "state", "changed", "size", "active", "simulated"),
    ),
    risk="medium",
    idempotent=True,
    reversible=True,
    timeout_ms=300_000,
    capabilities=WRITE,
)

ALL: tuple[ToolSpec, ...] = (
    STORAGE_STATE,
    STORAGE_MKFS,
    STORAGE_MOUNT,
    STORAGE_UMOUNT,
    STORAGE_FSTAB,
    STORAGE_DIR,
    STORAGE_SWAPFILE,
)
