"""One parsed document -> a validated resource, or issues with file:line:col.

Called by specs.loader for every document that parsed cleanly, with the
loader's kind table (specs.kinds.KindTable; default the spec language's own).
The document's `kind` and `apiVersion` are checked first (an unknown kind is
one error at the `kind` value naming the table's kinds, in its order); then
the kind's model validates it
with pydantic (by YAML name only: `context_length` is an unknown field, the
key is `contextLength`). Each pydantic error becomes an `Issue`:

- the field path is in YAML names, with the tags pydantic inserts for unions
  and validators (`int`, `function-after[...]`) dropped: `spec.links[0].mtu`;
- the position is that of the value, of the key for unknown fields and bad
  mapping keys, of the enclosing mapping for a missing field, and of the
  field a model validator names with `specs.types.FieldError`;
- messages say what was expected and what was found ("expected a string,
  got a number (1234)"), without pydantic's "Value error, " prefix, and
  unknown fields get a "did you mean" from the model's own field names.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from specs.base import API_VERSION, Resource
from specs.errors import Issue
from specs.kinds import DEFAULT_KINDS, KindTable
from specs.parsing import YAML, Document
from specs.positions import field_path, locate
from specs.types import FieldError

_NAME_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,62}")


def resource_label(value: dict[Any, Any], kinds: KindTable = DEFAULT_KINDS) -> str:
    """`Kind/name` as far as it is known: `?` stands in for a bad kind or name."""
    kind = value.get("kind")
    metadata = value.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind_part = kind if isinstance(kind, str) and kind in kinds else "?"
    name_part = name if isinstance(name, str) and _NAME_LABEL.fullmatch(name) else "?"
    return f"{kind_part}/{name_part}"


def describe(value: object) -> str:
    """What a YAML value is, for "expected X, got Y" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def validate_document(
    doc: Document, path: str, kinds: KindTable = DEFAULT_KINDS
) -> tuple[Resource | None, list[Issue]]:
    """The resource in `doc`, or the issues that keep it from being one."""
    value = doc.value
    if value is None:
        return None, [Issue(path, doc.line, doc.col, YAML, "", "empty document")]
    if not isinstance(value, dict):
        message = (
            "a spec document must be a mapping with apiVersion, kind, metadata and spec, "
            f"not {describe(value)}"
        )
        return None, [Issue(path, doc.root[2], doc.root[3], YAML, "", message)]
    label = resource_label(value, kinds)
    issues = _envelope_issues(doc, path, label, kinds)
    if issues:
        return None, issues
    model = kinds.model(value["kind"], Resource)
    try:
        return model.model_validate(value, by_alias=True, by_name=False), []
    except ValidationError as exc:
        return None, _issues(exc, doc, path, label, model)


