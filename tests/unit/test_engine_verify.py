"""Verification after executing: a short bounded re-observation, then undo of residual drift.

Scripted registry doubles on top of test_engine's in-memory FakeRegistry: one
whose reads lag behind its writes (kernel state that settles late), one that
accepts some writes without them taking effect (drift that stays), and a
`toy.once` tool the catalogue marks not reversible. The engine's sleep is
injected and records the waits, so no test sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from contract.tooldef import ToolSpec
from controllers import DEFAULT_DOMAINS
from reconciler.engine.reconcile import Engine, Target, load_generation
from reconciler.engine.store import Store
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.plan import Step
from tests.unit.test_engine import (
    CATALOGUE,
    KEY_SCHEMA,
    FakeRegistry,
    Result,
    Sleeps,
    ToyController,
    ToyState,
    network,
    specset,
)

ONCE = ToolSpec("toy.once", "set, no undo", KEY_SCHEMA, {}, "medium", True, False, 1000,
                ("net_write",))  # fmt: skip


class ScriptedRegistry(FakeRegistry):
    """A double of the registry client. `lag`: after a write, this many reads still
    return the state from before it. `ignored`: keys whose writes succeed (with an
    execution id, reversible) but change nothing. Knows `toy.once` (a set without undo)."""

    def __init__(self) -> None:
        super().__init__()
        self.lag = 0
        self.ignored: set[str] = set()
        self._stale: dict[str, str] | None = None
        self._stale_reads = 0

    async def list_tools(self) -> dict[str, ToolSpec]:
        return {**CATALOGUE, "toy.once": ONCE}

    async def call(
        self,
        tool: str,
        args: Mapping[str, Any],
        *,
        reason: str,
        on_progress: Callable[[int, int, str], None] | None = None,
    ) -> Result:
        if tool == "toy.state":
            if self._stale is not None and self._stale_reads > 0:
                self._stale_reads -= 1
                self.reads.append(str(args.get("space")))
                return Result({"values": dict(self._stale)}, "")
            return await super().call(tool, args, reason=reason)
        space = str(args["space"])
        if self.lag and (self._stale is None or self._stale_reads == 0):
            self._stale = dict(self.data.get(space, {}))
        self._stale_reads = self.lag
        key = str(args["key"])
        if key in self.ignored:
            self.writes += 1
            execution = f"x{self.writes}"
            self.backups[execution] = (space, key, self.data[space].get(key))
            return Result({}, execution)
        real = "toy.set" if tool == "toy.once" else tool
        return await super().call(real, args, reason=reason)


class OnceController(ToyController):
    """Sets keys named net.once.* with toy.once (not reversible), the others as ToyController."""

    def plan(self, diff: Diff, desired: Desired, state: ToyState) -> tuple[Step, ...]:
        return tuple(
            s.model_copy(update={"tool": "toy.once"})
            if s.input["key"].startswith("net.once.")
            else s
            for s in super().plan(diff, desired, state)
        )

    def simulate(self, state: ToyState, steps: Sequence[Step]) -> ToyState:
        return super().simulate(
            state, [s.model_copy(update={"tool": "toy.set"}) if s.tool == "toy.once" else s
                    for s in steps]
        )  # fmt: skip


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def engine(tmp_path: Path, sleeps: Sleeps) -> Engine:
    target = Target(name="toy", address="memory", state_dir=tmp_path / "state")
    return Engine(
        target,
        Store(target.state_dir),
        ScriptedRegistry(),
        {"network": OnceController("network", "Network")},
        DEFAULT_DOMAINS,
        sleep=sleeps,
    )


def registry(engine: Engine) -> ScriptedRegistry:
    assert isinstance(engine.client, ScriptedRegistry)
    return engine.client


async def apply(engine: Engine, *docs: str) -> Any:
    planned = await engine.plan(engine.merge(specset(*docs)))
    return await engine.apply(planned, assume_yes=True)


def by_resource(result: Any) -> dict[str, Any]:
    return {r.resource: r for r in result.reports}


async def test_drift_that_clears_on_the_second_observation_is_ready_without_undo(
    engine: Engine, sleeps: Sleeps
) -> None:
    registry(engine).lag = 1  # the first read after the write still shows the old state
    result = await apply(engine, network("lan", {"net.a": "1"}))
    assert result.all_ready, result.reports
    assert by_resource(result)["Network/lan"].reason == "Reconciled"
    assert sleeps.waits == [0.05], "observed again once, after the first short wait"
    assert registry(engine).rolled_back == [] and registry(engine).data["network"] == {"net.a": "1"}
    assert engine.store.inventory("toy") == {"Network/lan": frozenset({"kv:net.a"})}


async def test_drift_that_remains_undoes_the_domains_reversible_calls(
    engine: Engine, sleeps: Sleeps
) -> None:
    registry(engine).ignored.add("net.stuck")
    result = await apply(
        engine, network("lan", {"net.a": "1", "net.stuck": "1"}), network("wan", {"net.w": "1"})
    )
    assert not result.all_ready
    assert sleeps.waits == [0.05, 0.1, 0.2], "three more observations, then give up"
    assert sorted(registry(engine).rolled_back) == ["x1", "x2", "x3"]
    assert registry(engine).data["network"] == {}, "every call of the domain was undone"
    reports = by_resource(result)
    lan, wan = reports["Network/lan"], reports["Network/wan"]
    assert (lan.outcome, lan.reason, lan.applied) == ("degraded", "ResidualDrift", False)
    assert lan.message == "after apply: add kv:net.stuck; 3 call(s) undone"
    assert (wan.outcome, wan.reason, wan.applied) == ("degraded", "RolledBack", False)
    assert "residual drift in Network/lan" in wan.message and "3 call(s) undone" in wan.message
    assert "3 call(s) undone" in result.summaries["network"]
    assert engine.store.inventory("toy") == {}, "nothing undone joins the inventory"
    assert load_generation(engine.store.current_generation("toy"), engine.domains.kinds) == []
    status = engine.store.status("toy", "Network/lan")
    assert status is not None and "3 call(s) undone" in status.condition("Ready")["message"]  # type: ignore[index]


async def test_a_call_that_is_not_reversible_is_named_and_stays(
    engine: Engine, sleeps: Sleeps
) -> None:
    registry(engine).ignored.add("net.stuck")
    result = await apply(engine, network("lan", {"net.once.x": "1", "net.stuck": "1"}))
    assert registry(engine).rolled_back == ["x2"], "the reversible toy.set was undone"
    assert registry(engine).data["network"] == {"net.once.x": "1"}, "toy.once stays in place"
    lan = by_resource(result)["Network/lan"]
    assert lan.reason == "ResidualDrift" and lan.applied, "a call of it is still in effect"
    assert lan.message == (
        "after apply: add kv:net.stuck; 1 call(s) undone; could not be undone, left in "
        "place: toy.once (x1): not reversible"
    )
    assert engine.store.inventory("toy") == {"Network/lan": frozenset({"kv:net.once.x"})}


async def test_audit_drift_is_not_undone_and_not_reobserved(engine: Engine, sleeps: Sleeps) -> None:
    result = await apply(engine, network("lan", {"net.a": "1"}, mode="audit"))
    assert by_resource(result)["Network/lan"].reason == "DriftDetected"
    assert sleeps.waits == [] and registry(engine).rolled_back == []
