"""Fixture tests of the network controller: plan cases and recorded observe cases.

Plan cases (tests/controllers/network/plan/*.yaml) run diff -> plan ->
verify with the harness's step-drop and input-mutation checks; observe
cases replay recorded net.state outputs. Also: every change of a plan is
satisfied by some step, plans are byte-identical for the same inputs, and
transactions() folds the steps into one net.apply in order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controllers.network import CONTROLLER
from reconciler.plan import canonical_json
from tests.controllers.harness import (
    cases,
    desired_from,
    load_case,
    run_observe_case,
    run_plan_case,
)

HERE = Path(__file__).parent / "network"
PLAN_CASES = cases(HERE / "plan")
OBSERVE_CASES = cases(HERE / "observe")


@pytest.mark.parametrize("path", PLAN_CASES, ids=[p.stem for p in PLAN_CASES])
def test_plan_case(path: Path) -> None:
    run_plan_case(CONTROLLER, path)


@pytest.mark.parametrize("path", OBSERVE_CASES, ids=[p.stem for p in OBSERVE_CASES])
async def test_observe_case(path: Path) -> None:
    await run_observe_case(CONTROLLER, path)


@pytest.mark.parametrize("path", PLAN_CASES, ids=[p.stem for p in PLAN_CASES])
def test_every_change_is_satisfied_and_plans_are_stable(path: Path) -> None:
    case = load_case(path)
    desired = desired_from(case, CONTROLLER)
    state = CONTROLLER.state_model.model_validate(case["state"])
    diff = CONTROLLER.diff(desired, state)
    if case["expect"].get("destructive"):
        return
    steps = CONTROLLER.plan(diff, desired, state) if diff.changes else ()
    satisfied = {cid for s in steps for cid in s.satisfies}
    assert {c.id for c in diff.changes} <= satisfied, "a change no step satisfies"
    again = CONTROLLER.plan(CONTROLLER.diff(desired, state), desired, state) if diff.changes else ()
    assert canonical_json([s.model_dump(mode="json") for s in steps]) == canonical_json(
        [s.model_dump(mode="json") for s in again]
    )
    assert all(s.reason for s in steps)
    calls = CONTROLLER.transactions(steps)
    if steps:
        assert [c.tool for c in calls] == ["net.apply"]
        commands = calls[0].input["commands"]
        assert [(f"net.{c['op']}", c["args"]) for c in commands] == [
            (s.tool, s.input) for s in steps
        ]
