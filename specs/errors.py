"""The error the spec language raises: every problem in a set of documents.

Defined here, not in reconciler.errors, because specs/ imports nothing from
the engine; reconciler.errors re-exports it so callers see one error tree.
"""

from __future__ import annotations

from collections.abc import Sequence


class SpecError(ValueError):
    """One or more spec documents are invalid; retrying cannot help.

    `issues` holds every problem found, each formatted as
    `path:line:col: Kind/name: field.path: message`.
    """

    retryable = False

    def __init__(self, issues: Sequence[str]) -> None:
        self.issues = tuple(issues)
        head = self.issues[0] if self.issues else "invalid specs"
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(head + more)
        self.message = head + more
