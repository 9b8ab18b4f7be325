"""Sizes with binary suffixes ('512M'), written once for the spec language and the tools.

Two spellings exist and both come from here:
- a declared size (`SIZE_PATTERN`, `size_bytes`): what specs.types.Size takes
  and contract.catalogue.parts.SIZE advertises for image, swap and model
  sizes: a byte count or a number with an uppercase K, M, G or T suffix;
- the kernel's memparse suffixes in mount options (`MEMPARSE_SUFFIXES`:
  k, m, g, t, p, e in either case), which contract.vocab.fsoptions' tmpfs
  allow-list and its option normal form use.
Every multiple is binary (K = 1024), from the one `BINARY_MULTIPLES` table.
Digits are ASCII (Python's \\d would also take other scripts' digits, which
no tool reads). Plain `re`; used by specs.types, contract.catalogue.parts and
contract.vocab.fsoptions (and, through parts.size_bytes, by the storage and
model controllers' effects and the registry's storage and model handlers).
"""

from __future__ import annotations

import re
from typing import Final

# Suffix -> bytes, lowercase: k = 2**10 ... e = 2**60.
BINARY_MULTIPLES: Final[dict[str, int]] = {
    unit: 1 << (10 * power) for power, unit in enumerate("kmgtpe", start=1)
}

# --- declared sizes ------------------------------------------------------------

SIZE_SUFFIXES: Final = "KMGT"
# What the tool schemas take: no leading zero, at most 16 digits.
SIZE_PATTERN: Final = rf"[1-9][0-9]{{0,15}}[{SIZE_SUFFIXES}]?"
_SIZE = re.compile(rf"([0-9]+)([{SIZE_SUFFIXES}]?)")  # used with fullmatch


def size_bytes(value: int | str) -> int:
    """Bytes of a size: an int as it is, or a string like '512M' (binary multiples).

    ValueError for a string that is not digits with an optional K, M, G or T suffix."""
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f"size {value!r} must be a number with an optional K, M, G or T suffix")
    digits, unit = match.groups()
    return int(digits) * (BINARY_MULTIPLES[unit.lower()] if unit else 1)


# --- the kernel's memparse (mount options) ---------------------------------------

# 'kKmMgGtTpPeE': the suffix class of tmpfs' size=, nr_blocks= and nr_inodes=.
MEMPARSE_SUFFIXES: Final = "".join(u + u.upper() for u in BINARY_MULTIPLES)
_MEMPARSE = re.compile(rf"([0-9]+)([{MEMPARSE_SUFFIXES}]?)")  # used with fullmatch


def memparse_bytes(value: str) -> int | None:
    """Bytes of a mount option size ('64M', '65536k', '1t', '2048'), or None if it is
    not one (a percentage of RAM such as '50%', or anything else)."""
    match = _MEMPARSE.fullmatch(value)
    if not match:
        return None
    digits, unit = match.groups()
    return int(digits) * (BINARY_MULTIPLES[unit.lower()] if unit else 1)
