"""Which agent may do what: agent id -> capabilities, and the denial message.

Capabilities use aiOS's enforced spelling (`net_read`, `fs_write`, …). Each
profile has built-in defaults: on `full` the reconciler's own identity
`aios-reconciler` holds every capability our tools need (`OUR_CAPABILITIES`, read
from contract.catalogue), and the aiOS agent
table (docs/aios-contract.md §2.3) is kept so aiOS agents keep working; on `aios`
exactly the §2.3 table applies. `--agents FILE` (YAML or JSON) adds agents or
replaces the defaults. An unknown agent holds nothing.

agent_id is self-asserted by the caller: these checks mean something only
when the socket itself is protected (the registry's unix socket is 0600).

Called by registry.server.pipeline (check) and registry.server.grpc (loading the file).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.catalogue import catalogue
from registry.server.plugins import PLUGIN_CAPABILITY

RECONCILER_AGENT = "aios-reconciler"

# Capabilities our full-profile tools require (aiOS spelling, plus our own): every
# capability a catalogue tool names, and the one plugins require. Derived, so a new
# tool's capability is held by the reconciler without a list to keep.
OUR_CAPABILITIES: tuple[str, ...] = tuple(
    sorted(
        {cap for spec in catalogue().values() for cap in spec.capabilities} | {PLUGIN_CAPABILITY}
    )
)

_ALL_30 = (
    "fs_read",
    "fs_write",
    "fs_delete",
    "fs_permissions",
    "process_read",
    "process_manage",
    "service_read",
    "service_manage",
    "net_read",
    "net_write",
    "net_scan",
    "firewall_read",
    "firewall_manage",
    "pkg_read",
    "pkg_manage",
    "sec_read",
    "sec_manage",
    "monitor_read",
    "hw_read",
    "git_read",
    "git_write",
    "code_gen",
    "self_read",
    "self_update",
    "plugin_read",
    "plugin_manage",
    "plugin_execute",
    "container_read",
    "container_manage",
    "email_send",
)

# docs/aios-contract.md §2.3, agent_id -> capabilities, in the contract's order.
AIOS_AGENTS: dict[str, tuple[str, ...]] = {
    "autonomy-loop": tuple(_ALL_30),
    "task-agent": tuple(_ALL_30),
    "system-agent": ("monitor_read", "service_read", "service_manage", "process_read"),
    "network-agent": ("net_read", "net_write", "net_scan", "firewall_read", "firewall_manage"),
    "security-agent": (
        "sec_read",
        "sec_manage",
        "net_read",
        "net_scan",
        "process_read",
        "monitor_read",
        "fs_read",
    ),
    "monitoring-agent": ("monitor_read", "net_read", "process_read", "fs_read"),
    "storage-agent": (
        "fs_read",
        "fs_write",
        "fs_delete",
        "fs_permissions",
        "monitor_read",
        "process_manage",
    ),
    "package-agent": ("pkg_read", "pkg_manage"),
    "learning-agent": ("monitor_read", "process_read", "fs_read"),
    "creator-agent": (
        "fs_read",
        "fs_write",
        "code_gen",
        "git_read",
        "git_write",
        "process_manage",
        "plugin_read",
        "plugin_manage",
        "plugin_execute",
    ),
    "web-agent": ("net_read", "net_write", "fs_read", "fs_write"),
}


def default_agents(profile: str) -> dict[str, frozenset[str]]:
    """Built-in agent table of a profile (`full` or `aios`)."""
    table = {agent: frozenset(caps) for agent, caps in AIOS_AGENTS.items()}
    if profile == "full":
        table[RECONCILER_AGENT] = frozenset(OUR_CAPABILITIES)
    return table


def denial(missing: Iterable[str]) -> str:
    """aiOS's message: `Capability denied: missing ["x", "y"]` (Rust debug list)."""
    return f"Capability denied: missing [{', '.join(json.dumps(m) for m in missing)}]"


@dataclass(frozen=True)
class Capabilities:
    """The agent table in force; `missing` is the whole check."""

    agents: Mapping[str, frozenset[str]]

    def missing(self, agent_id: str, required: Iterable[str]) -> list[str]:
        """Required capabilities the agent lacks, in the tool's order."""
        held = self.agents.get(agent_id, frozenset())
        return [c for c in required if c not in held]

    @classmethod
    def for_profile(cls, profile: str, agents_file: Path | None = None) -> Capabilities:
        table = default_agents(profile)
        if agents_file is not None:
            table = merge_agents_file(table, agents_file)
        return cls(table)


def merge_agents_file(
    defaults: Mapping[str, frozenset[str]], path: Path
) -> dict[str, frozenset[str]]:
    """Apply an agents file: `{agents: {id: [caps]}, include_defaults: true}`.

    A bare mapping `{id: [caps]}` is accepted too. An agent named in the file
    gets exactly the listed capabilities; `include_defaults: false` drops the
    built-in table. Raises ValueError naming the file on a malformed document.
    """
    data = _load_document(path)
    include_defaults = True
    if isinstance(data, Mapping) and "agents" in data:
        include_defaults = bool(data.get("include_defaults", True))
        unknown = set(data) - {"agents", "include_defaults"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        data = data["agents"]
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of agent id -> list of capabilities")
    table = dict(defaults) if include_defaults else {}
    for agent, caps in data.items():
        if not isinstance(agent, str) or not isinstance(caps, list):
            raise ValueError(f"{path}: agent {agent!r} needs a list of capabilities")
        if not all(isinstance(c, str) for c in caps):
            raise ValueError(f"{path}: agent {agent!r}: capabilities must be strings")
        table[agent] = frozenset(caps)
    return table


def _load_document(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    from ruamel.yaml import YAML

    return YAML(typ="safe").load(text)
