"""Registry profiles: which tools are served, what is advertised, which rules apply.

`full` (ours): every tool of the catalogue with its JSON Schemas, capability
checks in our spelling, NOT_FOUND for unknown tools, on-disk backups with
conflict-checked Rollback, Register with handler_address (external tools) and
built-ins that cannot be replaced or removed.

`aios`: exactly the net.*, firewall.*, pkg.* and fs.* tools of
docs/aios-contract.md §3.1-§3.4 as aiOS advertises them (the rows of
contract.catalogue.aios: def risk, flags, timeout, version 1.0.0, empty schemas,
def capability spellings) while enforcing the "enf" capabilities and the §2.3
agent table, the §2.4 rate limits, gRPC INTERNAL
`Execution failed: Unknown tool: <name>`, §2.5 Rollback and §2.8
Register/Deregister. Handlers are the same classes as on `full`; a tool whose
handler is not written yet is listed and answers aiOS's
`No handler registered for tool: <name>`.

Called by registry.server.toolset (building the live table), registry.server.pipeline
(rules) and tests/unit/test_aios_profile.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from contract import schemacheck
from contract.catalogue import catalogue
from contract.catalogue.aios import AIOS_EMPTY_OK, AIOS_TOOLS, AiosTool
from contract.tooldef import JSON, ToolSpec, define, is_write
from registry.core.errors import ToolError
from registry.core.tool import Tool
from registry.handlers.index import tool_classes
from registry.server.capabilities import RECONCILER_AGENT

ProfileName = Literal["full", "aios"]
PROFILES: tuple[ProfileName, ...] = ("full", "aios")


AIOS_PLUGIN_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Entry:
    """One executable (or at least listed) tool in a live registry."""

    spec: ToolSpec  # what ListTools/GetTool advertise
    enforced: tuple[str, ...] | None  # capabilities checked; None: always denied (aiOS)
    handler: type[Tool] | None  # None: listed without a handler
    builtin: bool
    writes: bool  # serialized per namespace
    namespace: str
    kind: Literal["builtin", "plugin", "external", "definition"] = "builtin"


@dataclass(frozen=True)
class Profile:
    name: ProfileName
    default_agent: str
    unknown_tool_internal: bool  # aios: gRPC INTERNAL, full: NOT_FOUND
    rate_limited: bool
    validates_schemas: bool
    aios_rollback: bool  # §2.5 semantics instead of conflict-checked backups
    locked_builtins: bool  # full: Register/Deregister cannot touch built-ins
    persists_registrations: bool
    plugin_timeout_ms: int | None  # None: the plugin's own timeout_ms

    def builtins(self) -> dict[str, Entry]:
        return _full_builtins() if self.name == "full" else _aios_builtins()


def get_profile(name: str) -> Profile:
    if name == "full":
        return Profile(
            name="full",
            default_agent=RECONCILER_AGENT,
            unknown_tool_internal=False,
            rate_limited=False,
            validates_schemas=True,
            aios_rollback=False,
            locked_builtins=True,
            persists_registrations=True,
            plugin_timeout_ms=None,
        )
    if name == "aios":
        return Profile(
            name="aios",
            default_agent="task-agent",
            unknown_tool_internal=True,
            rate_limited=True,
            validates_schemas=False,
            aios_rollback=True,
            locked_builtins=False,
            persists_registrations=False,
            plugin_timeout_ms=AIOS_PLUGIN_TIMEOUT_MS,
        )
    raise ValueError(f"unknown profile {name!r} (expected one of {', '.join(PROFILES)})")


def _full_builtins() -> dict[str, Entry]:
    return {
        name: Entry(
            spec=cls.spec,
            enforced=cls.spec.capabilities,
            handler=cls,
            builtin=True,
            writes=cls.spec.writes,
            namespace=cls.spec.namespace,
        )
        for name, cls in tool_classes().items()
    }


def aios_spec(row: AiosTool, definition: ToolSpec | None) -> ToolSpec:
    """The ToolDefinition aiOS advertises for a built-in (§1.7); `definition` is ours
    (contract.catalogue), None for a tool we have no handler for."""
    description = definition.description if definition is not None else f"aiOS {row.name}"
    return define(
        name=row.name,
        description=description,
        input_schema={},
        output_schema={},
        risk=row.risk_def,
        idempotent=row.idempotent,
        reversible=row.reversible,
        timeout_ms=row.timeout_ms,
        capabilities=row.caps_def,
    )


def _aios_builtins() -> dict[str, Entry]:
    classes = tool_classes()
    definitions = catalogue()
    entries = {}
    for name, row in AIOS_TOOLS.items():
        handler = classes.get(name)
        spec = aios_spec(row, definitions.get(name))
        entries[name] = Entry(
            spec=spec,
            enforced=row.caps_enf,
            handler=handler,
            builtin=True,
            writes=is_write(row.caps_enf),
            namespace=spec.namespace,
        )
    return entries


def aios_input(entry: Entry, raw: bytes) -> JSON:
    """Parse input the way aiOS's handlers do, with aiOS's error strings.

    fs.* tools check their own keys (registry.handlers.fs_base); other typed
    tools fail with the bare `Invalid JSON input` on a missing key or a wrong
    type (checked against our handler's schema, unknown keys ignored).
    """
    name = entry.spec.name
    is_fs = name.startswith("fs.")
    bad = f"{name}: invalid JSON input" if is_fs else "Invalid JSON input"
    if not raw.strip():
        if name in AIOS_EMPTY_OK:
            return {}
        raise ToolError(bad)
    try:
        args = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ToolError(bad) from None
    if not isinstance(args, dict):
        raise ToolError(bad)
    if is_fs or entry.handler is None or not entry.handler.spec.input_schema:
        return args
    schema = dict(entry.handler.spec.input_schema)
    known = schema.get("properties", {})
    args = {k: v for k, v in args.items() if k in known}
    if schemacheck.validator(schema).is_valid(args):
        return args
    raise ToolError(bad)
