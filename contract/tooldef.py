"""Tool definitions as data: `ToolSpec` (aiOS's ToolDefinition), risk levels, schema helpers.

The bottom of both sides of the wire. The registry advertises ToolSpecs
(registry.server turns them into ToolDefinition messages) and its handlers
carry one each; the reconciler reads them back from ListTools
(reconciler.client) or, offline, from contract.catalogue. Nothing here
imports pydantic, grpc or any other package of this project.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

JSON = dict[str, Any]
Risk = Literal["low", "medium", "high", "critical"]
RISKS: tuple[Risk, ...] = ("low", "medium", "high", "critical")

WRITE_CAPABILITY_SUFFIXES = ("_write", "_manage", "_delete", "_permissions")


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