def _envelope_issues(doc: Document, path: str, label: str, kinds: KindTable) -> list[Issue]:
    """Problems with kind and apiVersion that keep the kind's model from running.

    A missing apiVersion on a known kind is left to the model, which then
    reports it together with everything else.
    """
    value = doc.value
    assert isinstance(value, dict)
    issues = []
    kind = value.get("kind")
    known = isinstance(kind, str) and kind in kinds
    kind_list = ", ".join(kinds)
    root_line, root_col = locate(doc.root, ())
    if "kind" not in value:
        issues.append(Issue(path, root_line, root_col, label, "kind", "field required"))
    elif not known:
        message = f"kind must be one of {kind_list}; got {describe(kind)}"
        if isinstance(kind, str):
            close = difflib.get_close_matches(kind, kinds.names, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            message = f"unknown kind {kind!r}{hint}; kind must be one of {kind_list}"
        line, col = locate(doc.root, ("kind",))
        issues.append(Issue(path, line, col, label, "kind", message))
    if "apiVersion" not in value:
        if not known:
            message = "field required"
            issues.append(Issue(path, root_line, root_col, label, "apiVersion", message))
    elif value["apiVersion"] != API_VERSION:
        api = value["apiVersion"]
        line, col = locate(doc.root, ("apiVersion",))
        shown = repr(api) if isinstance(api, str) else describe(api)
        message = f"unsupported apiVersion {shown}; expected {API_VERSION}"
        issues.append(Issue(path, line, col, label, "apiVersion", message))
    return issues


def _issues(
    exc: ValidationError, doc: Document, path: str, label: str, model: type[BaseModel]
) -> list[Issue]:
    merged: dict[tuple[str, int, int], list[str]] = {}
    for error in exc.errors(include_url=False):
        loc, at_key = _clean_loc(error["loc"], doc.value, error["type"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FieldError):
            loc += cause.loc
        line, col = locate(doc.root, loc, key=at_key or error["type"] == "extra_forbidden")
        message = _message(error, loc, model)
        messages = merged.setdefault((field_path(loc), line, col), [])
        if message not in messages:
            messages.append(message)
    return [
        Issue(path, line, col, label, field, "; or ".join(messages))
        for (field, line, col), messages in merged.items()
    ]


def _clean_loc(
    loc: tuple[int | str, ...], data: object, kind: str
) -> tuple[tuple[object, ...], bool]:
    """pydantic's loc without union/validator tags, guided by the data itself."""
    out: list[object] = []
    at_key = False
    for i, part in enumerate(loc):
        if part == "[key]":
            at_key = True
            continue
        child = _child(data, part)
        if child is not _ABSENT:
            out.append(part)
            data = child
        elif kind == "missing" and i == len(loc) - 1 and isinstance(data, dict):
            out.append(part)
        # anything else is a tag pydantic inserted (a union member, a validator)
    return tuple(out), at_key


_ABSENT = object()


def _child(data: object, part: int | str) -> object:
    if isinstance(data, dict):
        return data.get(part, _ABSENT)
    if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
        return data[part]
    return _ABSENT


def _message(error: Any, loc: tuple[object, ...], model: type[BaseModel]) -> str:
    kind, ctx, found = error["type"], error.get("ctx", {}), error.get("input")
    simple = {
        "missing": "field required",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "greater_than": f"must be greater than {ctx.get('gt')}",
        "less_than": f"must be less than {ctx.get('lt')}",
        "string_too_long": f"must be at most {ctx.get('max_length')} characters",
        "string_too_short": f"must be at least {ctx.get('min_length')} characters",
        "string_pattern_mismatch": f"{found!r} does not match the pattern {ctx.get('pattern')}",
        "too_long": f"must have at most {ctx.get('max_length')} items",
        "too_short": f"must have at least {ctx.get('min_length')} items",
        "int_type": f"expected an integer, got {describe(found)}",
        "int_parsing": f"expected an integer, got {describe(found)}",
        "int_from_float": f"expected an integer, got {describe(found)}",
        "bool_type": f"expected true or false, got {describe(found)}",
        "bool_parsing": f"expected true or false, got {describe(found)}",
        "float_type": f"expected a number, got {describe(found)}",
        "float_parsing": f"expected a number, got {describe(found)}",
        "dict_type": f"expected a mapping, got {describe(found)}",
        "model_type": f"expected a mapping, got {describe(found)}",
        "model_attributes_type": f"expected a mapping, got {describe(found)}",
        "list_type": f"expected a list, got {describe(found)}",
        "tuple_type": f"expected a list, got {describe(found)}",
    }
    if kind in simple:
        return simple[kind]
    if kind == "string_type":
        hint = "; put it in quotes" if isinstance(found, int | float) else ""
        return f"expected a string, got {describe(found)}{hint}"
    if kind == "extra_forbidden":
        return _unknown_field(loc, model)
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message.replace("Input should be ", "must be ", 1)


def _unknown_field(loc: tuple[object, ...], model: type[BaseModel]) -> str:
    key = loc[-1] if loc else "?"
    message = f"unknown field {key!r}"
    names = _field_names(model, loc[:-1])
    if isinstance(key, str) and names:
        camel = to_camel(key.rstrip("_"))
        close = [camel] if camel in names else difflib.get_close_matches(key, names, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def _field_names(model: type[BaseModel], loc: tuple[object, ...]) -> list[str]:
    """YAML names of the fields of the model at `loc` (empty if not a model)."""
    target: Any = model
    for part in loc:
        target = _unwrap(target)
        if isinstance(target, type) and issubclass(target, BaseModel) and isinstance(part, str):
            fields = {f.alias or name: f.annotation for name, f in target.model_fields.items()}
            target = fields.get(part)
        elif typing.get_origin(target) in (tuple, list) and isinstance(part, int):
            target = typing.get_args(target)[0]
        elif typing.get_origin(target) is dict:
            target = typing.get_args(target)[1]
        else:
            return []
    target = _unwrap(target)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [f.alias or name for name, f in target.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional/Union down to the model or container inside."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0] if members else None
        else:
            return annotation
