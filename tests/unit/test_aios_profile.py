"""The `aios` profile matches docs/aios-contract.md §3.1-§3.4, table by table.

Expected values come from parsing tests/fixtures/aios-contract-tool-tables.md,
a verbatim copy of the contract (checked against the source when it is
present), never from lists typed here. The parser is strict and a cruder
independent count guards against silently dropped rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.catalogue.aios import AIOS_TOOLS
from registry.server.profiles import get_profile

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "aios-contract-tool-tables.md"
SOURCE = Path("/work/shared/reference/aios-contract.md")
HEADER = "| tool | risk def / enf | idempotent | reversible | timeout_ms | caps def → **enf** |"
_ROW_RE = re.compile(
    r"^\| `(?P<name>[a-z_]+\.[a-z_]+)` \| (?P<rdef>low|medium|high|critical) / "
    r"(?P<renf>low|medium|high|critical) \| (?P<idem>true|false) \| (?P<rev>true|false) \| "
    r"(?P<timeout>\d+) \| (?P<cdef>[a-z_.]+(?:, [a-z_.]+)*) → "
    r"\*\*(?P<cenf>[a-z_]+(?:, [a-z_]+)*)\*\* \|$"
)


@dataclass(frozen=True)
class Row:
    name: str
    risk_def: str
    risk_enf: str
    idempotent: bool
    reversible: bool
    timeout_ms: int
    caps_def: tuple[str, ...]
    caps_enf: tuple[str, ...]


def parse(text: str) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        if line == HEADER or set(line) <= {"|", "-"}:
            continue
        m = _ROW_RE.match(line)
        if m is None:
            raise ValueError(f"fixture line {i + 1}: cannot parse table row {line!r}")
        assert m["name"] not in rows, f"{m['name']} listed twice"
        rows[m["name"]] = Row(
            name=m["name"],
            risk_def=m["rdef"],
            risk_enf=m["renf"],
            idempotent=m["idem"] == "true",
            reversible=m["rev"] == "true",
            timeout_ms=int(m["timeout"]),
            caps_def=tuple(m["cdef"].split(", ")),
            caps_enf=tuple(m["cenf"].split(", ")),
        )
    return rows


TEXT = FIXTURE.read_text(encoding="utf-8")
TABLE = parse(TEXT)


def test_fixture_is_a_verbatim_copy() -> None:
    first, _, body = TEXT.partition("\n")
    assert first.startswith("<!-- Verbatim copy of ") and first.endswith("-->")
    assert body.startswith("### 3.1 ")
    if not SOURCE.exists():
        pytest.skip(f"{SOURCE} not present")
    source = SOURCE.read_text(encoding="utf-8")
    start = source.index("### 3.1 ")
    end = source.index("### 3.5 ")
    assert body == source[start:end]


def test_parser_saw_every_row() -> None:
    table_lines = [ln for ln in TEXT.splitlines() if ln.startswith("| `")]
    assert len(TABLE) == len(table_lines) == 26
    assert len(re.findall(r"(?m)^### 3\.\d ", TEXT)) == 4
    namespaces = {name.split(".")[0] for name in TABLE}
    assert namespaces == {"net", "firewall", "pkg", "fs"}


def test_profile_table_matches_the_contract() -> None:
    assert set(AIOS_TOOLS) == set(TABLE)
    for name, row in TABLE.items():
        mine = AIOS_TOOLS[name]
        got = (
            mine.risk_def,
            mine.risk_enf,
            mine.idempotent,
            mine.reversible,
            mine.timeout_ms,
            mine.caps_def,
            mine.caps_enf,
        )
        want = (
            row.risk_def,
            row.risk_enf,
            row.idempotent,
            row.reversible,
            row.timeout_ms,
            row.caps_def,
            row.caps_enf,
        )
        assert got == want, name


def test_advertised_definitions_are_aioss() -> None:
    """Exactly these tools, with def values, version 1.0.0 and empty schemas (§1.7)."""
    builtins = get_profile("aios").builtins()
    assert set(builtins) == set(TABLE)
    for name, entry in builtins.items():
        row, spec = TABLE[name], entry.spec
        assert spec.risk == row.risk_def, name
        assert (spec.idempotent, spec.reversible) == (row.idempotent, row.reversible), name
        assert spec.timeout_ms == row.timeout_ms, name
        assert spec.capabilities == row.caps_def, name
        assert entry.enforced == row.caps_enf, name
        assert spec.version == "1.0.0" and spec.rollback_tool == ""
        assert spec.schema_bytes("input") == b"" and spec.schema_bytes("output") == b""
        assert spec.requires_confirmation == (row.risk_def == "critical")


def test_full_profile_offers_every_aios_fs_tool_with_a_schema() -> None:
    full = get_profile("full").builtins()
    for name in (n for n in TABLE if n.startswith("fs.")):
        assert full[name].spec.input_schema, name
        assert full[name].spec.reversible == TABLE[name].reversible, name
