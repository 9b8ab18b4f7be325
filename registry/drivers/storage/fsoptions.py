"""Mount options' path mapping: the registry's side of the mkfs/mount allow-lists.

The last line of defence for storage.mkfs and storage.mount (LLM output and
aiOS agents call them without our spec loader) is the allow-list of
contract.vocab.fsoptions — one table and one set of checks for the spec
validator and the registry, re-exported here for the storage handlers and
drivers: `mkfs_problem` refuses a positional argument (mkfs would format it as
another device: a host file, or a /dev disk), a flag outside the type's table
(`mke2fs -d DIR`, `mkfs.xfs -p FILE`, `mkfs.btrfs --rootdir`, `-l`/`-z`/`-J
device=` files, ...) and a value its pattern does not match;
`mount_option_problem` refuses an option outside the type's table, a value
holding a comma (mount(8) joins the list with commas: `lowerdir=/a,upperdir=/HOST`
would be two options, one unchecked), and every path-valued key the registry
does not map (`lowerdir+=`, `datadir+=`, `journal_path=`, `logdev=`, `rtdev=`,
`device=`, `loop=`, `offset=`, `context=`, `x-*`, ...).

What lives here is what only the registry does: `map_paths` maps the keys it
does allow (overlay's lowerdir/upperdir/workdir, marked PATH/PATHS) under the
root with `ctx.path`. The JSON Schema form of the tables (the tool
definitions' `options` items) is contract.catalogue.storage's
`mkfs_item_schema` / `mount_item_schema`. Used by registry.handlers.storage_mount
and registry.drivers.storage.mounting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

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
    "mkfs_problem",
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
