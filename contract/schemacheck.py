"""JSON Schema validators whose `pattern` means the whole string, trailing newline included.

jsonschema applies `pattern` with `re.search`, and in Python a final `$` also
matches just before a trailing "\n": `^eth0$` accepts "eth0\n". Every pattern
in our catalogues is written as a whole-string check, and a value with a
newline must never slip into a command line, a batch line or a config file, so
`validator(schema)` returns a Draft 2020-12 validator whose `pattern` keyword
reads a final unescaped `$` as end of text (`\\Z`). Patterns that end otherwise
keep their search semantics. Used by registry.server.pipeline (every Execute) and
reconciler.engine.verify (the plan gate), so both layers judge alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema import validators


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    body = pattern
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1] + r"\Z"
    return re.compile(body)


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


Validator: Any = validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"pattern": _pattern}
)


def validator(schema: Mapping[str, Any]) -> Any:
    """A validator for `schema` (draft 2020-12, whole-string patterns)."""
    return Validator(schema)
