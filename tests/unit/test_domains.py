"""The domain declarations are the one source of truth, and the hand-kept tables agree.

controllers/<domain>/domain.py declares each domain; controllers.DEFAULT_DOMAINS
lists them in run order. What must stay hand-kept because of layering is
checked here: the spec language's kind table (specs.kinds.DEFAULT_KINDS, which
specs keeps because it cannot import controllers), each Controller class's
domain/kinds/observes_changes_of, every controller package being declared, and
the CLI's kind choices. The derived tables are pinned to today's values, and
Domains refuses inconsistent declarations.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import click
import pytest

from controllers import DEFAULT_DOMAINS, load_controller
from reconciler.cli import inspect_cmds, validate
from reconciler.engine.order import dependencies
from specs.base import KINDS
from specs.domains import Domain, Domains
from specs.kinds import DEFAULT_KINDS

ROOT = Path(__file__).resolve().parents[2]


def test_the_spec_side_kind_table_is_the_declared_one() -> None:
    assert dict(DEFAULT_KINDS) == dict(DEFAULT_DOMAINS.kinds)
    assert DEFAULT_KINDS.names == DEFAULT_DOMAINS.kinds.names == KINDS


def test_every_controller_package_is_declared_once() -> None:
    packages = sorted(p.parent.name for p in (ROOT / "controllers").glob("*/__init__.py"))
    assert sorted(DEFAULT_DOMAINS.names) == packages
    for name in packages:
        assert (ROOT / "controllers" / name / "domain.py").is_file()


@pytest.mark.parametrize("name", DEFAULT_DOMAINS.names)
def test_each_controller_reads_its_declaration(name: str) -> None:
    declared = DEFAULT_DOMAINS[name]
    controller = load_controller(declared)
    assert controller.domain == name
    assert controller.kinds == tuple(declared.kinds)
    assert load_controller(declared) is controller
    for kind in declared.kinds:
        model = DEFAULT_KINDS.model(kind, object)
        assert getattr(model, "KIND", None) == kind


def test_derived_tables_follow_the_declarations() -> None:
    declared = tuple(DEFAULT_DOMAINS)
    assert DEFAULT_DOMAINS.names == tuple(d.name for d in declared)
    assert DEFAULT_DOMAINS.kind_domain == {k: d.name for d in declared for k in d.kinds}
    assert dict(DEFAULT_DOMAINS.dependencies) == {d.name: frozenset(d.after) for d in declared}
    assert dependencies((), DEFAULT_DOMAINS) == dict(DEFAULT_DOMAINS.dependencies)


BUILT_IN = ("storage", "packages", "models", "network", "firewall")


def test_the_five_built_in_domains_keep_their_order_and_edges() -> None:
    """Today's run order and default edges (a sixth domain may sit anywhere among them)."""
    assert tuple(n for n in DEFAULT_DOMAINS.names if n in BUILT_IN) == BUILT_IN
    deps = DEFAULT_DOMAINS.dependencies
    assert {n: deps[n] for n in BUILT_IN} == {
        "storage": frozenset(),
        "packages": frozenset({"storage"}),
        "models": frozenset({"storage", "packages"}),
        "network": frozenset(),
        "firewall": frozenset({"network"}),
    }
    kinds = {"Network": "network", "Firewall": "firewall", "Packages": "packages"}
    kinds |= {"Storage": "storage", "Models": "models"}
    assert {k: DEFAULT_DOMAINS.kind_domain[k] for k in kinds} == kinds


def test_cli_kind_choices_come_from_the_tables() -> None:
    (kind,) = [p for p in validate.schema.params if p.name == "kind"]
    assert isinstance(kind.type, click.Choice)
    assert tuple(kind.type.choices) == DEFAULT_KINDS.names
    assert list(inspect_cmds.KINDS.choices) == sorted(DEFAULT_DOMAINS.kind_domain)


def test_the_independence_contract_covers_every_domain_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    independence = [c for c in contracts if c["type"] == "independence"]
    assert any(c["modules"] == ["controllers.*"] for c in independence)


def _domain(name: str, kind: str, **kw: object) -> Domain:
    return Domain(name=name, kinds={kind: f"x.{name}:{kind}"}, controller=f"x.{name}:C", **kw)  # type: ignore[arg-type]


def test_inconsistent_declarations_are_refused() -> None:
    a = _domain("a", "Aa")
    with pytest.raises(ValueError, match="declared twice"):
        Domains([a, a])
    with pytest.raises(ValueError, match="kind Aa is declared by domains a and b"):
        Domains([a, _domain("b", "Aa")])
    with pytest.raises(ValueError, match="runs after c, which must be declared before it"):
        Domains([_domain("b", "Bb", after=frozenset({"c"})), _domain("c", "Cc")])
    with pytest.raises(ValueError, match="observes changes of a, which it does not run after"):
        _domain("b", "Bb", observes_changes_of=frozenset({"a"}))
    with pytest.raises(ValueError, match="cannot run after itself"):
        _domain("b", "Bb", after=frozenset({"b"}))
    with pytest.raises(ValueError, match="declares no kinds"):
        Domain(name="b", kinds={}, controller="x:C")
