"""A plan step's risk comes from the live catalogue, stamped by the engine.

Controllers leave `Step.risk` alone; reconciler.engine.planning.with_risk
fills it from the catalogue the engine got from the registry (ListTools,
`Engine.catalogue()`), before the verifier, the rendered and saved plan and
the saved-plan comparison see it. Proven with a registry double whose
catalogue gives the one tool another risk, and over every real plan case
(tests/controllers/*/plan) with the built-in catalogue: the risk is the
catalogue's, as it was when the controllers looked it up themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from contract.catalogue import catalogue as builtin_catalogue
from contract.tooldef import ToolSpec
from controllers import DEFAULT_DOMAINS
from controllers.firewall import CONTROLLER as FIREWALL
from controllers.models import CONTROLLER as MODELS
from controllers.network import CONTROLLER as NETWORK
from controllers.packages import CONTROLLER as PACKAGES
from controllers.storage import CONTROLLER as STORAGE
from reconciler.engine.planning import with_risk
from reconciler.engine.reconcile import Engine, Target
from reconciler.engine.store import Store
from reconciler.render import render_plan
from reconciler.sdk.controller import Controller, Desired, Diff, StateReader
from reconciler.sdk.errors import PlanRejected
from reconciler.sdk.plan import Frozen, Plan, Step
from specs.loader import load_documents
from tests.controllers.harness import cases, desired_from, load_case

SET_SCHEMA = {
    "type": "object",
    "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
    "required": ["key", "value"],
    "additionalProperties": False,
}


def toy_catalogue(risk: str) -> dict[str, ToolSpec]:
    return {
        "toy.read": ToolSpec("toy.read", "read", {"type": "object"}, {}, "low", True, False, 1000,
                             ("net_read",)),
        "toy.set": ToolSpec("toy.set", "set", SET_SCHEMA, {}, risk, True, True, 1000,  # type: ignore[arg-type]
                            ("net_write",)),
    }  # fmt: skip


class _Result:
    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output
        self.execution_id = ""


class CatalogueDouble:
    """A double of the registry client: an empty key/value store, a given catalogue."""

    def __init__(self, tools: dict[str, ToolSpec]) -> None:
        self.tools = tools

    async def list_tools(self) -> Mapping[str, ToolSpec]:
        return dict(self.tools)

    async def call(
        self,
        tool: str,
        args: Mapping[str, Any],
        *,
        reason: str,
        on_progress: Callable[[int, int, str], None] | None = None,
    ) -> _Result:
        assert tool == "toy.read", "planning only reads"
        return _Result({"values": {}})

    async def rollback(self, execution_id: str, reason: str) -> None:
        raise AssertionError("planning never rolls back")


class KV(Frozen):
    values: dict[str, str]


class SysctlToy(Controller[KV]):
    """Network sysctls as key/values; its planner leaves each step's risk unset."""

    domain: ClassVar[str] = "network"
    kinds: ClassVar[tuple[str, ...]] = ("Network",)
    namespaces: ClassVar[tuple[str, ...]] = ("toy",)
    state_model = KV

    async def observe(self, reader: StateReader, desired: Desired) -> KV:
        return KV(values=(await reader.read("toy.read", {}))["values"])

    def _wanted(self, desired: Desired) -> dict[str, tuple[str, str]]:
        return {
            k: (v, r.key)
            for r in desired.resources
            for k, v in r.spec.sysctls.items()  # type: ignore[attr-defined]
        }

    def diff(self, desired: Desired, state: KV) -> Diff:
        from reconciler.sdk.diffing import Collector

        out = Collector()
        for key, (value, owner) in self._wanted(desired).items():
            if state.values.get(key) != value:
                out.change(owner, f"kv:{key}", "change", "value", old=None, new=value)
        return out.result()

    def plan(self, diff: Diff, desired: Desired, state: KV) -> tuple[Step, ...]:
        return tuple(
            Step(
                tool="toy.set",
                input={"key": c.object.removeprefix("kv:"), "value": c.new},
                reason=f"set {c.object}",
                satisfies=(c.id,),
            )
            for c in diff.changes
        )

    def simulate(self, state: KV, steps: Sequence[Step]) -> KV:
        return KV(values={**state.values, **{s.input["key"]: s.input["value"] for s in steps}})

    def export(self, state: KV) -> list[dict[str, Any]]:
        return []


