"""Tool definitions as data: `ToolSpec` (aiOS's ToolDefinition), `define`, risk levels.

The bottom of both sides of the wire. The registry advertises ToolSpecs
(registry.server turns them into ToolDefinition messages) and its handlers
carry one each; the reconciler reads them back from ListTools
(reconciler.client) or, offline, from contract.catalogue. Nothing here
imports pydantic, grpc or any other package of this project.

`define` is the one constructor of a built-in tool's ToolSpec: every module of
contract.catalogue calls it, and so does registry.server.profiles for the
definitions the `aios` profile advertises. It takes the JSON Schemas exactly as
written (it adds no `$schema` tag and reorders nothing: what a catalogue module
writes is what ListTools advertises, byte for byte; the modules tag their
schemas with contract.catalogue.parts.document where their tools publish
tagged documents) and refuses, at import time, what the dataclass itself
cannot: a name that is not `<namespace>.<op>`, an empty description, a
schema that is not an object schema, a timeout that is not positive, a
capability that is not a non-empty string. Why a function and not the old
per-domain helpers (net's `tool_spec`, fs's `fs_spec`, bare `ToolSpec(...)`):
one place states what a definition must hold, and each domain's data reads
the same. Specs built from outside input keep the plain dataclass with their
own checks and error messages: reconciler.client (ListTools answers),
registry.server.external (Register) and registry.server.plugins (plugin meta
files).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

JSON = dict[str, Any]
Risk = Literal["low", "medium", "high", "critical"]
RISKS: tuple[Risk, ...] = ("low", "medium", "high", "critical")

WRITE_CAPABILITY_SUFFIXES = ("_write", "_manage", "_delete", "_permissions")
# `<namespace>.<op>` of a built-in tool (plugins and registered tools are checked where they
# come in: registry.server.plugins, registry.server.external).
TOOL_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class ToolSpec:
    """Everything the registry advertises about a tool (ToolDefinition as data)."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    risk: Risk
    idempotent: bool
    reversible: bool
    timeout_ms: int
    capabilities: tuple[str, ...]
    rollback_tool: str = ""
    version: str = "1.0.0"

    @property
    def namespace(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def writes(self) -> bool:
        """True when the tool can change the target (derived from capabilities)."""
        return is_write(self.capabilities)

    @property
    def requires_confirmation(self) -> bool:
        return self.risk == "critical"

    def schema_bytes(self, which: Literal["input", "output"]) -> bytes:
        schema = self.input_schema if which == "input" else self.output_schema
        if not schema:
            return b""
        return json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()


def is_write(capabilities: tuple[str, ...] | list[str]) -> bool:
    """A tool writes when any capability it needs is a write/manage one."""
    return any(c.endswith(WRITE_CAPABILITY_SUFFIXES) for c in capabilities)


def obj_schema(
    properties: Mapping[str, Any],
    required: tuple[str, ...] | list[str] = (),
    *,
    additional: bool = False,
) -> JSON:
    """Shorthand for a JSON Schema object; unknown keys are refused by default."""
    schema: JSON = {
        "type": "object",
        "properties": dict(properties),
        "additionalProperties": additional,
    }
    if required:
        schema["required"] = list(required)
    return schema


def define(
    name: str,
    description: str,
    input_schema: Mapping[str, Any],
    output_schema: Mapping[str, Any],
    *,
    risk: Risk,
    idempotent: bool,
    reversible: bool,
    timeout_ms: int,
    capabilities: tuple[str, ...],
    rollback_tool: str = "",
    version: str = "1.0.0",
) -> ToolSpec:
    """The ToolSpec of a built-in tool; ValueError says what is wrong (module docstring)."""
    problems = []
    if not TOOL_NAME.fullmatch(name):
        problems.append("the name must be <namespace>.<op> (lowercase, digits, '_')")
    if not description.strip():
        problems.append("the description is empty")
    for which, schema in (("input", input_schema), ("output", output_schema)):
        if schema and schema.get("type") != "object":
            problems.append(f"the {which} schema is not an object schema")
    if risk not in RISKS:
        problems.append(f"risk {risk!r} is not one of {', '.join(RISKS)}")
    if timeout_ms <= 0:
        problems.append("timeout_ms must be positive")
    if not isinstance(capabilities, tuple) or not all(
        isinstance(c, str) and c for c in capabilities
    ):
        problems.append("capabilities must be a tuple of non-empty strings")
    if rollback_tool and not TOOL_NAME.fullmatch(rollback_tool):
        problems.append(f"rollback tool {rollback_tool!r} is not a tool name")
    if problems:
        raise ValueError(f"tool {name!r}: " + "; ".join(problems))
    return ToolSpec(
        name=name,
        description=description,
        input_schema=input_schema,
        output_schema=output_schema,
        risk=risk,
        idempotent=idempotent,
        reversible=reversible,
        timeout_ms=timeout_ms,
        capabilities=capabilities,
        rollback_tool=rollback_tool,
        version=version,
    )
