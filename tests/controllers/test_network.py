"""Fixture tests of the network controller: plan cases and recorded observe cases.

Plan cases (tests/controllers/network/plan/*.yaml) run diff -> plan ->
verify with the harness's step-drop and input-mutation checks; observe
cases replay recorded net.state outputs. Also: every change of a plan is
satisfied by some step, plans are byte-identical for the same inputs, and
transactions() folds the steps into one net.apply in order.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from controllers.network import CONTROLLER
from controllers.network import controller as controller_mod
from controllers.network.state import LinkState, NetState
from reconciler.sdk.controller import Desired
from reconciler.sdk.errors import PermanentError
from reconciler.sdk.plan import Change, Step, canonical_json
from specs.loader import load_documents
from tests.controllers.harness import (
    RecordedReader,
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
    state = NetState.model_validate(case["state"])
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


# --- beyond the fixtures ----------------------------------------------------------


def desired_of(text: str, **extra: Any) -> Desired:
    specset = load_documents([("t.yaml", text.encode())])
    return Desired("network", tuple(specset.resources), **extra)


LAB = """
apiVersion: aios.dev/v1
kind: Network
metadata: {name: lab}
spec:
  links:
    - {name: eth9, kind: ethernet, mtu: 9000}
"""
LO = LinkState(name="lo", kind="loopback", state="up", mtu=65536, mac="00:00:00:00:00:00")


def test_a_missing_ethernet_device_is_never_created() -> None:
    desired = desired_of(LAB)
    state = NetState(links=(LO,))
    diff = CONTROLLER.diff(desired, state)
    assert [c.object for c in diff.changes] == ["link:eth9"]
    with pytest.raises(PermanentError, match="never creates ethernet devices"):
        CONTROLLER.plan(diff, desired, state)


def test_observe_is_one_read_with_only_the_declared_sysctls_and_dns_file() -> None:
    text = LAB.replace(
        "  links:",
        "  sysctls: {net.ipv6.conf.all.forwarding: 1, net.ipv4.ip_forward: 1}\n"
        "  dns: {resolver: unbound, servers: [192.0.2.53]}\n  links:",
    )
    output: dict[str, Any] = {"links": [], "routes": [], "rules": [], "sysctls": {}, "dns": None}
    args = {
        "sysctls": ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"],
        "dns_path": "/etc/unbound/unbound.conf.d/aios-forward.conf",
    }
    reader = RecordedReader([{"tool": "net.state", "args": args, "output": output}])
    asyncio.run(CONTROLLER.observe(reader, desired_of(text)))
    assert reader.calls == ["net.state"]
    bare = RecordedReader([{"tool": "net.state", "args": {"sysctls": []}, "output": output}])
    asyncio.run(CONTROLLER.observe(bare, Desired("network", ())))
    assert bare.calls == ["net.state"]


def test_transactions_fold_steps_into_net_apply_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = [
        Step(tool="net.link_add", input={"name": f"x{i}", "kind": "ifb"}, reason="r")
        for i in range(5)
    ]
    (call,) = CONTROLLER.transactions(steps)
    assert call.tool == "net.apply" and call.steps == (0, 1, 2, 3, 4)
    assert call.input["commands"][4] == {"op": "link_add", "args": {"name": "x4", "kind": "ifb"}}
    monkeypatch.setattr(controller_mod, "APPLY_LIMIT", 2)
    assert [c.steps for c in CONTROLLER.transactions(steps)] == [(0, 1), (2, 3), (4,)]


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("net.link_add", {"name": "lo", "kind": "ifb"}, "already exists"),
        ("net.link_add", {"name": "m0", "kind": "macvlan", "macvlan": {"parent": "no0"}}, "parent"),
        ("net.link_add", {"name": "t0", "kind": "tun", "mac": "02:00:00:00:00:01"}, "no Ethernet"),
        ("net.link_set", {"name": "if0", "mac": "02:00:00:00:00:01"}, "cannot change its MAC"),
        ("net.link_set", {"name": "if0", "master": "lo"}, "not a bridge"),
        ("net.link_delete", {"name": "eth0"}, "cannot be deleted"),
        ("net.addr_delete", {"dev": "if0", "address": "10.0.0.9/24"}, "has no address"),
        ("net.route_replace", {"to": "10.5.0.0/16", "via": "10.9.0.1"}, "not reachable"),
        ("net.route_replace", {"to": "10.5.0.0/16", "dev": "down0"}, "not up"),
        ("net.route_delete", {"to": "10.5.0.0/16", "metric": 0}, "no route"),
        ("net.rule_delete", {"priority": 100}, "no inet rule"),
        ("net.sysctl_set", {"key": "net.ipv4.conf.no0.forwarding", "value": 1}, "does not exist"),
        ("net.dns_set", {"resolver": "unbound", "servers": [], "search": ["x"]}, "resolvconf"),
        ("pkg.install", {"name": "x"}, "not a network tool"),
    ],
)
def test_the_effect_model_refuses_what_the_kernel_or_tool_refuses(
    tool: str, args: dict[str, Any], message: str
) -> None:
    state = NetState(
        links=(
            LO,
            LinkState(name="eth0", kind="ethernet", state="up", mtu=1500),
            LinkState(name="if0", kind="ifb", state="up", mtu=1500, addresses=("10.0.0.1/24",)),
            LinkState(name="down0", kind="ifb", state="down", mtu=1500),
        )
    )
    with pytest.raises(ValueError, match=message):
        CONTROLLER.simulate(state, [Step(tool=tool, input=args, reason="test")])


def test_the_effect_model_runs_net_apply_commands_in_order() -> None:
    commands = [
        {"op": "link_add", "args": {"name": "if1", "kind": "ifb", "state": "up"}},
        {"op": "addr_add", "args": {"dev": "if1", "address": "10.1.0.1/24"}},
        {"op": "route_replace", "args": {"to": "10.2.0.0/16", "via": "10.1.0.254"}},
    ]
    state = CONTROLLER.simulate(
        NetState(links=(LO,)), [Step(tool="net.apply", input={"commands": commands}, reason="r")]
    )
    assert [r.key for r in state.routes] == ["route:inet/main/10.2.0.0/16/0"]
    assert state.routes[0].dev == "if1"
    with pytest.raises(ValueError, match="not reachable"):
        CONTROLLER.simulate(
            NetState(links=(LO,)),
            [Step(tool="net.apply", input={"commands": commands[::2]}, reason="r")],
        )


def _observed_states() -> list[tuple[str, NetState]]:
    out = []
    for path in OBSERVE_CASES:
        expect = load_case(path)["expect"]
        out.append((path.stem, NetState.model_validate(expect)))
    return out


@pytest.mark.parametrize(("name", "state"), _observed_states())
def test_export_validates_and_replans_to_nothing(name: str, state: NetState) -> None:
    documents = CONTROLLER.export(state)
    text = "\n---\n".join(canonical_json(d) for d in documents)
    desired = desired_of(text)
    assert desired.resources, name
    diff = CONTROLLER.diff(desired, state)
    assert not diff.changes, [c.model_dump() for c in diff.changes]
    spec = documents[0]["spec"]
    assert "lo" not in {link["name"] for link in spec["links"]}
    assert "sysctls" not in spec


def test_inventory_takes_links_routes_and_rules_aios_created() -> None:
    def change(obj: str, op: str = "add", field: str = "") -> Change:
        return Change.model_validate(
            {"id": obj, "resource": "Network/x", "object": obj, "op": op, "field": field}
        )

    assert CONTROLLER.created(change("link:br0"))
    assert CONTROLLER.created(change("route:inet/main/default/0"))
    assert CONTROLLER.created(change("rule:inet/1000"))
    assert not CONTROLLER.created(change("address:br0/10.0.0.1/24"))
    assert not CONTROLLER.created(change("sysctl:net.ipv4.ip_forward", "change", "value"))
    assert not CONTROLLER.created(change("link:br0", "change", "mtu"))


@pytest.mark.parametrize("path", PLAN_CASES, ids=[p.stem for p in PLAN_CASES])
def test_no_network_step_is_destructive(path: Path) -> None:
    case = load_case(path)
    desired = desired_from(case, CONTROLLER)
    state = NetState.model_validate(case["state"])
    diff = CONTROLLER.diff(desired, state)
    steps = CONTROLLER.plan(diff, desired, state) if diff.changes else ()
    assert all(CONTROLLER.destructive(state, s) is None and not s.destructive for s in steps)


def test_scope_is_what_the_resources_declare() -> None:
    (path,) = [p for p in OBSERVE_CASES if p.stem == "edge_router_converged"]
    case = load_case(path)
    state = NetState.model_validate(case["expect"])
    desired = desired_from(case, CONTROLLER)
    scoped = CONTROLLER.scope(state, desired.resources)
    assert {x["name"] for x in scoped["links"]} == {
        "br-lan", "veth-lan0", "veth-lan1", "wan0", "uplink1", "mv-dmz0"
    }  # fmt: skip
    assert len(scoped["routes"]) == 4 and len(scoped["rules"]) == 1
    assert set(scoped["sysctls"]) == {
        "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv4.conf.all.rp_filter"
    }  # fmt: skip
    assert "dns" not in scoped


def test_export_leaves_out_what_names_an_interface_outside_the_allow_list() -> None:
    """A link someone else created as 'odd"0' (or a veth whose peer is 'a@b') cannot be
    written in a spec, nor the route and rule naming it: export leaves them out, and
    what it writes still validates and re-plans to nothing."""
    state = NetState.model_validate(
        {
            "links": [
                LO.model_dump(),
                {"name": "eth0", "kind": "ethernet", "state": "up", "mtu": 1500},
                {"name": 'odd"0', "kind": "ifb", "state": "up", "mtu": 1500},
                {
                    "name": "v0",
                    "kind": "veth",
                    "state": "up",
                    "mtu": 1500,
                    "parent": "a@b",
                    "options": {"peer": "a@b"},
                },
            ],
            "routes": [
                {
                    "family": "inet",
                    "table": "main",
                    "to": "10.8.0.0/16",
                    "metric": 0,
                    "dev": 'odd"0',
                    "scope": "link",
                }
            ],
            "rules": [{"family": "inet", "priority": 1000, "iif": 'odd"0', "table": 300}],
        }
    )
    (document,) = CONTROLLER.export(state)
    assert [link["name"] for link in document["spec"]["links"]] == ["eth0"]
    assert "routes" not in document["spec"] and "rules" not in document["spec"]
    desired = desired_of(canonical_json(document))
    assert not CONTROLLER.diff(desired, state).changes
