"""Load spec files into one validated SpecSet, or report every problem at once.

The public entry points, used by `aios validate`, the engine and the daemon:

    load_paths(paths)     files and directory trees, as given on a command line
    load_documents(docs)  (path label, raw bytes) pairs, e.g. from the Apply RPC
    read_sources(paths)   only read what load_paths would (the CLI sends it to a daemon)

Both take `kinds`, the kind table documents are validated against
(specs.kinds.KindTable): the spec language's own by default; the engine
commands pass the table of the domains they run (specs.domains.Domains.kinds).

Both return a `SpecSet` or raise `SpecError` carrying ALL issues found (every
file, every document, then the checks across resources), sorted by path,
line and column. Each issue formats as

    path:line:col: Kind/name: field.path: message

with these fallback forms when a part is unknown:

    path:line:col: Kind/?: metadata.name: ...  the document has no usable name
    path:line:col: ?/name: kind: ...           the kind is missing or unknown
    path:line:col: yaml: message               below the resource level: syntax,
                                               encoding, tags, duplicate keys,
                                               aliases, nesting, empty or
                                               non-mapping documents
    path: message                              the whole file: missing, unreadable,
                                               larger than 4 MiB

Paths are reported as given (relative stays relative; files found in a
directory are `DIR/relative/path`). Lines and columns are 1-based, columns
count characters.

Reading a file: stat first and refuse anything over MAX_FILE_BYTES before
reading it; NUL bytes mean binary data; the text must be strict UTF-8 and free
of control characters (each reported at its line and column); then
specs.parsing turns it into documents (C parser, safety caps), specs.validation
validates each document, and specs.crosscheck looks across resources.

Directories are walked recursively in sorted order for *.yaml and *.yml,
skipping names that start with '.' and editor leftovers (`x~`, `.x.swp`,
`x.swo`, `x.tmp`, `#x#`); symlinked directories are followed once (a symlink
loop cannot hang the walk). Files named explicitly are read whatever their
suffix.
"""

from __future__ import annotations

import gc
import os
import re
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from specs.errors import Issue, SpecError
from specs.kinds import DEFAULT_KINDS, KindTable
from specs.parsing import YAML, parse
from specs.specset import Origin, SpecSet

if TYPE_CHECKING:
    from specs.crosscheck import Placed

MAX_FILE_BYTES = 4 * 1024 * 1024
SUFFIXES = (".yaml", ".yml")
_EDITOR_LEFTOVERS = ("~", ".swp", ".swo", ".tmp")
_BOM = b"\xef\xbb\xbf"
# YAML 1.2 c-printable, minus nothing: tab, LF, CR, printable ASCII, NEL and the rest
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

__all__ = [
    "MAX_FILE_BYTES",
    "Issue",
    "Origin",
    "SpecError",
    "SpecSet",
    "load_documents",
    "load_paths",
    "read_sources",
    "skipped_name",
]


def load_paths(paths: Sequence[str | Path], kinds: KindTable = DEFAULT_KINDS) -> SpecSet:
    """Load files and directory trees into one SpecSet, or raise SpecError."""
    issues: list[Issue] = []
    sources: list[tuple[str, bytes]] = []
    for given in paths:
        for label, path in _expand(given, issues):
            data = _read(label, path, issues)
            if data is not None:
                sources.append((label, data))
    with _gc_paused():
        return _load(sources, issues, kinds)


def read_sources(paths: Sequence[str | Path]) -> list[tuple[str, bytes]]:
    """The (label, raw bytes) of every spec file `paths` name, read as load_paths reads
    them (what the CLI sends a daemon); SpecError when one cannot be read."""
    issues: list[Issue] = []
    sources: list[tuple[str, bytes]] = []
    for given in paths:
        for label, path in _expand(given, issues):
            data = _read(label, path, issues)
            if data is not None:
                sources.append((label, data))
    if issues:
        raise SpecError(issues)
    return sources


def load_documents(
    docs: Sequence[tuple[str, bytes]], kinds: KindTable = DEFAULT_KINDS
) -> SpecSet:
    """Load (path label, raw bytes) pairs into one SpecSet, or raise SpecError."""
    issues: list[Issue] = []
    sources = []
    for label, data in docs:
        if len(data) > MAX_FILE_BYTES:
            issues.append(_too_large(label, len(data)))
        else:
            sources.append((label, data))
    with _gc_paused():
        return _load(sources, issues, kinds)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while loading.

    Loading builds hundreds of thousands of small, acyclic objects (values,
    position tuples, models); with the collector on, its full collections
    over that growing heap take ~40% of the time. Reference counting still
    frees everything; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def skipped_name(name: str) -> bool:
    """Whether a directory walk skips this file or directory name."""
    return (
        name.startswith(".")
        or name.endswith(_EDITOR_LEFTOVERS)
        or (len(name) > 1 and name.startswith("#") and name.endswith("#"))
    )


# --- files -------------------------------------------------------------------


