"""The firewall controller's fixture cases (plan and observe) through the shared harness.

Plan cases: tests/controllers/firewall/plan/*.yaml — specs, inventory, the
state recorded from real nft (tests/controllers/firewall/record.py), the
expected changes, steps and no-ops; the harness also checks the verifier
accepts the plan and rejects it with any step dropped or any input scalar
changed. Observe cases: tests/controllers/firewall/observe/*.yaml — real
recorded firewall.ruleset / firewall.canonicalize outputs -> the state, and
which tools observe called. Plus a staleness check: each plan case's
recorded canonical forms belong to its specs as compiled today.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controllers.firewall import CONTROLLER
from controllers.firewall.observe import desired_tables
from tests.controllers.harness import (
    cases,
    desired_from,
    load_case,
    run_observe_case,
    run_plan_case,
)

HERE = Path(__file__).resolve().parent / "firewall"
PLAN = cases(HERE / "plan")
OBSERVE = cases(HERE / "observe")


def test_there_are_enough_cases() -> None:
    assert len(PLAN) >= 10 and len(OBSERVE) >= 3


@pytest.mark.parametrize("path", PLAN, ids=[p.stem for p in PLAN])
def test_plan_case(path: Path) -> None:
    run_plan_case(CONTROLLER, path)


@pytest.mark.parametrize("path", OBSERVE, ids=[p.stem for p in OBSERVE])
async def test_observe_case(path: Path) -> None:
    await run_observe_case(CONTROLLER, path)


@pytest.mark.parametrize("path", PLAN, ids=[p.stem for p in PLAN])
def test_recorded_canonical_forms_match_the_specs(path: Path) -> None:
    case = load_case(path)
    wanted = {digest for _, digest in desired_tables(desired_from(case, CONTROLLER))}
    recorded = {c["digest"] for c in case["state"]["canonical"]}
    assert recorded == wanted, (
        f"{path.name}: the recorded canonical forms are stale; re-record with "
        "`.venv/bin/python -m tests.controllers.firewall.record " + str(path) + "`"
    )
