"""Where every key and value of a parsed YAML document is: loc -> (line, col).

specs.parsing records, while it builds a document's Python value, a parallel
tree of positions taken from the parser's marks: for every node an `Entry`
`(key_line, key_col, line, col, children)`, where `children` is a dict (a
mapping: key -> Entry), a list (a sequence: index -> Entry) or None (a
scalar). For sequence items and the document root the key position is the
value position. Lines and columns are 1-based.

`locate` answers "where is this field" for a loc such as
`("spec", "links", 0, "name")` (YAML key names, list indexes): a scalar or a
flow collection on its key's line (`[a, b]`) is reported at its value; a
block mapping or list under a key is reported at its key (the line that
introduces it); a loc that leaves the document (a missing field) is reported
at the deepest node it reaches, the mapping the field is missing from.
`field_path` spells a loc for messages: `spec.links[0].addresses[1]`.
Used by the loader for validation and conflict errors and by SpecSet.locate
for runtime errors.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import TypeAlias

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")

# (key_line, key_col, line, col, children)
Entry: TypeAlias = tuple[int, int, int, int, "dict[object, Entry] | list[Entry] | None"]


def _step(entry: Entry, part: object) -> tuple[Entry, bool] | None:
    """The child entry at `part` and whether it was reached through a mapping key."""
    children = entry[4]
    if isinstance(children, dict):
        if isinstance(part, Hashable) and part in children:
            return children[part], True
        return None
    if (
        isinstance(children, list)
        and isinstance(part, int)
        and not isinstance(part, bool)
        and -len(children) <= part < len(children)
    ):
        return children[part], False
    return None


def walk(root: Entry, loc: Sequence[object]) -> tuple[Entry, bool, int]:
    """Follow `loc` as far as the document goes.

    Returns the deepest entry reached, whether it was reached through a
    mapping key, and how many parts of `loc` were consumed.
    """
    entry, via_key, used = root, False, 0
    for part in loc:
        found = _step(entry, part)
        if found is None:
            break
        entry, via_key = found
        used += 1
    return entry, via_key, used


def locate(root: Entry, loc: Sequence[object], *, key: bool = False) -> tuple[int, int]:
    """(line, col) of the field at `loc`; with `key=True`, of its mapping key."""
    entry, via_key, _ = walk(root, loc)
    if key or (via_key and entry[4] is not None and entry[2] != entry[0]):
        return entry[0], entry[1]
    return entry[2], entry[3]


def field_path(loc: tuple[object, ...]) -> str:
    """`spec.links[0].addresses[1]`; keys that are not identifiers as `['a.b']`."""
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _IDENT.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out
