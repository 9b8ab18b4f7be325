"""aiOS's own built-in tool definitions as data: docs/aios-contract.md §3.1-§3.4, row by row.

What aiOS's registry advertises and enforces for its 26 net.*, firewall.*, pkg.* and
fs.* tools: the advertised ("def") and enforced ("enf") risk, the flags, the timeout,
and the capabilities in both spellings; plus which tools accept empty input bytes as
`{}`. Not part of `contract.catalogue.catalogue()` (our own definitions): these rows
describe aiOS's, which the registry's `aios` profile imitates.

Called by registry.server.profiles (it builds the `aios` profile's entries and
ToolDefinitions from these rows) and tests/unit/test_aios_profile.py (which compares
them with the fixture copy of the contract's tables).
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.tooldef import RISKS, Risk


@dataclass(frozen=True)
class AiosTool:
    """One row of the contract's §3 tables."""

    name: str
    risk_def: Risk
    risk_enf: Risk
    idempotent: bool
    reversible: bool
    timeout_ms: int
    caps_def: tuple[str, ...]
    caps_enf: tuple[str, ...]


def _risk(word: str) -> Risk:
    for risk in RISKS:
        if risk == word:
            return risk
    raise ValueError(f"unknown risk {word!r}")


def _row(spec: str) -> AiosTool:
    """`name risk_def/risk_enf idem rev timeout caps,def -> caps,enf` (one table row)."""
    head, enf = spec.split(" -> ")
    name, risks, idem, rev, timeout, caps_def = head.split(" ", 5)
    risk_def, risk_enf = risks.split("/")
    return AiosTool(
        name=name,
        risk_def=_risk(risk_def),
        risk_enf=_risk(risk_enf),
        idempotent=idem == "T",
        reversible=rev == "T",
        timeout_ms=int(timeout),
        caps_def=tuple(caps_def.split(",")),
        caps_enf=tuple(enf.split(",")),
    )


# docs/aios-contract.md §3.1-§3.4, row by row (tests compare this with the fixture copy).
AIOS_TOOLS: dict[str, AiosTool] = {
    t.name: t
    for t in map(
        _row,
        (
            "net.dns low/low T F 10000 net.read -> net_read",
            "net.http_get medium/low T F 30000 net.http -> net_read",
            "net.interfaces low/low T F 5000 net.read -> net_read",
            "net.ping low/low T F 30000 net.read -> net_read",
            "net.port_scan medium/medium T F 10000 net.read -> net_read,net_scan",
            "firewall.add_rule critical/critical F T 10000 firewall.manage -> firewall_manage",
            "firewall.delete_rule critical/critical F F 10000 firewall.manage -> firewall_manage",
            "firewall.rules low/low T F 5000 firewall.read -> firewall_read",
            "pkg.install high/high F T 120000 pkg.manage -> pkg_manage",
            "pkg.list_installed low/low T F 15000 pkg.read -> pkg_read",
            "pkg.remove high/high F F 60000 pkg.manage -> pkg_manage",
            "pkg.search low/low T F 30000 pkg.read -> pkg_read",
            "pkg.update high/high F F 300000 pkg.manage -> pkg_manage",
            "fs.chmod high/high T T 5000 fs.write -> fs_write,fs_permissions",
            "fs.chown critical/high T T 5000 fs.admin -> fs_write,fs_permissions",
            "fs.copy medium/medium F T 30000 fs.read,fs.write -> fs_write",
            "fs.delete high/high F F 10000 fs.delete -> fs_write,fs_delete",
            "fs.disk_usage low/low T F 5000 fs.read -> fs_read",
            "fs.list low/low T F 5000 fs.read -> fs_read",
            "fs.mkdir low/medium T T 5000 fs.write -> fs_write",
            "fs.move medium/medium F T 10000 fs.write,fs.delete -> fs_write",
            "fs.read low/low T F 5000 fs.read -> fs_read",
            "fs.search low/low T F 30000 fs.read -> fs_read",
            "fs.stat low/low T F 5000 fs.read -> fs_read",
            "fs.symlink medium/medium F T 5000 fs.write -> fs_write",
            "fs.write medium/medium F T 10000 fs.write -> fs_write",
        ),
    )
}
# Tools whose handler accepts empty input bytes as {} ("empty ok" in §3).
AIOS_EMPTY_OK = frozenset({"net.interfaces", "firewall.rules", "pkg.update", "pkg.list_installed"})
