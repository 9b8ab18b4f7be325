"""The incremental repair: the patch planner (controllers.firewall.patch) and the effect
model's simulation of a patch, through the controller (diff -> plan -> simulate -> diff).

No nft: the texts are nft's canonical form of simple rules (what `nft list table`
prints for them); tests/system/test_firewall_controller.py runs the same against
the kernel.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from controllers.firewall import CONTROLLER
from controllers.firewall.desired import compiled, declared
from controllers.firewall.patch import MIN_OPS, apply_ops, plan_patch
from controllers.firewall.state import Canonical, FirewallState, build_state, text_digest
from reconciler.sdk.controller import Desired
from reconciler.sdk.plan import Step
from specs.loader import load_documents

INPUT = [f"ip saddr 10.0.{i}.0/24 tcp dport {1000 + i} accept" for i in range(10)]
OTHER = ["tcp dport 80 accept", "tcp dport 443 accept", "udp dport 53 accept"]


def text(input_rules: list[str], other_rules: list[str]) -> str:
    lines = ["table inet filter {", "\tchain input {"]
    lines.append("\t\ttype filter hook input priority filter; policy accept;")
    lines += [f"\t\t{r}" for r in input_rules]
    lines += ["\t}", "", "\tchain other {"]
    lines += [f"\t\t{r}" for r in other_rules]
    lines += ["\t}", "}", ""]
    return "\n".join(lines)


def desired(input_rules: list[str] = INPUT, other_rules: list[str] = OTHER) -> Desired:
    doc = {
        "apiVersion": "aios.dev/v1",
        "kind": "Firewall",
        "metadata": {"name": "t"},
        "spec": {
            "tables": [
                {
                    "family": "inet",
                    "name": "filter",
                    "chains": [
                        {
                            "name": "input",
                            "type": "filter",
                            "hook": "input",
                            "priority": "filter",
                            "policy": "accept",
                            "rules": input_rules,
                        },
                        {"name": "other", "rules": other_rules},
                    ],
                }
            ]
        },
    }
    specset = load_documents([("t.yaml", json.dumps(doc).encode())])
    return Desired("firewall", tuple(specset.resources))


def live_state(want: Desired, live: list[tuple[str, int]], other: list[tuple[str, int]]) -> Any:
    """The state observe would return: the live table with handles, the canonical form."""
    ((_, table),) = declared(want).values()
    _, digest = compiled(table)
    canonical = _canonical_of(want)
    return build_state(
        {("inet", "filter"): text([r for r, _ in live], [r for r, _ in other])},
        {digest: Canonical(digest=digest, family="inet", name="filter", text=canonical)},
        complete=False,
        handles={
            ("inet", "filter"): {
                "input": tuple(h for _, h in live),
                "other": tuple(h for _, h in other),
            }
        },
    )


def _canonical_of(want: Desired) -> str:
    ((_, table),) = declared(want).values()
    chains = {c.name: c.rules for c in table.chains}
    return text(list(chains["input"]), list(chains["other"]))


DESIRED = desired()
HANDLED = [(r, 10 + i) for i, r in enumerate(INPUT)]  # handles 10..19
OTHER_HANDLED = [(r, 30 + i) for i, r in enumerate(OTHER)]  # handles 30..32


def heal(state: FirewallState, want: Desired = DESIRED) -> tuple[Step, ...]:
    """Plan the repair; the simulated result must be the desired table exactly."""
    change = CONTROLLER.diff(want, state)
    assert change.changes, "nothing drifted"
    steps = CONTROLLER.plan(change, want, state)
    after = CONTROLLER.simulate(state, steps)
    assert not CONTROLLER.diff(want, after).changes
    assert after.live()[("inet", "filter")] == _canonical_of(want)
    return steps


def ops_of(steps: tuple[Step, ...]) -> list[dict[str, Any]]:
    assert len(steps) == 1 and set(steps[0].input) == {"patch"}, steps
    (entry,) = steps[0].input["patch"]
    assert entry["family"] == "inet" and entry["name"] == "filter"
    return list(entry["ops"])


def without(rules: list[tuple[str, int]], index: int) -> list[tuple[str, int]]:
    return rules[:index] + rules[index + 1 :]


def test_a_rule_deleted_in_the_middle_is_inserted_before_the_next_one() -> None:
    state = live_state(DESIRED, without(HANDLED, 5), OTHER_HANDLED)
    steps = heal(state)
    assert ops_of(steps) == [{"op": "insert", "chain": "input", "handle": 16, "rule": INPUT[5]}]
    entry = steps[0].input["patch"][0]
    assert entry["expect"] == text_digest(state.live()[("inet", "filter")])
    assert "patch table inet/filter" in steps[0].reason


def test_a_rule_deleted_at_the_start() -> None:
    steps = heal(live_state(DESIRED, HANDLED[1:], OTHER_HANDLED))
    assert ops_of(steps) == [{"op": "insert", "chain": "input", "handle": 11, "rule": INPUT[0]}]


def test_rules_deleted_at_the_end_are_added_after_the_last_that_stays() -> None:
    steps = heal(live_state(DESIRED, HANDLED[:-2], OTHER_HANDLED))
    assert ops_of(steps) == [  # in reverse: each lands right after the anchor
        {"op": "add", "chain": "input", "handle": 17, "rule": INPUT[9]},
        {"op": "add", "chain": "input", "handle": 17, "rule": INPUT[8]},
    ]


def test_a_changed_rule_is_deleted_and_put_back_in_its_place() -> None:
    live = list(HANDLED)
    live[3] = ("ip saddr 10.0.3.0/24 tcp dport 9999 accept", 13)
    steps = heal(live_state(DESIRED, live, OTHER_HANDLED))
    assert ops_of(steps) == [
        {"op": "delete", "chain": "input", "handle": 13},
        {"op": "insert", "chain": "input", "handle": 14, "rule": INPUT[3]},
    ]


def test_an_extra_rule_is_deleted_by_handle() -> None:
    live = [*HANDLED[:4], ("tcp dport 23 accept", 99), *HANDLED[4:]]
    steps = heal(live_state(DESIRED, live, OTHER_HANDLED))
    assert ops_of(steps) == [{"op": "delete", "chain": "input", "handle": 99}]


def test_two_chains_drifted_in_one_patch() -> None:
    other = [OTHER_HANDLED[0], ("tcp dport 8080 accept", 77), OTHER_HANDLED[2]]
    steps = heal(live_state(DESIRED, without(HANDLED, 2), other))
    assert ops_of(steps) == [
        {"op": "insert", "chain": "input", "handle": 13, "rule": INPUT[2]},
        {"op": "delete", "chain": "other", "handle": 77},
        {"op": "insert", "chain": "other", "handle": 32, "rule": OTHER[1]},
    ]


def test_an_emptied_chain_gets_its_rules_appended() -> None:
    steps = heal(live_state(DESIRED, HANDLED, []))
    assert ops_of(steps) == [{"op": "add", "chain": "other", "rule": r} for r in OTHER]


def test_large_drift_replaces_the_table_whole() -> None:
    many = [f"tcp dport {2000 + i} accept" for i in range(200)]
    want = desired(many)
    live = [(r, 100 + i) for i, r in enumerate(many) if i % 2]  # 100 of 200 gone
    steps = heal(live_state(want, live, OTHER_HANDLED), want)
    assert set(steps[0].input) == {"tables"}
    assert "whole" in steps[0].reason


def test_the_limit_counts_ops() -> None:
    many = [f"tcp dport {2000 + i} accept" for i in range(40)]
    want = desired(many)
    live = [(r, 100 + i) for i, r in enumerate(many)][MIN_OPS:]  # MIN_OPS missing: patched
    assert set(heal(live_state(want, live, OTHER_HANDLED), want)[0].input) == {"patch"}
    live = [(r, 100 + i) for i, r in enumerate(many)][MIN_OPS + 1 :]  # one more: whole
    assert set(heal(live_state(want, live, OTHER_HANDLED), want)[0].input) == {"tables"}


@pytest.mark.parametrize(
    "live",
    [
        text(INPUT[1:], OTHER).replace("policy accept", "policy drop"),  # a chain head changed
        text(INPUT[1:], OTHER).replace("\tchain other {\n", "\tchain renamed {\n"),
        text(INPUT[1:], OTHER).replace(
            "\tchain input {", "\tset s {\n\t\ttype ipv4_addr\n\t}\n\n\tchain input {"
        ),
    ],
    ids=["chain-head", "chain-renamed", "set-added"],
)
def test_no_patch_when_chains_or_sets_differ(live: str) -> None:
    handles = {"input": tuple(range(11, 20)), "other": (30, 31, 32), "renamed": (30, 31, 32)}
    assert plan_patch(live, handles, text(INPUT, OTHER)) is None


def test_no_patch_without_handles() -> None:
    live = text(INPUT[1:], OTHER)
    assert plan_patch(live, {"input": tuple(range(11, 20))}, text(INPUT, OTHER)) is None
    assert plan_patch(live, {"input": (1, 2), "other": (30, 31, 32)}, text(INPUT, OTHER)) is None
    state = build_state({("inet", "filter"): live}, {}, complete=False)  # not listed
    assert state.handles() == {}


def test_apply_ops_runs_in_order_like_the_kernel() -> None:
    live = text(INPUT[:3], OTHER)
    handles = {"input": (1, 2, 3), "other": (4, 5, 6)}
    ops: list[dict[str, Any]] = [
        {"op": "delete", "chain": "input", "handle": 2},
        {"op": "add", "chain": "input", "handle": 1, "rule": "tcp dport 1 accept"},
        {"op": "add", "chain": "input", "handle": 1, "rule": "tcp dport 2 accept"},
        {"op": "insert", "chain": "other", "rule": "tcp dport 3 accept"},
        {"op": "add", "chain": "other", "rule": "tcp dport 4 accept"},
    ]
    after, new = apply_ops(live, handles, ops)
    assert after == text(
        [INPUT[0], "tcp dport 2 accept", "tcp dport 1 accept", INPUT[2]],
        ["tcp dport 3 accept", *OTHER, "tcp dport 4 accept"],
    )
    assert new == {"input": (1, 0, 0, 3), "other": (0, 4, 5, 6, 0)}


@pytest.mark.parametrize(
    ("op", "message"),
    [
        ({"op": "delete", "chain": "input", "handle": 99}, "no rule with handle 99"),
        ({"op": "insert", "chain": "input", "handle": 99, "rule": "accept"}, "handle 99"),
        ({"op": "add", "chain": "nope", "rule": "accept"}, "no chain"),
        ({"op": "delete", "chain": "input"}, "names the rule's handle"),
        ({"op": "add", "chain": "input", "rule": "accept; drop"}, "may not contain"),
        ({"op": "add", "chain": "input", "rule": " accept"}, "one statement as nft prints"),
        ({"op": "insert", "chain": "input", "handle": 0, "rule": "accept"}, "not a handle"),
    ],
)
def test_apply_ops_refuses_what_the_kernel_would(op: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        apply_ops(text(INPUT[:3], OTHER), {"input": (1, 2, 3), "other": (4, 5, 6)}, [op])


def test_the_effect_model_refuses_a_patch_it_cannot_run() -> None:
    state = live_state(DESIRED, without(HANDLED, 5), OTHER_HANDLED)
    (step,) = heal(state)
    entry = step.input["patch"][0]

    def with_entry(**changed: Any) -> list[Step]:
        patch = [{**entry, **changed}]
        return [step.model_copy(update={"input": {"patch": patch}})]

    with pytest.raises(ValueError, match="expects another text"):
        CONTROLLER.simulate(state, with_entry(expect="0" * 64))
    gone = [{**entry["ops"][0], "handle": 15}]  # the rule that was deleted
    with pytest.raises(ValueError, match="no rule with handle 15"):
        CONTROLLER.simulate(state, with_entry(ops=gone))
    with pytest.raises(ValueError, match="no live table with handles"):
        CONTROLLER.simulate(build_state(state.live(), state.canon(), complete=False), [step])
    with pytest.raises(ValueError, match="twice"):
        CONTROLLER.simulate(state, [step, step])


def test_a_patch_that_misses_the_desired_table_leaves_drift() -> None:
    """The verifier diffs the simulated state: a wrong patch is seen (and rejected)."""
    state = live_state(DESIRED, without(HANDLED, 5), OTHER_HANDLED)
    (step,) = heal(state)
    entry = step.input["patch"][0]
    for ops in (
        [{**entry["ops"][0], "handle": 17}],  # the right rule in the wrong place
        [{**entry["ops"][0], "rule": "tcp dport 5 accept"}],  # the wrong rule
    ):
        wrong = step.model_copy(update={"input": {"patch": [{**entry, "ops": ops}]}})
        after = CONTROLLER.simulate(state, [wrong])
        assert CONTROLLER.diff(DESIRED, after).changes


def test_transactions_fold_patches_with_tables_and_deletes() -> None:
    patch = Step(tool="firewall.apply", input={"patch": [{"name": "a"}]}, reason="r")
    table = Step(tool="firewall.apply", input={"tables": [{"name": "b"}]}, reason="r")
    delete = Step(tool="firewall.apply", input={"delete": [{"name": "c"}]}, reason="r")
    (call,) = CONTROLLER.transactions([table, patch, delete])
    assert call.input == {
        "tables": [{"name": "b"}],
        "patch": [{"name": "a"}],
        "delete": [{"name": "c"}],
    }


def test_forced_and_destructive_see_the_patched_table() -> None:
    state = live_state(DESIRED, without(HANDLED, 5), OTHER_HANDLED)
    (step,) = heal(state)
    assert CONTROLLER.destructive(state, step) is None  # policy accept: nothing locked out
    assert not CONTROLLER.forced(DESIRED, step)  # no force: true in the spec
