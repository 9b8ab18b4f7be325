"""Allow-lists of mkfs arguments and mount options per filesystem type: the registry's copy.

The last line of defence for storage.mkfs and storage.mount (LLM output and
aiOS agents call them without our spec loader): `mkfs_problem` refuses a
positional argument (mkfs would format it as another device: a host file, or
a /dev disk), a flag outside the type's table (`mke2fs -d DIR`, `mkfs.xfs -p
FILE`, `mkfs.btrfs --rootdir`, `-l`/`-z`/`-J device=` files, ...) and a value
its pattern does not match; `mount_option_problem` refuses an option outside
the type's table, a value holding a comma (mount(8) joins the list with
commas: `lowerdir=/a,upperdir=/HOST` would be two options, one unchecked), and
every path-valued key the registry does not map (`lowerdir+=`, `datadir+=`,
`journal_path=`, `logdev=`, `rtdev=`, `device=`, `loop=`, `offset=`,
`context=`, `x-*`, ...). `map_paths` maps the keys it does allow (overlay's
lowerdir/upperdir/workdir, marked PATH/PATHS) under the root with `ctx.path`.
`mkfs_item_schema` / `mount_item_schema` turn the tables into JSON Schema
for the tool definitions, so most refusals already come back as `Invalid
input: $.options[i]: ...`.

The tables and checks are the spec validator's own (specs/fsoptions.py,
imported, as registry.drivers.net.commands, registry.drivers.nft.ruleset and
registry.drivers.net.system import the
network and firewall value checks): one allow-list, judged alike at both
layers, until the architecture issue's contract package takes them. Used by
contract.catalogue.storage (schemas), registry.handlers.storage_mount and
registry.drivers.storage.mounting (handlers).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from contract.tooldef import JSON
from contract.vocab.fsoptions import (
    CHARSET,
    DISK_TYPES,
    LABEL_FLAGS,
    MARKERS,
    MKFS,
    MOUNT_BY_TYPE,
    MOUNT_COMMON,
    PATH,
    PATHS,
    charset_problem,
    mkfs_problem,
    mount_option_problem,
    mount_table,
)

__all__ = [
    "CHARSET",
    "DISK_TYPES",
    "LABEL_FLAGS",
    "MARKERS",
    "MKFS",
    "MOUNT_BY_TYPE",
    "MOUNT_COMMON",
    "PATH",
    "PATHS",
    "charset_problem",
    "map_paths",
    "mkfs_item_schema",
    "mkfs_problem",
    "mount_item_schema",
    "mount_option_problem",
    "mount_table",
    "path_keys",
]


def path_keys(kind: str) -> dict[str, str]:
    """`key=` -> PATH or PATHS: the options of `kind` whose values are mapped under the root."""
    return {k: v for k, v in mount_table(kind).items() if v in MARKERS}


def map_paths(kind: str, options: Sequence[str], mapper: Callable[[str], Path | str]) -> list[str]:
    """`options` with every path-valued key's value(s) mapped by `mapper`: ctx.path for
    what mount(8) gets, or back to the spec's form for what findmnt showed."""
    keys = path_keys(kind)
    out = []
    for option in options:
        key, sep, value = option.partition("=")
        if sep and f"{key}=" in keys:
            value = ":".join(str(mapper(v)) for v in value.split(":"))
            out.append(f"{key}={value}")
        else:
            out.append(option)
    return out


# --- JSON Schema -----------------------------------------------------------------


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
