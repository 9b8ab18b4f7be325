"""YAML text -> documents (plain Python values plus positions), with safety caps.

Called by specs.loader for every spec file. Parsing uses libyaml through
ruamel.yaml.clib's C parser (`_ruamel_yaml.CParser`) and builds the values
here from its events, so this module decides what YAML means for specs:

- scalars resolve by the YAML 1.2 core schema: `yes`/`no`/`on`/`off` are
  strings; `true`/`false`, null (`~`, `null`, empty), integers (`12`, `0o17`,
  `0x1f`) and floats (`1.5`, `.inf`) are not. Pitfall: an unquoted `0755` is
  the decimal integer 755, which is why file modes must be quoted strings;
- any explicit tag (`!!python/object`, `!foo`, even `!!str`) is an error;
- a duplicate key is an error at the second key, naming the first's line;
- merge keys (`<<`) and non-scalar keys are errors; integer or null keys are
  kept as such and the schema then says what it expected;
- anchors and aliases work, but aliases may expand to at most ALIAS_BUDGET
  nodes per document (values are shared, so a "billion laughs" document
  stops at the first alias over budget instead of exhausting memory);
- nesting deeper than MAX_DEPTH mappings/sequences is an error.

Syntax errors, nesting and alias-budget errors end the file (libyaml cannot
resume); documents before them are still returned. Other problems mark only
their document as broken. Every problem is an `Issue` with resource `yaml`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _ruamel_yaml import (  # type: ignore[import-not-found]  # C extension, no stubs
    AliasEvent,
    CParser,
    DocumentEndEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from specs.errors import Issue
from specs.positions import Entry

MAX_DEPTH = 64
ALIAS_BUDGET = 10_000
YAML = "yaml"  # the resource label of problems below the resource level

_CONSTANTS: dict[str, object] = {
    "": None,
    "~": None,
    **dict.fromkeys(("null", "Null", "NULL"), None),
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), float("-inf")),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), float("nan")),
}
_NUMBER_START = frozenset("0123456789+-.")
_DECIMAL = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_MAX_NUMBER_LENGTH = 64  # longer digit strings stay strings (no slow or failing int())


def resolve_plain(text: str) -> object:
    """The value of a plain (unquoted) scalar under the YAML 1.2 core schema."""
    if text in _CONSTANTS:
        return _CONSTANTS[text]
    if text[0] not in _NUMBER_START or len(text) > _MAX_NUMBER_LENGTH:
        return text
    if _DECIMAL.fullmatch(text):
        return int(text)
    if text.startswith("0o") and re.fullmatch(r"0o[0-7]+", text):
        return int(text[2:], 8)
    if text.startswith("0x") and re.fullmatch(r"0x[0-9a-fA-F]+", text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


@dataclass(slots=True)
class Document:
    """One YAML document: its value, its positions and where it starts."""

    index: int  # 0-based position in the file
    line: int  # where the document starts: its `---`, else its root node
    col: int
    value: object = None
    root: Entry = (1, 1, 1, 1, None)
    broken: bool = False  # has problems already reported; do not validate it


_SKIP = object()  # a key whose entry is not stored (reported as a problem)


class _Stop(Exception):
    """A problem after which the rest of the file cannot be read."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


def _show_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


Children = dict[object, Entry] | list[Entry] | None


