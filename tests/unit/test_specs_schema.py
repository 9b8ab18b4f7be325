"""JSON Schema export (specs.schema, `aios schema`) and the `aios validate` CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from reconciler.cli.main import cli
from specs.base import KINDS
from specs.schema import DRAFT, SPEC_ID, kind_schema, spec_schema

GOOD: dict[str, Any] = {
    "apiVersion": "aios.dev/v1",
    "kind": "Network",
    "metadata": {"name": "lan", "dependsOn": ["Storage/data"]},
    "spec": {
        "links": [{"name": "br0", "kind": "bridge", "mtu": 1500, "addresses": ["10.0.0.1/24"]}],
        "routes": [{"to": "default", "via": "10.0.0.254", "table": 100}],
        "sysctls": {"net.ipv4.ip_forward": 1},
    },
}


def _errors(schema: dict[str, Any], doc: object) -> list[str]:
    return [e.message for e in Draft202012Validator(schema).iter_errors(doc)]


def test_spec_schema_is_draft_2020_12_with_one_branch_per_kind() -> None:
    schema = spec_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == DRAFT
    assert schema["$id"] == SPEC_ID
    assert schema["properties"]["kind"]["enum"] == list(KINDS)
    assert [b["then"]["$ref"] for b in schema["oneOf"]] == [f"#/$defs/{k}" for k in KINDS]
    assert _errors(schema, GOOD) == []


@pytest.mark.parametrize("kind", KINDS)
def test_kind_schema_is_valid_and_names_its_kind(kind: str) -> None:
    schema = kind_schema(kind)
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["kind"]["const"] == kind
    assert schema["$id"].endswith(f"/{kind.lower()}.json")


def _bad(**changes: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        target = doc
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return doc


@pytest.mark.parametrize(
    "doc",
    [
        _bad(kind="Netwerk"),
        _bad(apiVersion="aios.dev/v2"),
        _bad(spec=None),
        _bad(status={"ready": True}),
        _bad(spec__links__0__mtu="big"),
        _bad(spec__links__0__adresses=["10.0.0.1/24"]),
        _bad(spec__links__0__name="a-very-long-interface-name"),
        _bad(spec__routes__0__table=0),
        _bad(metadata__name="LAN"),
        _bad(metadata__dependsOn=["storage/data"]),
        _bad(spec__links="br0"),
        ["not", "a", "mapping"],
    ],
    ids=lambda d: json.dumps(d)[:60],
)
def test_bad_documents_fail_the_schema(doc: object) -> None:
    assert _errors(spec_schema(), doc)


def test_kind_schema_refuses_another_kind() -> None:
    assert _errors(kind_schema("Network"), GOOD) == []
    assert _errors(kind_schema("Firewall"), GOOD)


def test_schema_accepts_the_spellings_the_loader_accepts() -> None:
    firewall = {
        "apiVersion": "aios.dev/v1",
        "kind": "Firewall",
        "metadata": {"name": "fw"},
        "spec": {
            "tables": [
                {
                    "name": "filter",
                    "chains": [
                        {
                            "name": "input",
                            "type": "filter",
                            "hook": "input",
                            "priority": "filter",
                            "services": [{"port": 22}, {"ports": ["8000-8080", 443]}],
                        }
                    ],
                }
            ]
        },
    }
    assert _errors(spec_schema(), firewall) == []


# --- the CLI -------------------------------------------------------------------


def test_cli_schema_prints_the_spec_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == spec_schema()
    one = CliRunner().invoke(cli, ["schema", "models"])
    assert json.loads(one.output) == kind_schema("Models")


def _write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return str(tmp_path / name)


VALID = "apiVersion: aios.dev/v1\nkind: Packages\nmetadata: {name: base}\nspec: {}\n"


def test_cli_validate_success_prints_a_summary(tmp_path: Path) -> None:
    path = _write(tmp_path, "ok.yaml", VALID)
    result = CliRunner().invoke(cli, ["validate", "-f", path])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 resource valid (digest ")
    report = json.loads(CliRunner().invoke(cli, ["validate", "-f", path, "-o", "json"]).output)
    assert report["valid"] is True and report["resources"] == 1 and len(report["digest"]) == 64


def test_cli_validate_reports_every_error_and_exits_1(tmp_path: Path) -> None:
    one = _write(tmp_path, "a.yaml", VALID.replace("spec: {}", "spec: {backend: yum}"))
    two = _write(tmp_path, "b.yaml", "kind: Nope\n")
    result = CliRunner().invoke(cli, ["validate", "-f", one, two])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"{one}:4:17: Packages/base: spec.backend: must be 'auto'")
    assert lines[1] == f"{two}:1:1: ?/?: apiVersion: field required"
    assert lines[2].startswith(f"{two}:1:7: ?/?: kind: unknown kind 'Nope'")


def test_cli_validate_json_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.yaml", VALID.replace("base", "Base"))
    result = CliRunner().invoke(cli, ["validate", "-o", "json", "-f", path])
    assert result.exit_code == 1
    [error] = json.loads(result.output)["errors"]
    assert error["path"] == path and (error["line"], error["column"]) == (3, 18)
    assert error["resource"] == "Packages/Base" and error["field"] == "metadata.name"
    assert "DNS-1123" in error["message"]


def test_cli_validate_needs_a_path() -> None:
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 2
    assert "at least one spec file" in result.output


def test_validate_and_schema_have_help() -> None:
    for args in (["validate", "--help"], ["schema", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output
    assert "yaml-language-server" in CliRunner().invoke(cli, ["schema", "--help"]).output
