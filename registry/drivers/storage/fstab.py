"""/etc/fstab: parse entries, render them, and rewrite the aios-reconciler managed block.

Pure text functions (unit-tested in tests/unit/test_fstab_blockdev.py). Fields are
whitespace-separated with fstab's octal escapes (`\\040` for a space);
options 'defaults' reads back as an empty list, and an empty list is written
as 'defaults'. Comment and blank lines are never entries. Used by
registry.handlers.storage (storage.state, storage.fstab).
"""

from __future__ import annotations

import re

from contract.tooldef import JSON
from registry.core.managedblock import Markers, replace_block, split_block

MARKERS = Markers("# BEGIN aios-reconciler managed block", "# END aios-reconciler managed block")
_ESCAPE = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def escape(field: str) -> str:
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in field)


def parse_line(line: str) -> JSON | None:
    """One fstab line -> entry, or None for comments, blanks and malformed lines."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    fields = text.split()
    if len(fields) < 3:
        return None
    options = unescape(fields[3]).split(",") if len(fields) > 3 else []
    numbers = [int(f) if f.isdigit() else 0 for f in fields[4:6]]
    numbers += [0] * (2 - len(numbers))
    return {
        "source": unescape(fields[0]),
        "target": unescape(fields[1]),
        "type": unescape(fields[2]),
        "options": [] if options == ["defaults"] else options,
        "dump": numbers[0],
        "pass": numbers[1],
    }


def render_entry(entry: JSON) -> str:
    options = ",".join(entry.get("options") or ()) or "defaults"
    return " ".join(
        [
            escape(entry["source"]),
            escape(entry["target"]),
            escape(entry["type"]),
            escape(options),
            str(entry.get("dump", 0)),
            str(entry.get("pass", 0)),
        ]
    )


def parse(text: str) -> JSON:
    """{'managed': entries in the block, 'other': every other entry}."""
    before, body, after = split_block(text, MARKERS)
    managed = [e for e in map(parse_line, body) if e is not None]
    other = [e for e in map(parse_line, before + after) if e is not None]
    return {"managed": managed, "other": other}


def with_block(text: str, entries: list[JSON]) -> str:
    """`text` with the managed block holding exactly `entries` (normalised)."""
    return replace_block(text, MARKERS, [render_entry(e) for e in entries])
