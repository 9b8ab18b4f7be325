"""JSON Schema fragments (draft 2020-12) and helpers shared by the tool definitions.

Plain dictionaries, copied into each ToolSpec's input/output schema, and the
generic helpers every catalogue module uses: `document` (a schema as a
standalone document tagged with the dialect), `schema` (a closed, tagged
object schema), `anchored` / `END` (whole-string patterns), `nullable`,
`array`, and `size_bytes` (contract.vocab.sizes'). The value patterns
mirror the spec language's value types (specs.types) so a plan that passed
spec validation also passes tool-schema validation, and they are strict
enough that a hostile string cannot become an option or a path escape (`..`
components, NUL, newlines and leading '-' are refused). Net-only value types
(interface names, addresses, routes) are in contract.catalogue.netschema. Used
by every module of contract.catalogue, and by controllers (size_bytes) and the
registry's storage/model handlers.
"""

from __future__ import annotations

from typing import Any

from contract.tooldef import JSON, obj_schema
from contract.vocab.sizes import SIZE_PATTERN
from contract.vocab.sizes import size_bytes as size_bytes

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# The end of the string. A pattern's final `$` also matches before a trailing
# newline under the `re.search` jsonschema uses ('curl\n' matched '^[a-z]+$'),
# so every pattern here ends with END instead (ECMA-262 reads it the same way).
# `anchored` says the same in the form the net, firewall and pkg schemas use:
# `$(?!\n)` is end of text in Python and ECMA-262 alike. Two spellings of one
# rule, both kept because the advertised schemas must stay byte-identical.
END = r"(?![\s\S])"


def anchored(body: str) -> str:
    """`body` as a whole-string JSON Schema pattern (see END)."""
    return rf"^(?:{body})$(?!\n)"


def document(schema: JSON) -> JSON:
    """A schema as a standalone document (tagged with the 2020-12 dialect)."""
    return {"$schema": DIALECT, **schema}


STR: JSON = {"type": "string"}
BOOL: JSON = {"type": "boolean"}
INT: JSON = {"type": "integer"}
NON_NEGATIVE: JSON = {"type": "integer", "minimum": 0}
TRUE: JSON = {"const": True}

# An absolute, normalised target path: no '..' or '.' components, no '//',
# no NUL/newline. Mapped under the registry's root by the tool.
ABS_PATH: JSON = {
    "type": "string",
    "pattern": r"^(?!.*(^|/)\.\.?(/|$))(?!.*//)/[^\u0000\n]*" + END,
    "maxLength": 4095,
    "description": "Absolute target path (mapped under the registry's --root).",
}
PATHS: JSON = {"type": "array", "items": ABS_PATH, "maxItems": 1000, "uniqueItems": True}

SHA256: JSON = {"type": "string", "pattern": "^[0-9a-f]{64}" + END, "description": "Lowercase hex."}

# Debian/Alpine package names (specs.types.PackageName) and versions.
PKG_NAME: JSON = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9+.\-]{0,127}" + END}
PKG_NAMES: JSON = {"type": "array", "items": PKG_NAME, "maxItems": 2000, "uniqueItems": True}
PKG_VERSION: JSON = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9.+~:_\-]{0,127}" + END,
    "description": "An exact version as the backend spells it (e.g. '1.2-1', '2:1.0~rc1').",
}

# A size like '512M' (binary multiples) or a byte count (contract.vocab.sizes, whose
# size_bytes reads it: re-exported here for the effects and handlers).
SIZE: JSON = {
    "anyOf": [
        {"type": "string", "pattern": "^" + SIZE_PATTERN + END},
        {"type": "integer", "minimum": 1},
    ],
    "description": "Bytes, or a number with a K/M/G/T suffix (binary multiples).",
}

URL: JSON = {
    "type": "string",
    "pattern": r"^(https?://[^\s/?#]+[^\s]*|file:/[^\s]*)" + END,
    "maxLength": 4096,
}

# One mount option (an fstab entry's, or a storage.mount's before its type's
# allow-list, contract.vocab.fsoptions): no whitespace, no leading '-', and no comma:
# options are joined with commas, so 'a,upperdir=/HOST' would be two options,
# one of them never checked (and an option that is not one item drifts for
# ever).
OPTION: JSON = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.=:/+@%\-]{0,255}" + END,
    "not": {"pattern": r"[,\s]"},
}
OPTIONS: JSON = {"type": "array", "items": OPTION, "maxItems": 64}

USER_OR_ID: JSON = {"type": "string", "pattern": r"^([a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})" + END}
MODE: JSON = {
    "type": "string",
    "pattern": r"^0?[0-7]{3,4}" + END,
    "description": "Octal, e.g. '0755'.",
}
STATE: JSON = {"enum": ["present", "absent"], "default": "present"}


def nullable(schema: JSON) -> JSON:
    """`schema` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: JSON, **extra: Any) -> JSON:
    return {"type": "array", "items": items, **extra}


def schema(
    properties: dict[str, Any],
    required: tuple[str, ...] | list[str] = (),
    *,
    description: str = "",
) -> JSON:
    """A top-level tool schema: a closed object tagged with the 2020-12 dialect."""
    out = document(obj_schema(properties, required))
    if description:
        out["description"] = description
    return out
