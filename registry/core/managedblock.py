"""A block of lines owned by aios-reconciler inside a file others own too.

The block sits between a BEGIN and an END marker line; `replace_block` swaps
its body and leaves every other line byte-for-byte alone (appending the block
when it is missing, dropping it when the new body is empty). Pure text in,
text out. Used by registry.drivers.storage.fstab (/etc/fstab) and registry.drivers.pkg.apk
(/etc/apk/repositories).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Markers:
    begin: str
    end: str


def split_block(text: str, markers: Markers) -> tuple[list[str], list[str], list[str]]:
    """(lines before, block body, lines after); body is empty when there is no block.

    A BEGIN without an END is an error: guessing where the block ends could
    delete the operator's lines.
    """
    lines = text.splitlines(keepends=True)
    stripped = [line.rstrip("\n") for line in lines]
    if markers.begin not in stripped:
        return lines, [], []
    start = stripped.index(markers.begin)
    try:
        stop = stripped.index(markers.end, start + 1)
    except ValueError:
        raise ValueError(f"'{markers.begin}' has no matching '{markers.end}'") from None
    return lines[:start], lines[start + 1 : stop], lines[stop + 1 :]


def replace_block(text: str, markers: Markers, body: list[str]) -> str:
    """`text` with the managed block's body replaced by `body` (lines without newlines)."""
    before, _old, after = split_block(text, markers)
    if before and not before[-1].endswith("\n"):
        before[-1] += "\n"
    if not body:
        return "".join(before + after)
    block = [markers.begin + "\n", *(line + "\n" for line in body), markers.end + "\n"]
    if not after:
        return "".join(before + block)
    return "".join(before + block + after)
