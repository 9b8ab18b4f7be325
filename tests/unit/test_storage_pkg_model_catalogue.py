"""The pkg, storage and model ToolSpecs: valid draft 2020-12 schemas, closed objects, metadata."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from registry.catalogue import specs
from registry.tooling import ToolSpec

NAMESPACES = ("pkg", "storage", "model")
MINE = {n: s for n, s in specs().items() if s.namespace in NAMESPACES}
EXPECTED = {
    "pkg.state", "pkg.ensure", "pkg.repos", "pkg.install", "pkg.remove", "pkg.search",
    "pkg.update", "pkg.list_installed",
    "storage.state", "storage.mkfs", "storage.mount", "storage.umount", "storage.fstab",
    "storage.dir", "storage.swapfile",
    "model.list", "model.fetch", "model.remove",
}  # fmt: skip


def _objects(schema: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            found.append(schema)
        for value in schema.values():
            found.extend(_objects(value))
    elif isinstance(schema, list):
        for value in schema:
            found.extend(_objects(value))
    return found


def test_every_tool_is_in_the_catalogue() -> None:
    assert set(MINE) == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_schemas_are_valid_and_closed(name: str) -> None:
    spec: ToolSpec = MINE[name]
    for schema in (spec.input_schema, spec.output_schema):
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"].endswith("2020-12/schema")
        for obj in _objects(schema):
            assert obj["additionalProperties"] is False, obj
            assert all(k == k.lower() for k in obj["properties"]), obj


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metadata(name: str) -> None:
    spec = MINE[name]
    reads = name.endswith((".state", ".list", ".search", ".list_installed"))
    assert spec.writes is not reads
    if reads:
        assert spec.risk == "low" and spec.idempotent and not spec.reversible
    elif name != "pkg.update":
        assert spec.reversible, name
    domain_caps = {"pkg": ("pkg_read", "pkg_manage"), "storage": ("fs_read", "storage_manage"),
                   "model": ("fs_read", "model_manage")}[spec.namespace]  # fmt: skip
    assert spec.capabilities == (domain_caps[0] if reads else domain_caps[1],)
    assert spec.description
