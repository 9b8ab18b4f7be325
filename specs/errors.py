"""The error the spec language raises: every problem in a set of documents.

`Issue` is one problem, with where it is (path, 1-based line and column) and
what it is about (the resource as Kind/name, the field path in YAML names);
`SpecError` carries all of them. The loader (specs.loader) creates both; the
CLI prints `Issue.format()` lines or `Issue.to_dict()` objects; the engine and
the daemon's Apply RPC report `SpecError.issues`.

Defined here, not in reconciler.sdk.errors, because specs/ imports nothing from
the engine; reconciler.sdk.errors re-exports SpecError so callers see one error tree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(text: str) -> str:
    """Make a part of an error line one printable line (spec strings are hostile)."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in the spec documents.

    `line`/`column` are 1-based; 0 when the problem has no position (a missing
    file, a file refused for its size). `resource` is `Kind/name` (`Kind/?`,
    `?/name` when one half is unknown), `yaml` for problems found before the
    document is a resource (syntax, encoding, tags, duplicate keys), or empty
    for problems with a whole file. `field` is the path inside the document,
    e.g. `spec.links[0].addresses[1]`, or empty.
    """

    path: str
    line: int = 0
    column: int = 0
    resource: str = ""
    field: str = ""
    message: str = ""

    def format(self) -> str:
        """`path:line:col: Kind/name: field.path: message`, empty parts left out."""
        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        parts = (where, self.resource, self.field, self.message)
        return ": ".join(_escape(part) for part in parts if part)

    def to_dict(self) -> dict[str, str | int]:
        return asdict(self)

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.message)


class SpecError(ValueError):
    """One or more spec documents are invalid; retrying cannot help.

    `details` holds every problem found as an `Issue`; `issues` the same,
    each formatted as `path:line:col: Kind/name: field.path: message`.
    Plain strings are accepted too (they become issues with only a message).
    """

    retryable = False

    def __init__(self, issues: Sequence[Issue | str]) -> None:
        self.details = tuple(
            item if isinstance(item, Issue) else Issue(path="", message=item) for item in issues
        )
        self.issues = tuple(item.format() for item in self.details)
        head = self.issues[0] if self.issues else "invalid specs"
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(head + more)
        self.message = head + more