SPEC = b"""apiVersion: aios.dev/v1
kind: Network
metadata: {name: lan}
spec:
  sysctls: {net.ipv4.ip_forward: "1"}
"""


async def _plan(tmp_path: Path, risk: str) -> Plan:
    target = Target(name="toy", address="memory", state_dir=tmp_path / risk)
    engine = Engine(
        target,
        Store(target.state_dir),
        CatalogueDouble(toy_catalogue(risk)),
        {"network": SysctlToy()},
        DEFAULT_DOMAINS,
    )
    specset = load_documents([("lan.yaml", SPEC)])
    planned = await engine.plan(engine.merge(specset))
    assert planned.plan.complete, planned.plan.failures
    return planned.plan


async def test_the_live_catalogues_risk_is_the_steps_risk(tmp_path: Path) -> None:
    medium, critical = await _plan(tmp_path, "medium"), await _plan(tmp_path, "critical")
    assert [s.risk for s in medium.domains[0].steps] == ["medium"]
    assert [s.risk for s in critical.domains[0].steps] == ["critical"]
    assert "1. toy.set [critical] set kv:net.ipv4.ip_forward" in render_plan(critical)
    assert '"risk": "critical"' in critical.to_json()  # what a saved plan holds


async def test_a_saved_plan_with_another_risk_differs_from_a_fresh_one(tmp_path: Path) -> None:
    target = Target(name="toy", address="memory", state_dir=tmp_path / "s")
    engine = Engine(
        target,
        Store(target.state_dir),
        CatalogueDouble(toy_catalogue("high")),
        {"network": SysctlToy()},
        DEFAULT_DOMAINS,
    )
    merge = engine.merge(load_documents([("lan.yaml", SPEC)]))
    fresh = await engine.plan(merge)
    engine.check_saved(fresh.plan, fresh)  # the same catalogue: equal
    saved = Plan.from_json(fresh.plan.to_json().replace('"risk": "high"', '"risk": "low"'))
    with pytest.raises(PlanRejected, match='risk differs: saved "low", a fresh plan has "high"'):
        engine.check_saved(saved, fresh)


CONTROLLERS: dict[str, Controller[Any]] = {
    "firewall": FIREWALL,
    "models": MODELS,
    "network": NETWORK,
    "packages": PACKAGES,
    "storage": STORAGE,
}
CASES = [
    (domain, path)
    for domain in sorted(CONTROLLERS)
    for path in cases(Path(__file__).parent.parent / "controllers" / domain / "plan")
]


@pytest.mark.parametrize(("domain", "path"), CASES, ids=[f"{d}-{p.stem}" for d, p in CASES])
def test_real_plans_get_the_builtin_catalogues_risk(domain: str, path: Path) -> None:
    controller = CONTROLLERS[domain]
    case = load_case(path)
    desired = desired_from(case, controller)
    state = controller.state_model.model_validate(case["state"])
    diff = controller.diff(desired, state)
    steps = controller.plan(diff, desired, state) if diff.changes else ()
    assert all(s.risk == "low" for s in steps), "a controller looked risk up itself"
    tools = builtin_catalogue()
    stamped = with_risk(steps, tools)
    assert [s.risk for s in stamped] == [tools[s.tool].risk for s in steps]
    other = {
        name: dataclasses.replace(spec, risk="critical" if spec.risk != "critical" else "low")
        for name, spec in tools.items()
    }
    assert all(a.risk != b.risk for a, b in zip(stamped, with_risk(steps, other), strict=True))