def _expand(given: str | Path, issues: list[Issue]) -> Iterator[tuple[str, Path]]:
    """(label, path) of every spec file named by `given`, a file or a directory."""
    label = str(given)
    path = Path(given)
    try:
        info = path.stat()
    except FileNotFoundError:
        kind = "broken symbolic link" if path.is_symlink() else "no such file or directory"
        issues.append(Issue(label, message=kind))
        return
    except OSError as exc:
        issues.append(Issue(label, message=f"cannot read: {exc.strerror or exc}"))
        return
    if stat.S_ISDIR(info.st_mode):
        yield from _walk(path, issues)
    elif stat.S_ISREG(info.st_mode):
        yield label, path
    else:  # a FIFO or a device would block or never end
        issues.append(Issue(label, message="not a regular file or directory"))


def _walk(top: Path, issues: list[Issue]) -> Iterator[tuple[str, Path]]:
    """Spec files under `top`, depth first in sorted order, each directory once."""
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Path, Iterator[os.DirEntry[str]]]] = []

    def enter(label: Path, directory: str) -> None:
        try:
            info = Path(directory).stat()
            if (info.st_dev, info.st_ino) in seen:
                return
            seen.add((info.st_dev, info.st_ino))
            with os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            issues.append(Issue(str(label), message=f"cannot read: {exc.strerror or exc}"))
            return
        stack.append((label, iter(entries)))

    enter(top, str(top))
    while stack:
        label, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
        elif skipped_name(entry.name):
            continue
        elif entry.is_dir():  # follows symlinks; `seen` stops loops
            enter(label / entry.name, entry.path)
        elif entry.name.endswith(SUFFIXES):
            if entry.is_file():
                yield str(label / entry.name), Path(entry.path)
            elif entry.is_symlink() and not Path(entry.path).exists():
                issues.append(Issue(str(label / entry.name), message="broken symbolic link"))


def _too_large(label: str, size: int) -> Issue:
    message = f"file is {size} bytes; spec files are limited to 4 MiB ({MAX_FILE_BYTES} bytes)"
    return Issue(label, message=message)


def _read(label: str, path: Path, issues: list[Issue]) -> bytes | None:
    """The file's bytes, or None (with an issue) if it is not a readable spec file."""
    try:
        with path.open("rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                issues.append(Issue(label, message="not a regular file"))
                return None
            if info.st_size > MAX_FILE_BYTES:
                issues.append(_too_large(label, info.st_size))
                return None
            data = fh.read(MAX_FILE_BYTES + 1)  # the file may grow after fstat
    except OSError as exc:
        issues.append(Issue(label, message=f"cannot read: {exc.strerror or exc}"))
        return None
    if len(data) > MAX_FILE_BYTES:
        issues.append(_too_large(label, len(data)))
        return None
    return data


# --- text --------------------------------------------------------------------


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and character column of byte `offset`."""
    start = data.rfind(b"\n", 0, offset) + 1
    if start == 0 and data.startswith(_BOM):
        start = len(_BOM)  # editors do not show a byte-order mark; neither does libyaml
    column = len(data[start:offset].decode("utf-8", errors="replace"))
    return data.count(b"\n", 0, offset) + 1, column + 1


def decode(label: str, data: bytes) -> str | Issue:
    """The text of a spec file, or the Issue that says why it is not text."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line, col = _position(data, nul)
        message = "binary data (NUL byte); spec files are UTF-8 text"
        return Issue(label, line, col, YAML, "", message)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position(data, exc.start)
        message = f"invalid UTF-8 (byte 0x{data[exc.start]:02x}); spec files are UTF-8 text"
        return Issue(label, line, col, YAML, "", message)
    text = text.removeprefix("\ufeff")
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        offset = bad.start()
        line = text.count("\n", 0, offset) + 1
        col = offset - text.rfind("\n", 0, offset)
        message = f"control character U+{ord(bad.group()):04X} is not allowed"
        return Issue(label, line, col, YAML, "", message)
    return text


# --- documents -> SpecSet ----------------------------------------------------


def _load(sources: Sequence[tuple[str, bytes]], issues: list[Issue], kinds: KindTable) -> SpecSet:
    from specs.crosscheck import Placed, check
    from specs.validation import resource_label, validate_document

    placed: list[Placed] = []
    failed: set[str] = set()
    for label, data in sources:
        text = decode(label, data)
        if isinstance(text, Issue):
            issues.append(text)
            continue
        docs, problems = parse(text, label)
        issues += problems
        if not docs and not problems:
            issues.append(Issue(label, 1, 1, YAML, "", "no documents"))
        for doc in docs:
            if doc.broken:
                continue
            resource, doc_issues = validate_document(doc, label, kinds)
            if resource is None:
                issues += doc_issues
                if isinstance(doc.value, dict):
                    failed.add(resource_label(doc.value, kinds))
            else:
                placed.append(Placed(resource, label, doc.root))
    issues += check(placed, known=failed)
    if issues:
        issues.sort(key=Issue.sort_key)
        raise SpecError(issues)
    return _specset(placed)


def _specset(placed: Sequence[Placed]) -> SpecSet:
    places = {item.resource.key: (item.path, item.root) for item in placed}
    resources = [item.resource for item in placed]
    return SpecSet.from_resources(resources, places=places)