class _Builder:
    """Builds the documents of one file from the parser's events."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self.get: Callable[[], Any] = CParser(text).get_event
        self.issues: list[Issue] = []
        self.anchors: dict[str, tuple[object, Children, int]] = {}
        self.open_anchors: set[str] = set()
        self.nodes = 0  # nodes of the current document, aliases expanded
        self.expanded = 0  # nodes that aliases added
        self.broken = False

    def issue(self, mark: Any, message: str) -> Issue:
        return Issue(self.path, mark.line + 1, mark.column + 1, YAML, "", message)

    def problem(self, mark: Any, message: str) -> None:
        self.issues.append(self.issue(mark, message))
        self.broken = True

    def documents(self, docs: list[Document]) -> None:
        get = self.get
        get()  # StreamStartEvent
        while not isinstance(event := get(), StreamEndEvent):
            self.anchors.clear()
            self.broken, self.nodes, self.expanded = False, 0, 0
            node = get()
            value, children = self.node(node, 0)
            mark = event.start_mark if event.explicit else node.start_mark
            line, col = node.start_mark.line + 1, node.start_mark.column + 1
            docs.append(
                Document(
                    index=len(docs),
                    line=mark.line + 1,
                    col=mark.column + 1,
                    value=value,
                    root=(line, col, line, col, children),
                    broken=self.broken,
                )
            )
            if not isinstance(get(), DocumentEndEvent):
                raise AssertionError("libyaml: expected the end of the document")

    def node(self, event: Any, depth: int) -> tuple[object, Children]:
        self.nodes += 1
        kind = event.__class__
        if kind is ScalarEvent:
            if event.tag is not None:
                self.tagged(event)
            value = event.value if event.style else resolve_plain(event.value)
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, None, 1)
            return value, None
        if kind is AliasEvent:
            return self.alias(event)
        if depth >= MAX_DEPTH:
            raise _Stop(self.issue(event.start_mark, f"nesting deeper than {MAX_DEPTH} levels"))
        if event.tag is not None:
            self.tagged(event)
        anchor = event.anchor
        if anchor is not None:
            self.open_anchors.add(anchor)
        before = self.nodes
        built: tuple[object, Children]
        if kind is MappingStartEvent:
            built = self.mapping(depth + 1)
        elif kind is SequenceStartEvent:
            built = self.sequence(depth + 1)
        else:
            raise AssertionError(f"libyaml: unexpected event {kind.__name__}")
        if anchor is not None:
            self.open_anchors.discard(anchor)
            self.anchors[anchor] = (built[0], built[1], self.nodes - before + 1)
        return built

    def tagged(self, event: Any) -> None:
        tag = _show_tag(event.tag)
        self.problem(
            event.start_mark, f"explicit tag {tag!r} is not allowed; specs use plain values"
        )

    def alias(self, event: Any) -> tuple[object, Children]:
        name, mark = event.anchor, event.start_mark
        if name in self.open_anchors:
            self.problem(mark, f"alias '*{name}' refers to a node that contains it")
            return None, None
        if name not in self.anchors:
            self.problem(mark, f"undefined alias '*{name}'")
            return None, None
        value, children, size = self.anchors[name]
        self.expanded += size
        self.nodes += size - 1
        if self.expanded > ALIAS_BUDGET:
            raise _Stop(self.issue(mark, f"aliases expand to more than {ALIAS_BUDGET} nodes"))
        return value, children

    def key(self, event: Any, depth: int) -> object:
        """A mapping key that is not a plain untagged scalar (rare): check it."""
        key, _ = self.node(event, depth)
        if event.__class__ not in (ScalarEvent, AliasEvent) or isinstance(key, dict | list):
            self.problem(event.start_mark, "mapping keys must be scalars (plain strings)")
            return _SKIP
        return key

    def mapping(self, depth: int) -> tuple[dict[object, object], dict[object, Entry]]:
        # The hot loop: untagged, unanchored scalars are handled inline.
        get, node = self.get, self.node
        value: dict[object, object] = {}
        entries: dict[object, Entry] = {}
        while (event := get()).__class__ is not MappingEndEvent:
            key_mark = event.start_mark
            if event.__class__ is ScalarEvent and event.tag is None and event.anchor is None:
                self.nodes += 1
                key = event.value if event.style else resolve_plain(event.value)
                if key == "<<" and not event.style:
                    self.problem(key_mark, "merge keys ('<<') are not supported; write keys out")
                    key = _SKIP
            else:
                key = self.key(event, depth)
            event = get()
            children: Children = None
            if event.__class__ is ScalarEvent and event.tag is None and event.anchor is None:
                self.nodes += 1
                item = event.value if event.style else resolve_plain(event.value)
            else:
                item, children = node(event, depth)
            if key in entries:
                first = entries[key][0]
                self.problem(key_mark, f"duplicate key {key!r} (first at line {first})")
            elif key is not _SKIP:
                mark = event.start_mark
                value[key] = item
                entries[key] = (
                    key_mark.line + 1,
                    key_mark.column + 1,
                    mark.line + 1,
                    mark.column + 1,
                    children,
                )
        return value, entries

    def sequence(self, depth: int) -> tuple[list[object], list[Entry]]:
        get, node = self.get, self.node
        value: list[object] = []
        entries: list[Entry] = []
        while (event := get()).__class__ is not SequenceEndEvent:
            children: Children = None
            if event.__class__ is ScalarEvent and event.tag is None and event.anchor is None:
                self.nodes += 1
                item = event.value if event.style else resolve_plain(event.value)
            else:
                item, children = node(event, depth)
            mark = event.start_mark
            line, col = mark.line + 1, mark.column + 1
            value.append(item)
            entries.append((line, col, line, col, children))
        return value, entries


def _char_at(text: str, line: int, col: int) -> str:
    lines = text.split("\n", line)
    row = lines[line - 1] if 0 < line <= len(lines) else ""
    return row[col - 1] if 0 < col <= len(row) else ""


def _syntax_issue(exc: YAMLError, text: str, path: str) -> Issue:
    if not isinstance(exc, MarkedYAMLError) or exc.problem_mark is None:
        return Issue(path, 1, 1, YAML, "", str(exc).replace("\n", " "))
    mark = exc.problem_mark
    line, col = mark.line + 1, mark.column + 1
    problem = exc.problem or "syntax error"
    if "cannot start any token" in problem and _char_at(text, line, col) == "\t":
        problem = "found a tab character where a token should start; indent with spaces, not tabs"
    context = exc.context_mark
    if (
        exc.context
        and context is not None
        and (context.line, context.column)
        != (
            mark.line,
            mark.column,
        )
    ):
        problem += (
            f" ({exc.context} that starts at line {context.line + 1}, column {context.column + 1})"
        )
    return Issue(path, line, col, YAML, "", problem)


def parse(text: str, path: str) -> tuple[list[Document], list[Issue]]:
    """The documents of `text` (a whole file) and the problems found reading them."""
    builder = _Builder(text, path)
    docs: list[Document] = []
    try:
        builder.documents(docs)
    except _Stop as stop:
        builder.issues.append(stop.issue)
    except YAMLError as exc:
        builder.issues.append(_syntax_issue(exc, text, path))
    return docs, builder.issues
