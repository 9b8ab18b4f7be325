"""Mount options' path mapping: what only the registry does with the mount allow-lists.

The allow-lists and their checks (mkfs_problem, mount_option_problem, the tables)
are contract.vocab.fsoptions, one for the spec validator and the registry, which
the storage handlers and drivers import from there. Here: `map_paths` maps the
keys the allow-list marks PATH/PATHS (overlay's lowerdir/upperdir/workdir) under
the root with `ctx.path` (for what mount(8) gets), or back to the spec's form (for
what findmnt showed); `path_keys` names them. Every other path-valued key is refused
by the allow-list. Used by registry.drivers.storage.mounting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from contract.vocab.fsoptions import MARKERS, mount_table


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
