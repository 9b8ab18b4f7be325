"""The pkg, storage and model ToolSpecs: valid draft 2020-12 schemas, closed objects, metadata."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from contract.catalogue import catalogue
from contract.tooldef import ToolSpec

NAMESPACES = ("pkg", "storage", "model")
MINE = {n: s for n, s in catalogue().items() if s.namespace in NAMESPACES}
EXPECTED = {
    "pkg.state", "pkg.ensure", "pkg.repos", "pkg.install", "pkg.remove", "pkg.search",
    "pkg.update", "pkg.list_installed",
    "storage.state", "storage.mkfs", "storage.mount", "storage.umount", "storage.fstab",
    "storage.dir", "storage.swapfile",
    "model.list", "model.fetch", "model.remove", "model.loaded", "model.load", "model.unload",
}  # fmt: skip
# The runtime tools spell their keys as the Models spec does (contextLength, gpuLayers, …).
SPEC_SPELLING = {"contextLength", "gpuLayers", "lastError", "onDemand"}


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
            assert all(k == k.lower() or k in SPEC_SPELLING for k in obj["properties"]), obj


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metadata(name: str) -> None:
    spec = MINE[name]
    reads = name.endswith((".state", ".list", ".search", ".list_installed", ".loaded"))
    assert spec.writes is not reads
    if reads:
        assert spec.risk == "low" and spec.idempotent and not spec.reversible
    elif name != "pkg.update":
        assert spec.reversible, name
    domain_caps = {"pkg": ("pkg_read", "pkg_manage"), "storage": ("fs_read", "storage_manage"),
                   "model": ("fs_read", "model_manage")}[spec.namespace]  # fmt: skip
    assert spec.capabilities == (domain_caps[0] if reads else domain_caps[1],)
    assert spec.description


SHA = "a" * 64
# tool -> (a valid input, a wrong input, JSON path of the error jsonschema reports)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "pkg.state": ({"names": ["curl"]}, {"names": ["Bad Name"]}, "$.names[0]"),
    "pkg.ensure": (
        {"install": [{"name": "a", "version": "1.0-1"}], "remove": ["b"], "hold": ["a"]},
        {"install": [{"name": "a", "version": "1.0 ; rm -rf /"}]},
        "$.install[0].version",
    ),
    "pkg.repos": (
        {"repositories": [{"name": "demo", "url": "http://127.0.0.1:18080/apt", "trusted": True}]},
        {"repositories": [{"name": "demo", "url": "ftp://x/apt"}]},
        "$.repositories[0].url",
    ),
    "pkg.install": ({"name": "curl=8.0-1"}, {"name": "-o=evil"}, "$.name"),
    "pkg.remove": ({"name": "curl"}, {"name": "curl", "purge": True}, "$"),
    "pkg.search": ({"query": "demo"}, {"query": "--option"}, "$.query"),
    "pkg.update": ({}, {"all": True}, "$"),
    "pkg.list_installed": ({}, {"x": 1}, "$"),
    "storage.state": (
        {"paths": ["/srv"], "probe": ["/images/a.img"]},
        {"paths": ["srv"]},
        "$.paths[0]",
    ),
    "storage.mkfs": (
        {"target": "/images/a.img", "image": {"size": "64M"}, "type": "ext4", "label": "data"},
        {"target": "/images/a.img", "type": "vfat"},
        "$.type",
    ),
    "storage.mount": (
        {"target": "/srv", "source": "LABEL=data", "options": ["noatime"], "probe": ["/a.img"]},
        {"target": "/srv", "source": "/a.img", "options": ["-o nosuid"]},
        "$.options[0]",
    ),
    "storage.umount": ({"target": "/srv", "lazy": True}, {"target": "/srv/../etc"}, "$.target"),
    "storage.fstab": (
        {"entries": [{"source": "LABEL=d", "target": "/srv", "type": "ext4", "pass": 2}]},
        {"entries": [{"source": "LABEL=d", "target": "/srv a", "type": "ext4"}]},
        "$.entries[0].target",
    ),
    "storage.dir": (
        {"path": "/srv/x", "mode": "0750", "owner": "root"},
        {"path": "/srv/x", "mode": 755},
        "$.mode",
    ),
    "storage.swapfile": ({"path": "/swapfile", "size": "1G"}, {"path": "/swapfile"}, "$"),
    "model.list": ({"directory": "/var/lib/aios/models"}, {"directory": "models"}, "$.directory"),
    "model.fetch": (
        {"url": "http://127.0.0.1:18080/models/x.gguf", "sha256": SHA, "path": "/m/x.gguf"},
        {"url": "http://127.0.0.1:18080/models/x.gguf", "sha256": SHA.upper(), "path": "/m/x.gguf"},
        "$.sha256",
    ),
    "model.remove": ({"path": "/m/x.gguf"}, {"path": "/m/x.bin"}, "$.path"),
    "model.loaded": ({}, {"name": "x"}, "$"),
    "model.load": (
        {
            "name": "smol",
            "path": "/m/x.gguf",
            "contextLength": 512,
            "threads": 1,
            "gpuLayers": -1,
            "sha256": SHA,
        },
        {"name": "smol", "path": "/m/x.gguf", "contextLength": 64, "threads": 1, "gpuLayers": 0},
        "$.contextLength",
    ),
    "model.unload": ({"name": "tinyllama-1.1b"}, {"name": "-rf"}, "$.name"),
}
# More hostile inputs of the runtime tools: (tool, input, JSON path of the error).
RUNTIME_WRONG = [
    ("model.load", {"name": "../x", "path": "/m/x.gguf", "contextLength": 512, "threads": 1,
                    "gpuLayers": 0}, "$.name"),
    ("model.load", {"name": "x", "path": "/m/../x.gguf", "contextLength": 512, "threads": 1,
                    "gpuLayers": 0}, "$.path"),
    ("model.load", {"name": "x", "path": "/m/x.gguf", "contextLength": 512, "threads": 0,
                    "gpuLayers": 0}, "$.threads"),
    ("model.load", {"name": "x", "path": "/m/x.gguf", "contextLength": 512, "threads": 1,
                    "gpuLayers": -2}, "$.gpuLayers"),
    ("model.load", {"name": "x", "path": "/m/x.gguf", "contextLength": 512, "threads": 1,
                    "gpuLayers": 0, "sha256": "A" * 64}, "$.sha256"),
    ("model.load", {"name": "x", "path": "/m/x.gguf", "contextLength": 512, "threads": 1,
                    "gpuLayers": 0, "port": 8080}, "$"),
    ("model.load", {"name": "x", "path": "/m/x.gguf", "threads": 1, "gpuLayers": 0}, "$"),
    ("model.unload", {"name": "x\n"}, "$.name"),
    ("model.unload", {"name": "a" * 129}, "$.name"),
]  # fmt: skip


def test_every_tool_has_a_schema_case() -> None:
    assert set(CASES) == EXPECTED


@pytest.mark.parametrize("name", sorted(CASES))
def test_schema_accepts_the_valid_and_rejects_the_wrong_input(name: str) -> None:
    valid, wrong, path = CASES[name]
    validator = Draft202012Validator(MINE[name].input_schema)
    assert list(validator.iter_errors(valid)) == []
    errors = list(validator.iter_errors(wrong))
    assert errors, f"{name} accepted {wrong}"
    assert path in {e.json_path for e in errors}, [(e.json_path, e.message) for e in errors]


@pytest.mark.parametrize(("name", "wrong", "path"), RUNTIME_WRONG)
def test_runtime_tool_schemas_refuse(name: str, wrong: dict[str, Any], path: str) -> None:
    errors = list(Draft202012Validator(MINE[name].input_schema).iter_errors(wrong))
    assert path in {e.json_path for e in errors}, [(e.json_path, e.message) for e in errors]


def test_runtime_tool_bounds_are_the_specs() -> None:
    from specs.models import Model

    fields = Model.model_json_schema()["properties"]
    props = MINE["model.load"].input_schema["properties"]
    for key in ("contextLength", "threads", "gpuLayers"):
        bounds = (props[key]["minimum"], props[key]["maximum"])
        assert bounds == (fields[key]["minimum"], fields[key]["maximum"]), key
    assert props["name"]["pattern"].startswith(fields["name"]["pattern"].rstrip("$"))
