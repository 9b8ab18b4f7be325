"""A sixth domain end to end, registered only through the domain declarations.

tests/fixtures/toydomain declares kind Toy, its controller and that it runs
after storage; nothing else in aios names it. `Domains([*DEFAULT_DOMAINS,
toy.DOMAIN])` is handed to the loader (its kind table) and to the engine
(order, dependencies, kind -> domain, controllers through the CLI's
LazyControllers), and the test validates a Toy spec file (and a bad one, to
the file:line:col), plans, applies against ScriptedRegistry (a test double
of the registry client, reconciler.sdk.ports.Registry, whose catalogue has
toy.state and toy.set) and reads the status as `aios status` prints it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contract.tooldef import ToolSpec
from controllers import DEFAULT_DOMAINS
from reconciler.cli.common import LazyControllers
from reconciler.cli.inspect_cmds import status
from reconciler.engine.reconcile import Engine, Target, load_generation
from reconciler.engine.store import Store
from specs.domains import Domains
from specs.errors import SpecError
from specs.loader import load_paths
from tests.fixtures import toydomain

DOMAINS = Domains([*DEFAULT_DOMAINS, toydomain.DOMAIN])

LAMP_SCHEMA = {
    "type": "object",
    "properties": {"lamp": {"type": "string"}, "state": {"enum": ["on", "off"]}},
    "required": ["lamp", "state"],
    "additionalProperties": False,
}
CATALOGUE = {
    "toy.state": ToolSpec(
        "toy.state", "read the lamps", {"type": "object"}, {}, "low", True, False, 1000,
        ("toy_read",),
    ),
    "toy.set": ToolSpec(  # a write tool: it needs a *_write capability
        "toy.set", "switch a lamp", LAMP_SCHEMA, {}, "low", True, True, 1000, ("toy_write",)
    ),
}

GOOD = """\
apiVersion: aios.dev/v1
kind: Toy
metadata:
  name: hello
spec:
  lamps:
    hall: "on"
    porch: "off"
"""
BAD = GOOD.replace('porch: "off"', "porch: dim")


@dataclass(frozen=True)
class Result:
    output: dict[str, Any]
    execution_id: str


class ScriptedRegistry:
    """Test double of the registry client: lamps in memory, toy.* tools only."""

    def __init__(self) -> None:
        self.lamps: dict[str, str] = {"hall": "off"}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.undone: list[str] = []

    async def list_tools(self) -> Mapping[str, ToolSpec]:
        return dict(CATALOGUE)

    async def call(
        self,
        tool: str,
        args: Mapping[str, Any],
        *,
        reason: str,
        on_progress: Callable[[int, int, str], None] | None = None,
    ) -> Result:
        self.calls.append((tool, dict(args)))
        if tool == "toy.state":
            return Result({"lamps": dict(self.lamps)}, "")
        assert tool == "toy.set", tool
        self.lamps[str(args["lamp"])] = str(args["state"])
        return Result({}, f"x{len(self.calls)}")

    async def rollback(self, execution_id: str, reason: str) -> None:
        self.undone.append(execution_id)


def spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text(text)
    return path


def test_the_declaration_derives_order_dependencies_and_kinds() -> None:
    assert DOMAINS.names == ("storage", "packages", "models", "network", "firewall", "toy")
    assert DOMAINS.dependencies["toy"] == frozenset({"storage"})
    assert DOMAINS.kind_domain["Toy"] == "toy"
    assert DOMAINS.kinds.names[-1] == "Toy"
    assert "Toy" not in DEFAULT_DOMAINS.kinds  # registered nowhere else


def test_a_toy_spec_validates_only_with_the_toy_kind_table(tmp_path: Path) -> None:
    path = spec_file(tmp_path, GOOD)
    specset = load_paths([path], DOMAINS.kinds)
    assert specset.keys() == ("Toy/hello",)
    with pytest.raises(SpecError) as info:
        load_paths([path])  # the spec language's own kinds: Toy is unknown
    assert f"{path}:2:7: ?/hello: kind: unknown kind 'Toy'" in info.value.issues[0]


def test_a_bad_toy_spec_is_refused_at_its_file_line_and_column(tmp_path: Path) -> None:
    path = spec_file(tmp_path, BAD)
    with pytest.raises(SpecError) as info:
        load_paths([path], DOMAINS.kinds)
    assert list(info.value.issues) == [
        f"{path}:8:12: Toy/hello: spec.lamps.porch: must be 'on' or 'off'"
    ]


async def test_plan_apply_and_status_of_the_toy_domain(tmp_path: Path) -> None:
    specset = load_paths([spec_file(tmp_path, GOOD)], DOMAINS.kinds)
    registry = ScriptedRegistry()
    target = Target(name="registry:memory", address="memory", state_dir=tmp_path / "state")
    store = Store(target.state_dir)
    engine = Engine(target, store, registry, LazyControllers(declared=DOMAINS), DOMAINS)
    try:
        planned = await engine.plan(engine.merge(specset))
        assert [d.domain for d in planned.plan.domains] == ["toy"], planned.plan.failures
        steps = planned.plan.domains[0].steps
        assert [(s.tool, dict(s.input)) for s in steps] == [
            ("toy.set", {"lamp": "hall", "state": "on"}),
            ("toy.set", {"lamp": "porch", "state": "off"}),
        ]
        result = await engine.apply(planned, assume_yes=True)
        assert result.all_ready and result.generation == 1
        assert registry.lamps == {"hall": "on", "porch": "off"} and registry.undone == []
        writes = [c for c in registry.calls if c[0] == "toy.set"]
        again = await engine.apply(await engine.plan(engine.merge(specset)), assume_yes=True)
        assert again.all_ready and [c for c in registry.calls if c[0] == "toy.set"] == writes
        stored = load_generation(store.current_generation(target.name), DOMAINS.kinds)
        assert [r.key for r in stored] == ["Toy/hello"]
    finally:
        store.close()
    shown = CliRunner().invoke(
        status, ["--registry", "memory", "--state-dir", str(target.state_dir)]
    )
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[0] == "target registry:memory, generation 1"
    assert lines[1].split()[:2] == ["Toy/hello", "Ready"]
