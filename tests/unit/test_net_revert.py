"""Restore planning: before-image + current state -> the commands that bring it back.

Link states come from the captured fixture tests/fixtures/net/addr_detail.json
(real veth, bridge, macvlan, vxlan, ifb, tun, tap); each case edits a copy
to play "what changed since the snapshot" and checks the planned commands.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from contract.catalogue.links import BLOCKS
from contract.vocab.links import LINK_KINDS
from controllers.network.desired import MUTABLE_OPTIONS
from registry.core.errors import ToolError
from registry.drivers.net import revert
from registry.drivers.net.revert import Snapshot, plan
from registry.drivers.net.state import LinkState, RouteState, RuleState, parse_links

FIXTURES = Path(__file__).parents[1] / "fixtures" / "net"
LINKS = {
    link["name"]: link
    for link in parse_links(json.loads((FIXTURES / "addr_detail.json").read_text()))
}
DOUBLES = {
    link["name"]: link
    for link in parse_links(json.loads((FIXTURES / "doubles_addr_detail.json").read_text()))
}


def link(source: str, **changes: Any) -> LinkState:
    found = copy.deepcopy(LINKS.get(source) or DOUBLES[source])
    found.update(changes)  # type: ignore[typeddict-item]
    return found


def route(**fields: Any) -> RouteState:
    base: dict[str, Any] = {
        "family": "inet",
        "table": "main",
        "to": "10.5.0.0/16",
        "via": "10.0.0.2",
        "dev": "i0",
        "metric": 0,
        "proto": "boot",
        "scope": "global",
        "src": None,
        "type": "unicast",
        "onlink": False,
    }
    base.update(fields)
    return base  # type: ignore[return-value]


def rule(**fields: Any) -> RuleState:
    base: dict[str, Any] = {
        "family": "inet",
        "priority": 100,
        "from": "10.0.0.0/8",
        "to": None,
        "iif": None,
        "oif": None,
        "fwmark": None,
        "table": 100,
        "action": "lookup",
    }
    base.update(fields)
    return base  # type: ignore[return-value]


def snap(**parts: Any) -> Snapshot:
    base: dict[str, Any] = {
        "keys": [],
        "links": {},
        "link_routes": {},
        "routes": {},
        "rules": {},
        "sysctls": {},
        "files": {},
    }
    base.update(parts)
    for name in base["links"]:
        base["link_routes"].setdefault(name, [])
    return base  # type: ignore[return-value]


def texts(before: Snapshot, now: Snapshot) -> list[str]:
    return [c.text for c in plan(before, now)]


def test_nothing_differs_nothing_to_do() -> None:
    state = snap(
        links={n: LINKS[n] for n in ("v0", "v1", "i0", "br0")},
        routes={"inet/main/10.5.0.0/16": [route()]},
        rules={"inet/100": [rule()]},
        sysctls={"net.ipv4.ip_forward": "0"},
        files={"/etc/resolv.conf": {"content": "nameserver 10.0.0.1\n", "mode": 0o644}},
    )
    assert texts(state, copy.deepcopy(state)) == []


def test_a_link_created_after_the_snapshot_is_deleted() -> None:
    assert texts(snap(links={"i9": None}), snap(links={"i9": link("i0", name="i9")})) == [
        "link del dev i9"
    ]


def test_a_deleted_veth_pair_comes_back_with_mtu_mac_master_and_state() -> None:
    before = snap(links={"v0": LINKS["v0"], "v1": LINKS["v1"]})
    now = snap(links={"v0": None, "v1": None})
    v1_mac = LINKS["v1"]["mac"]
    assert texts(before, now) == [
        "link add dev v0 mtu 1400 address 02:00:00:00:00:10 type veth peer name v1",
        "link set dev v0 master br0",
        "link set dev v0 up",
        "link set dev v1 mtu 1500",
        f"link set dev v1 address {v1_mac}",
    ]


def test_a_deleted_ifb_comes_back_with_its_addresses_and_routes() -> None:
    before = snap(links={"i0": LINKS["i0"]}, link_routes={"i0": [route(proto="static")]})
    now = snap(links={"i0": None})
    assert texts(before, now) == [
        "link add dev i0 mtu 1400 address 02:00:00:00:00:01 type ifb",
        "addr replace 10.0.0.1/24 dev i0",
        "addr replace 2001:db8::1/64 dev i0",  # fe80:: comes back by itself
        "link set dev i0 up",
        "route replace 10.5.0.0/16 via 10.0.0.2 dev i0 table main metric 0 proto static",
    ]


def test_changed_attributes_are_reset() -> None:
    before = snap(links={"i0": LINKS["i0"], "v0": LINKS["v0"], "br0": LINKS["br0"]})
    now = snap(
        links={
            "i0": link(
                "i0",
                mtu=9000,
                state="down",
                addresses=[
                    {
                        "address": "10.0.0.1/24",
                        "family": "inet",
                        "scope": "global",
                        "dynamic": False,
                    },
                    {
                        "address": "10.0.0.7/24",
                        "family": "inet",
                        "scope": "global",
                        "dynamic": False,
                    },
                ],
            ),
            "v0": link("v0", master=None, mac="02:00:00:00:00:99"),
            "br0": link("br0", info={"stp": True, "forward_delay": 1500}),
        }
    )
    assert texts(before, now) == [
        "link set dev i0 mtu 1400",
        "addr del 10.0.0.7/24 dev i0",
        "addr replace 2001:db8::1/64 dev i0",
        "link set dev i0 up",
        "link set dev v0 master br0",
        "link set dev v0 address 02:00:00:00:00:10",
        "link set dev br0 type bridge stp_state 0 forward_delay 1500",
    ]


def test_a_changed_kind_or_immutable_option_means_delete_and_recreate() -> None:
    before = snap(links={"vx0": LINKS["vx0"]})
    now = snap(links={"vx0": link("vx0", info={**LINKS["vx0"]["info"], "id": 99})})
    assert texts(before, now)[:2] == [
        "link del dev vx0",
        "link add dev vx0 mtu 1500 address "
        f"{LINKS['vx0']['mac']} type vxlan id 42 local 10.0.0.1 remote 10.9.9.9 dstport 4789",
    ]
    swapped = snap(links={"i0": link("i0", kind="veth", info={"peer": "x"}, parent="x")})
    assert texts(snap(links={"i0": LINKS["i0"]}), swapped)[:2] == [
        "link del dev i0",
        "link add dev i0 mtu 1400 address 02:00:00:00:00:01 type ifb",
    ]


def test_an_option_link_set_cannot_change_means_recreate() -> None:
    """macvlan's mode: net.link_set cannot set it, so a restore recreates the link (as
    the network controller plans a recreate for it) instead of leaving it changed."""
    before = snap(links={"mv0": LINKS["mv0"], "v1": LINKS["v1"]})
    now = snap(
        links={"mv0": link("mv0", info={**LINKS["mv0"]["info"], "mode": "vepa"}), "v1": LINKS["v1"]}
    )
    assert texts(before, now)[:2] == [
        "link del dev mv0",
        f"link add dev mv0 mtu 1500 address {LINKS['mv0']['mac']} link v1 "
        "type macvlan mode private",
    ]


def test_restore_and_controller_agree_on_what_link_set_changes() -> None:
    """Each kind's block options are either settable in place (the controller's
    MUTABLE_OPTIONS) or need a recreate (the restore's), never both, never neither."""
    for row in LINK_KINDS:
        if row.block is None:
            continue
        settable = set(MUTABLE_OPTIONS.get(row.name, ()))
        fixed = set(revert._IMMUTABLE[row.name])
        assert not settable & fixed, row.name
        assert settable | fixed == set(BLOCKS[row.block]["properties"]), row.name
    assert MUTABLE_OPTIONS == {"bridge": ("stp", "forward_delay")}


def test_deleting_a_parent_takes_its_children_without_a_second_delete() -> None:
    before = snap(links={"v1": None, "v0": None, "mv0": None})
    now = snap(links={"v1": LINKS["v1"], "v0": LINKS["v0"], "mv0": LINKS["mv0"]})
    assert texts(before, now) == ["link del dev v1"]


def test_parents_are_created_before_children() -> None:
    before = snap(links={"mv0": LINKS["mv0"], "v1": LINKS["v1"], "v0": LINKS["v0"]})
    now = snap(links={"mv0": None, "v1": None, "v0": None})
    cmds = texts(before, now)
    assert cmds.index(
        f"link add dev v1 mtu 1500 address {LINKS['v1']['mac']} type veth peer name v0"
    ) < cmds.index(
        f"link add dev mv0 mtu 1500 address {LINKS['mv0']['mac']} link v1 type macvlan mode private"
    )


def test_links_that_cannot_be_recreated() -> None:
    for name in ("wg0", "e0"):
        with pytest.raises(ToolError, match=f"cannot recreate link {name}"):
            plan(snap(links={name: DOUBLES[name]}), snap(links={name: None}))


def test_route_groups() -> None:
    key = "inet/100/10.5.0.0/16"
    wanted = route(table=100, metric=5)
    extra = route(table=100, metric=7, via="10.0.0.3")
    assert texts(snap(routes={key: [wanted]}), snap(routes={key: [extra]})) == [
        "route del 10.5.0.0/16 via 10.0.0.3 dev i0 table 100 metric 7",
        "route replace 10.5.0.0/16 via 10.0.0.2 dev i0 table 100 metric 5",
    ]
    assert texts(snap(routes={key: []}), snap(routes={key: [extra]})) == [
        "route del 10.5.0.0/16 via 10.0.0.3 dev i0 table 100 metric 7"
    ]
    six = route(family="inet6", to="default", via=None, dev=None, type="unreachable", metric=1024)
    assert texts(snap(routes={"inet6/7/default": [{**six, "table": 7}]}), snap(routes={})) == [
        "route replace unreachable ::/0 table 7 metric 1024"
    ]


def test_rules_are_replaced_as_a_group() -> None:
    before = snap(
        rules={
            "inet/100": [rule()],
            "inet6/5": [rule(family="inet6", priority=5, **{"from": None}, table="main")],
        }
    )
    now = snap(rules={"inet/100": [rule(table=200)], "inet6/5": []})
    assert texts(before, now) == [
        "rule del priority 100 from 10.0.0.0/8 lookup 200",
        "rule add priority 100 from 10.0.0.0/8 lookup 100",
        "-6 rule add priority 5 lookup main",
    ]


def test_sysctls_and_files() -> None:
    before = snap(
        sysctls={"net.ipv4.ip_forward": "0", "net.ipv4.conf.x9.forwarding": None},
        files={
            "/etc/resolv.conf": {"content": None, "mode": 0o644},
            "/etc/x.conf": {"content": "a\n", "mode": 0o600},
        },
    )
    now = snap(
        sysctls={"net.ipv4.ip_forward": "1", "net.ipv4.conf.x9.forwarding": "1"},
        files={
            "/etc/resolv.conf": {"content": "nameserver 1.1.1.1\n", "mode": 0o644},
            "/etc/x.conf": {"content": "b\n", "mode": 0o600},
        },
    )
    assert texts(before, now) == [
        "sysctl -w net.ipv4.ip_forward=0",
        "remove /etc/resolv.conf",
        "write /etc/x.conf",
    ]
