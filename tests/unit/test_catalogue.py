"""The tool catalogue as data (contract.catalogue) and its agreement with the handlers.

contract.catalogue.catalogue() is every built-in ToolSpec, sorted, built
without importing the registry; registry.handlers.index.tool_classes() pairs
each with exactly one handler whose `spec` is that very object; every
definition goes through contract.tooldef.define, which refuses a malformed
one; and no module outside the allowed ones builds a ToolSpec by hand.
"""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import contract.catalogue
from contract.catalogue import catalogue, meta
from contract.tooldef import ToolSpec, define
from registry.core.tool import Tool
from registry.handlers.index import collect, tool_classes

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("contract", "specs", "controllers", "reconciler", "registry", "sandbox")
# Where a ToolSpec may be built without `define`: from what comes in from outside (a
# ListTools answer, a Register call, a plugin's meta file), each with its own checks.
BARE_TOOLSPEC_ALLOWED = {
    "contract/tooldef.py",  # define itself
    "reconciler/client.py",  # spec_from_definition: ListTools answers
    "registry/server/external.py",  # from_definition: Register (strict and aiOS-lenient)
    "registry/server/plugins.py",  # a plugin's meta file
}


def test_the_catalogue_is_sorted_and_complete() -> None:
    tools = catalogue()
    assert list(tools) == sorted(tools)
    assert all(name == spec.name for name, spec in tools.items())
    namespaces = {spec.namespace for spec in tools.values()}
    assert namespaces == {"net", "firewall", "pkg", "storage", "model", "fs", "registry"}
    assert len([n for n in tools if n.startswith("fs.")]) == 13


def test_each_call_returns_a_fresh_dict_of_the_same_objects() -> None:
    first, second = catalogue(), catalogue()
    first.pop("fs.read")
    assert "fs.read" in second
    assert all(second[name] is spec for name, spec in first.items())


def test_the_catalogue_imports_no_registry_specs_or_pydantic() -> None:
    code = (
        "import sys, contract.catalogue\n"
        "contract.catalogue.catalogue()\n"
        "top = ('registry', 'specs', 'reconciler', 'controllers', 'sandbox', 'pydantic', 'grpc',"
        " 'jsonschema')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in top))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_importing_the_package_imports_no_domain_module() -> None:
    code = (
        "import sys, contract.catalogue.parts\n"
        "print(sorted(m for m in sys.modules if m.startswith('contract.catalogue.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['contract.catalogue.parts']"


def test_every_handler_carries_the_catalogue_definition_itself() -> None:
    classes, tools = tool_classes(), catalogue()
    assert list(classes) == list(tools)
    for name, cls in classes.items():
        assert cls.spec is tools[name], name


def _handler(spec: ToolSpec) -> type[Tool]:
    return type(f"Handler_{spec.name}", (Tool,), {"spec": spec})


def test_collect_refuses_a_copy_of_a_definition() -> None:
    definitions = {meta.REGISTRY_JOBS.name: meta.REGISTRY_JOBS}
    copy = dataclasses.replace(meta.REGISTRY_JOBS)
    assert copy == meta.REGISTRY_JOBS
    with pytest.raises(RuntimeError, match="does not carry the contract catalogue's definition"):
        collect([("fake", [_handler(copy)])], definitions)
    assert collect([("fake", [_handler(meta.REGISTRY_JOBS)])], definitions)


def test_collect_refuses_an_unknown_tool_two_handlers_and_a_missing_one() -> None:
    jobs = meta.REGISTRY_JOBS
    stray = define(
        "registry.stray",
        "Not in the catalogue.",
        {},
        {},
        risk="low",
        idempotent=True,
        reversible=False,
        timeout_ms=1000,
        capabilities=(),
    )
    with pytest.raises(RuntimeError, match=r"registry\.stray"):
        collect([("fake", [_handler(stray)])], {jobs.name: jobs})
    with pytest.raises(RuntimeError, match="two handlers"):
        collect([("a", [_handler(jobs)]), ("b", [_handler(jobs)])], {jobs.name: jobs})
    with pytest.raises(RuntimeError, match=r"no handler for registry\.jobs"):
        collect([("fake", [])], {jobs.name: jobs})


@pytest.fixture
def rebuilt() -> Iterator[None]:
    contract.catalogue._build.cache_clear()
    yield
    contract.catalogue._build.cache_clear()


@pytest.mark.usefixtures("rebuilt")
def test_a_name_defined_twice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from contract.catalogue import fs

    monkeypatch.setattr(meta, "ALL", (meta.REGISTRY_JOBS, fs.FS_READ))
    with pytest.raises(RuntimeError, match=r"fs\.read defined twice"):
        catalogue()


@pytest.mark.usefixtures("rebuilt")
def test_an_unknown_rollback_tool_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    undo = dataclasses.replace(meta.REGISTRY_JOBS, rollback_tool="registry.undo")
    monkeypatch.setattr(meta, "ALL", (undo,))
    with pytest.raises(RuntimeError, match=r"rollback tool registry\.undo is unknown"):
        catalogue()


GOOD = {
    "name": "toy.set",
    "description": "Set a toy.",
    "input_schema": {"type": "object"},
    "output_schema": {},
    "risk": "low",
    "idempotent": True,
    "reversible": False,
    "timeout_ms": 1000,
    "capabilities": ("toy_write",),
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "toyset"}, "<namespace>.<op>"),
        ({"name": "Toy.set"}, "<namespace>.<op>"),
        ({"description": "  "}, "description is empty"),
        ({"input_schema": {"type": "array"}}, "input schema is not an object schema"),
        ({"output_schema": {"properties": {}}}, "output schema is not an object schema"),
        ({"risk": "severe"}, "risk 'severe'"),
        ({"timeout_ms": 0}, "timeout_ms must be positive"),
        ({"capabilities": ["toy_write"]}, "tuple of non-empty strings"),
        ({"capabilities": ("",)}, "tuple of non-empty strings"),
        ({"rollback_tool": "undo"}, "rollback tool 'undo'"),
    ],
)
def test_define_refuses_a_malformed_definition(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        define(**{**GOOD, **change})  # type: ignore[arg-type]


def test_define_keeps_the_schemas_as_given() -> None:
    schema = {"type": "object", "properties": {"b": {}, "a": {}}}
    spec = define(**{**GOOD, "input_schema": schema})  # type: ignore[arg-type]
    assert spec.input_schema is schema
    assert spec == ToolSpec(**{**GOOD, "input_schema": schema})  # type: ignore[arg-type]


def _bare_toolspec_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "ToolSpec")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "ToolSpec")
        )
    ]


def test_no_tool_is_defined_without_define() -> None:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel.startswith("contract/_gen/") or rel in BARE_TOOLSPEC_ALLOWED:
                continue
            if lines := _bare_toolspec_calls(path):
                found[rel] = lines
    assert found == {}, "build ToolSpecs with contract.tooldef.define"
