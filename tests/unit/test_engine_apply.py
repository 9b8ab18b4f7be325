"""The engine's apply folds per-domain outcomes: the planned run is left as it was
planned, a saved plan is checked once, and domains return frozen DomainOutcomes.

Uses tests/unit/test_engine's toy controllers and its in-memory registry double.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from controllers import DEFAULT_DOMAINS
from reconciler.engine.apply import ApplyContext, DomainOutcome, apply_domain
from reconciler.engine.planning import DomainWork
from reconciler.engine.reconcile import Engine, Target
from reconciler.engine.store import Store
from reconciler.sdk.controller import Controller
from tests.unit.test_engine import (
    FakeRegistry,
    ToyController,
    fake,
    firewall,
    network,
    observing,
    specset,
)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    controllers: dict[str, Controller[Any]] = {
        "network": ToyController("network", "Network"),
        "firewall": ToyController("firewall", "Firewall"),
    }
    target = Target(name="toy", address="memory", state_dir=tmp_path / "state")
    return Engine(target, Store(target.state_dir), FakeRegistry(), controllers, DEFAULT_DOMAINS)


def snapshot(work: DomainWork) -> dict[str, tuple[object, str]]:
    """Each field of the planned work: the object itself and a dump of its value."""
    return {f.name: (getattr(work, f.name), repr(getattr(work, f.name))) for f in fields(work)}


async def test_a_replanned_domain_leaves_the_planned_work_alone(engine: Engine) -> None:
    observing(engine, "firewall", frozenset({"network"}))
    planned = await engine.plan(
        engine.merge(specset(network("lan", {"net.a": "1"}), firewall("edge", "filter")))
    )
    works = dict(planned.works)
    before = {d: snapshot(w) for d, w in works.items()}
    assert all(w.steps and w.plan is not None for w in works.values())
    reads = fake(engine).reads.count("firewall")
    result = await engine.apply(planned, assume_yes=True)
    assert result.all_ready
    assert fake(engine).reads.count("firewall") == reads + 2, "firewall was not replanned"
    assert dict(planned.works) == works and all(planned.works[d] is w for d, w in works.items())
    for domain, work in works.items():
        after = snapshot(work)
        for name, (obj, dump) in before[domain].items():
            assert after[name][0] is obj, f"{domain}: planned {name} was replaced"
            assert after[name][1] == dump, f"{domain}: planned {name} was changed in place"


async def test_an_accepted_saved_plan_is_checked_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    real = engine.check_binding

    def counting(saved: Any, planned: Any) -> None:
        checks.append("binding")
        real(saved, planned)

    monkeypatch.setattr(engine, "check_binding", counting)
    s = specset(network("lan", {"net.a": "1"}))
    saved = (await engine.plan(engine.merge(s))).plan
    accepted = engine.check_saved(saved, await engine.plan(engine.merge(s)))
    assert accepted.saved is saved and checks == ["binding"]
    result = await engine.apply(accepted, assume_yes=True, saved=saved)
    assert result.all_ready and checks == ["binding"], "apply checked the binding again"
    s2 = specset(network("lan", {"net.a": "2"}))
    saved2 = (await engine.plan(engine.merge(s2))).plan
    await engine.apply(await engine.plan(engine.merge(s2)), assume_yes=True, saved=saved2)
    assert checks == ["binding", "binding"], "a plan nobody accepted is checked by apply"


async def test_a_domain_returns_a_frozen_outcome(engine: Engine) -> None:
    planned = await engine.plan(engine.merge(specset(network("lan", {"net.a": "1"}))))
    context = ApplyContext(
        target="toy",
        client=engine.client,
        store=engine.store,
        catalogue=planned.catalogue,
        run="r1",
        generation=1,
        modes={"Network/lan": "enforce"},
    )
    with engine.store.writer():
        engine.store.start_run("r1", "toy", 1)
        outcome = await apply_domain(context, planned.works["network"], dep_changed=False)
    assert isinstance(outcome, DomainOutcome) and outcome.ok and outcome.changed
    assert [(r.resource, r.reason) for r in outcome.reports] == [("Network/lan", "Reconciled")]
    assert [(c.tool, eid) for c, eid in outcome.executed] == [("toy.set", "x1")]
    assert outcome.added == {"Network/lan": frozenset({"kv:net.a"})}
    assert engine.store.inventory("toy") == {}, "the engine, not the domain, folds the inventory"
    with pytest.raises(AttributeError):
        outcome.ok = False  # type: ignore[misc]
