"""net.* tools on real network namespaces, read back with `ip -n NS -j` (not the tools).

Every write is proven on the namespace the `netns` fixture creates (and
deletes); real kinds only (veth, bridge, macvlan, vxlan, ifb, tun, tap);
vlan/bond/wireguard/dummy are covered by the command-building doubles in
tests/unit/test_net_commands.py. Also: net.apply all-or-nothing, snapshot/restore
round trips, net.state against independent reads, the aiOS probes, and the
real `ip -batch` reading lines exactly as the unit tests' model of it (the
IpCmd word proof rests on that model).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.core.errors import ToolError
from registry.drivers.net import commands as netcmd
from tests.system.helpers import in_netns, run
from tests.system.netdriver import Driver, addresses, ip_json, link, link_names, net_dump, same_net
from tests.unit.test_net_commands import batch_words


@pytest.fixture
def drv(netns: str, tmp_path: Path) -> Driver:
    return Driver(netns, tmp_path)


def test_link_add_every_real_kind(drv: Driver, netns: str) -> None:
    drv.run(
        "net.link_add",
        {
            "name": "br0",
            "kind": "bridge",
            "state": "up",
            "bridge": {"stp": False, "forward_delay": 400},
        },
    )
    drv.run(
        "net.link_add",
        {
            "name": "v0",
            "kind": "veth",
            "mtu": 1400,
            "mac": "02:00:00:00:01:01",
            "state": "up",
            "master": "br0",
            "veth": {"peer": "v1"},
        },
    )
    drv.run(
        "net.link_add",
        {"name": "mv0", "kind": "macvlan", "macvlan": {"parent": "v1", "mode": "private"}},
    )
    drv.run(
        "net.link_add",
        {"name": "vx0", "kind": "vxlan", "vxlan": {"id": 42, "remote": "10.9.9.9", "port": 8472}},
    )
    drv.run("net.link_add", {"name": "i0", "kind": "ifb", "state": "up", "mtu": 1300})
    drv.run("net.link_add", {"name": "t0", "kind": "tun", "tun": {"owner": 0, "group": 0}})
    drv.run(
        "net.link_add",
        {"name": "tp0", "kind": "tap", "mac": "02:00:00:00:01:02", "tun": {"multi_queue": True}},
    )

    v0 = link(netns, "v0")
    assert (v0["mtu"], v0["address"], v0["master"], v0["link"]) == (
        1400,
        "02:00:00:00:01:01",
        "br0",
        "v1",
    )
    assert "UP" in v0["flags"] and v0["linkinfo"]["info_kind"] == "veth"
    br0 = link(netns, "br0")["linkinfo"]["info_data"]
    assert (br0["stp_state"], br0["forward_delay"]) == (0, 400)
    mv0 = link(netns, "mv0")
    assert (mv0["link"], mv0["linkinfo"]["info_data"]["mode"]) == ("v1", "private")
    vx0 = link(netns, "vx0")["linkinfo"]["info_data"]
    assert (vx0["id"], vx0["remote"], vx0["port"]) == (42, "10.9.9.9", 8472)
    i0 = link(netns, "i0")
    assert (i0["mtu"], i0["linkinfo"]["info_kind"], "UP" in i0["flags"]) == (1300, "ifb", True)
    assert link(netns, "t0")["linkinfo"]["info_data"]["type"] == "tun"
    tp0 = link(netns, "tp0")
    assert tp0["address"] == "02:00:00:00:01:02"
    assert tp0["linkinfo"]["info_data"]["multi_queue"] is True


def test_link_add_refuses_an_existing_name(drv: Driver) -> None:
    drv.run("net.link_add", {"name": "i0", "kind": "ifb"})
    with pytest.raises(
        ToolError, match=r"^net.link_add: `link add dev i0 type ifb` failed: .*File exists"
    ):
        drv.run("net.link_add", {"name": "i0", "kind": "ifb"})


def test_a_write_that_half_succeeds_is_undone(drv: Driver, netns: str) -> None:
    before = net_dump(netns)
    with pytest.raises(ToolError) as failed:  # the pair is created, then enslaving fails
        drv.run(
            "net.link_add",
            {"name": "v0", "kind": "veth", "master": "nosuch", "veth": {"peer": "v1"}},
        )
    assert str(failed.value).startswith("net.link_add: `link set dev v0 master nosuch` failed: ")
    # The undo says what it compared: the named links, and every other link's presence.
    assert str(failed.value).endswith(
        "; restored link:v0, link:v1, link:nosuch (read back as before); "
        "no other link appeared or vanished in the namespace"
    )
    same_net(netns, before)


def test_link_set_and_delete(drv: Driver, netns: str) -> None:
    drv.run(
        "net.apply",
        {
            "commands": [
                {"op": "link_add", "args": {"name": "br0", "kind": "bridge"}},
                {"op": "link_add", "args": {"name": "v0", "kind": "veth", "veth": {"peer": "v1"}}},
            ]
        },
    )
    drv.run(
        "net.link_set",
        {"name": "v0", "mtu": 1280, "mac": "02:00:00:00:02:01", "master": "br0", "state": "up"},
    )
    drv.run("net.link_set", {"name": "br0", "bridge": {"stp": True}})
    v0 = link(netns, "v0")
    assert (v0["mtu"], v0["address"], v0.get("master"), "UP" in v0["flags"]) == (
        1280,
        "02:00:00:00:02:01",
        "br0",
        True,
    )
    assert link(netns, "br0")["linkinfo"]["info_data"]["stp_state"] == 1
    drv.run("net.link_set", {"name": "v0", "master": None, "state": "down"})
    v0 = link(netns, "v0")
    assert "master" not in v0 and "UP" not in v0["flags"]
    drv.run("net.link_delete", {"name": "v0"})
    assert link_names(netns) == {"lo", "br0"}  # the veth took its peer along


def test_addresses(drv: Driver, netns: str) -> None:
    drv.run("net.link_add", {"name": "i0", "kind": "ifb", "state": "up"})
    drv.run("net.addr_add", {"dev": "i0", "address": "10.0.0.1/24"})
    drv.run("net.addr_add", {"dev": "i0", "address": "10.0.0.1/24"})  # idempotent
    drv.run("net.addr_add", {"dev": "i0", "address": "2001:db8::1/64"})
    assert {"10.0.0.1/24", "2001:db8::1/64"} <= set(addresses(netns, "i0"))
    drv.run("net.addr_delete", {"dev": "i0", "address": "10.0.0.1/24"})
    assert "10.0.0.1/24" not in addresses(netns, "i0")
    with pytest.raises(ToolError, match=r"addr del 10\.0\.0\.1/24 dev i0"):
        drv.run("net.addr_delete", {"dev": "i0", "address": "10.0.0.1/24"})


def test_routes_and_rules(drv: Driver, netns: str) -> None:
    drv.run("net.link_add", {"name": "i0", "kind": "ifb", "state": "up"})
    drv.run("net.addr_add", {"dev": "i0", "address": "10.0.0.1/24"})
    drv.run(
        "net.route_replace", {"to": "10.5.0.0/16", "via": "10.0.0.2", "table": 100, "metric": 5}
    )
    drv.run(
        "net.route_replace", {"to": "10.5.0.0/16", "via": "10.0.0.3", "table": 100, "metric": 5}
    )
    drv.run(
        "net.route_replace", {"to": "default", "family": "inet6", "type": "unreachable", "table": 7}
    )
    (r,) = ip_json(netns, "route", "show", "table", "100")
    assert (r["dst"], r["gateway"], r["metric"]) == ("10.5.0.0/16", "10.0.0.3", 5)
    (r6,) = ip_json(netns, "-6", "route", "show", "table", "7")
    assert (r6["type"], r6["dst"]) == ("unreachable", "default")
    drv.run("net.route_delete", {"to": "10.5.0.0/16", "table": 100, "metric": 5})
    assert ip_json(netns, "route", "show", "table", "100") == []

    drv.run("net.rule_add", {"priority": 100, "from": "10.0.0.0/8", "table": 100})
    drv.run("net.rule_add", {"priority": 101, "family": "inet6", "fwmark": "0x1/0xff", "table": 7})
    rules4 = {r["priority"]: r for r in ip_json(netns, "-4", "rule", "show")}
    rules6 = {r["priority"]: r for r in ip_json(netns, "-6", "rule", "show")}
    assert (rules4[100]["src"], rules4[100]["srclen"], rules4[100]["table"]) == (
        "10.0.0.0",
        8,
        "100",
    )
    assert (rules6[101]["fwmark"], rules6[101]["fwmask"], rules6[101]["table"]) == (
        "0x1",
        "0xff",
        "7",
    )
    drv.run("net.rule_delete", {"priority": 101, "family": "inet6"})
    assert 101 not in {r["priority"] for r in ip_json(netns, "-6", "rule", "show")}


def test_sysctls_in_the_namespace_only(drv: Driver, netns: str) -> None:
    host = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    flipped = "0" if host.strip() == "1" else "1"
    drv.run("net.sysctl_set", {"key": "net.ipv4.ip_forward", "value": int(flipped)})
    assert run(in_netns(netns, ["sysctl", "-n", "net.ipv4.ip_forward"])).strip() == flipped
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host
    state = drv.run("net.state", {"sysctls": ["net.ipv4.ip_forward", "net.ipv4.nosuch"]})
    assert state["sysctls"] == {"net.ipv4.ip_forward": flipped, "net.ipv4.nosuch": None}
    with pytest.raises(ToolError, match="only net"):
        drv.run("net.sysctl_set", {"key": "kernel.hostname", "value": "x"})
    with pytest.raises(ToolError, match=r"net\.ipv4\.nosuch"):
        drv.run("net.sysctl_set", {"key": "net.ipv4.nosuch", "value": 1})


def test_dns_set_under_root(drv: Driver, tmp_path: Path) -> None:
    drv.run("net.dns_set", {"servers": ["10.0.0.53"], "search": ["lan"], "options": ["ndots:2"]})
    text = (tmp_path / "etc/resolv.conf").read_text()
    assert "nameserver 10.0.0.53\nsearch lan\noptions ndots:2\n" in text
    drv.run("net.dns_set", {"resolver": "unbound", "servers": ["1.1.1.1", "9.9.9.9"]})
    unbound = (tmp_path / "etc/unbound/unbound.conf.d/aios-forward.conf").read_text()
    assert "forward-addr: 1.1.1.1\n    forward-addr: 9.9.9.9\n" in unbound
    state = drv.run("net.state", {"sysctls": [], "dns_path": "/etc/resolv.conf"})
    assert state["dns"]["servers"] == ["10.0.0.53"] and state["dns"]["options"] == ["ndots:2"]


def test_net_state_matches_independent_reads(drv: Driver, netns: str) -> None:
    drv.run(
        "net.apply",
        {
            "commands": [
                {"op": "link_add", "args": {"name": "br0", "kind": "bridge", "state": "up"}},
                {
                    "op": "link_add",
                    "args": {"name": "v0", "kind": "veth", "master": "br0", "veth": {"peer": "v1"}},
                },
                {
                    "op": "link_add",
                    "args": {"name": "i0", "kind": "ifb", "state": "up", "mtu": 1400},
                },
                {"op": "addr_add", "args": {"dev": "i0", "address": "10.0.0.1/24"}},
                {
                    "op": "route_replace",
                    "args": {"to": "10.5.0.0/16", "via": "10.0.0.2", "table": 100},
                },
                {"op": "rule_add", "args": {"priority": 100, "to": "10.5.0.0/16", "table": 100}},
            ]
        },
    )
    state = drv.run("net.state", {})
    links = {x["name"]: x for x in state["links"]}
    raw = {x["ifname"]: x for x in ip_json(netns, "addr", "show")}
    assert set(links) == set(raw)
    for name, x in links.items():
        assert x["mtu"] == raw[name]["mtu"] and x["index"] == raw[name]["ifindex"]
        assert x["state"] == ("up" if "UP" in raw[name]["flags"] else "down")
    assert links["i0"]["state"] == "up" and links["i0"]["operstate"] == "UNKNOWN"
    assert links["br0"]["kind"] == "bridge" and links["v0"]["master"] == "br0"
    assert links["v1"]["parent"] == "v0" and links["v0"]["info"] == {"peer": "v1"}
    assert "10.0.0.1/24" in [a["address"] for a in links["i0"]["addresses"]]
    assert any(r["table"] == 100 and r["to"] == "10.5.0.0/16" for r in state["routes"])
    assert any(r["table"] == "local" for r in state["routes"])
    assert any(r["family"] == "inet6" for r in state["routes"])
    assert {
        "family": "inet",
        "priority": 100,
        "from": None,
        "to": "10.5.0.0/16",
        "iif": None,
        "oif": None,
        "fwmark": None,
        "table": 100,
        "action": "lookup",
    } in state["rules"]
    assert "net.ipv4.ip_forward" in state["sysctls"]
    assert "net.ipv4.conf.all.forwarding" in state["sysctls"]
    assert not any(".conf.i0." in k for k in state["sysctls"])  # no per-interface keys
    assert state["dns"]["path"] == "/etc/resolv.conf" and state["dns"]["exists"] is False


def test_net_apply_third_command_fails_namespace_unchanged(drv: Driver, netns: str) -> None:
    drv.run(
        "net.apply",
        {
            "commands": [
                {"op": "link_add", "args": {"name": "i0", "kind": "ifb", "state": "up"}},
                {"op": "addr_add", "args": {"dev": "i0", "address": "10.0.0.1/24"}},
            ]
        },
    )
    before = net_dump(netns)
    with pytest.raises(ToolError) as failed:
        drv.run(
            "net.apply",
            {
                "commands": [
                    {
                        "op": "link_add",
                        "args": {
                            "name": "v0",
                            "kind": "veth",
                            "state": "up",
                            "veth": {"peer": "v1"},
                        },
                    },
                    {"op": "link_set", "args": {"name": "i0", "mtu": 1300, "state": "down"}},
                    {
                        "op": "route_replace",
                        "args": {"to": "10.5.0.0/16", "via": "10.0.0.2", "dev": "nosuch"},
                    },
                    {"op": "sysctl_set", "args": {"key": "net.ipv4.ip_forward", "value": 1}},
                ]
            },
        )
    message = str(failed.value)
    assert message.startswith(
        "net.apply: command 2 (route_replace: "
        "`route replace 10.5.0.0/16 via 10.0.0.2 dev nosuch table main`) failed: "
    )
    assert message.endswith(
        " (read back as before); no other link appeared or vanished in the namespace"
    )
    restored = message.split("; restored ", 1)[1]
    for key in ("link:v0", "link:v1", "link:i0", "route:inet/main/10.5.0.0/16/0"):
        assert key in restored, message
    assert "sysctl:net.ipv4.ip_forward" in restored, message
    same_net(netns, before)


def test_net_apply_then_rollback_restores(drv: Driver, netns: str, tmp_path: Path) -> None:
    drv.run(
        "net.apply",
        {
            "commands": [
                {"op": "link_add", "args": {"name": "br0", "kind": "bridge", "state": "up"}},
                {
                    "op": "link_add",
                    "args": {
                        "name": "v0",
                        "kind": "veth",
                        "mtu": 1400,
                        "state": "up",
                        "master": "br0",
                        "veth": {"peer": "v1"},
                    },
                },
                {
                    "op": "link_add",
                    "args": {
                        "name": "mv0",
                        "kind": "macvlan",
                        "state": "up",
                        "macvlan": {"parent": "v1"},
                    },
                },
                {"op": "link_add", "args": {"name": "i0", "kind": "ifb", "state": "up"}},
                {"op": "addr_add", "args": {"dev": "i0", "address": "10.0.0.1/24"}},
                {"op": "addr_add", "args": {"dev": "i0", "address": "2001:db8::1/64"}},
                {
                    "op": "route_replace",
                    "args": {
                        "to": "10.5.0.0/16",
                        "via": "10.0.0.2",
                        "table": 100,
                        "proto": "static",
                    },
                },
                {"op": "rule_add", "args": {"priority": 100, "from": "10.0.0.0/8", "table": 100}},
            ]
        },
    )
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/resolv.conf").write_text("nameserver 192.0.2.1\n")
    before = net_dump(netns)
    change = {
        "commands": [
            {"op": "link_delete", "args": {"name": "v1"}},  # takes v0 and mv0 along
            {"op": "link_delete", "args": {"name": "i0"}},  # takes its addresses and routes
            {"op": "link_add", "args": {"name": "new0", "kind": "ifb", "master": "br0"}},
            {"op": "link_set", "args": {"name": "br0", "mtu": 1280, "bridge": {"stp": True}}},
            {"op": "rule_delete", "args": {"priority": 100}},
            {"op": "rule_add", "args": {"priority": 100, "from": "10.9.0.0/16", "table": 9}},
            {"op": "sysctl_set", "args": {"key": "net.ipv4.ip_forward", "value": 1}},
            {"op": "dns_set", "args": {"servers": ["10.0.0.53"]}},
        ]
    }
    snap, out = drv.run_reversible("net.apply", change)
    assert out["executed"] == 8
    assert net_dump(netns) != before
    drv.restore("net.apply", snap)
    same_net(netns, before)
    assert (tmp_path / "etc/resolv.conf").read_text() == "nameserver 192.0.2.1\n"


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        (
            "net.link_add",
            {"name": "x0", "kind": "veth", "state": "up", "master": "br0", "veth": {"peer": "x1"}},
        ),
        ("net.link_set", {"name": "i0", "mtu": 1280, "state": "down", "master": "br0"}),
        ("net.link_delete", {"name": "i0"}),
        ("net.addr_add", {"dev": "i0", "address": "10.0.1.1/24"}),
        ("net.addr_delete", {"dev": "i0", "address": "10.0.0.1/24"}),
        ("net.route_replace", {"to": "10.5.0.0/16", "via": "10.0.0.9", "table": 100}),
        ("net.route_delete", {"to": "10.5.0.0/16", "table": 100}),
        ("net.rule_add", {"priority": 200, "iif": "i0", "table": 100}),
        ("net.rule_delete", {"priority": 100}),
        ("net.sysctl_set", {"key": "net.ipv4.conf.all.forwarding", "value": 1}),
    ],
)
def test_every_write_round_trips_through_snapshot_and_restore(
    drv: Driver, netns: str, tool: str, args: dict[str, Any]
) -> None:
    drv.run(
        "net.apply",
        {
            "commands": [
                {"op": "link_add", "args": {"name": "br0", "kind": "bridge", "state": "up"}},
                {
                    "op": "link_add",
                    "args": {"name": "i0", "kind": "ifb", "state": "up", "mtu": 1400},
                },
                {"op": "addr_add", "args": {"dev": "i0", "address": "10.0.0.1/24"}},
                {
                    "op": "route_replace",
                    "args": {"to": "10.5.0.0/16", "via": "10.0.0.2", "table": 100},
                },
                {"op": "rule_add", "args": {"priority": 100, "from": "10.0.0.0/8", "table": 100}},
            ]
        },
    )
    before = net_dump(netns)
    snap, _ = drv.run_reversible(tool, args)
    assert net_dump(netns) != before, f"{tool} changed nothing"
    drv.restore(tool, snap)
    same_net(netns, before)


def test_dns_set_round_trip_absent_file(drv: Driver, tmp_path: Path) -> None:
    snap, _ = drv.run_reversible("net.dns_set", {"servers": ["10.0.0.53"]})
    assert (tmp_path / "etc/resolv.conf").exists()
    drv.restore("net.dns_set", snap)
    assert not (tmp_path / "etc/resolv.conf").exists()


def test_aios_interfaces(drv: Driver) -> None:
    drv.run(
        "net.apply",
        {
            "commands": [
                {
                    "op": "link_add",
                    "args": {
                        "name": "v0",
                        "kind": "veth",
                        "state": "up",
                        "mac": "02:00:00:00:03:01",
                        "veth": {"peer": "v1"},
                    },
                },
                {"op": "addr_add", "args": {"dev": "v0", "address": "10.0.0.1/24"}},
                {"op": "addr_add", "args": {"dev": "v0", "address": "10.0.0.2/24"}},
            ]
        },
    )
    found = {i["name"]: i for i in drv.run("net.interfaces", {})["interfaces"]}
    assert found["v0@v1"] == {
        "name": "v0@v1",
        "ip": "10.0.0.1",
        "mac": "02:00:00:00:03:01",
        "status": "up",
    }
    assert found["v1@v0"]["status"] == "down" and found["v1@v0"]["ip"] == ""
    assert found["lo"] == {"name": "lo", "ip": "127.0.0.1", "mac": "", "status": "up"}


@contextlib.contextmanager
def http_server(netns: str) -> Iterator[int]:
    """A throwaway HTTP server inside the namespace (killed by pid afterwards)."""
    port = 18090
    proc = subprocess.Popen(
        in_netns(netns, [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                in_netns(
                    netns,
                    [
                        sys.executable,
                        "-c",
                        f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)",
                    ],
                ),
                capture_output=True,
            )
            if probe.returncode == 0:
                break
            time.sleep(0.1)
        yield port
    finally:
        proc.kill()
        proc.wait()


def test_probes_run_inside_the_namespace(drv: Driver, netns: str) -> None:
    drv.run("net.link_add", {"name": "i0", "kind": "ifb", "state": "up"})
    drv.run("net.addr_add", {"dev": "i0", "address": "10.66.0.1/24"})
    ping = drv.run("net.ping", {"host": "10.66.0.1", "count": 2})
    assert ping["success"] is True and ping["latency_ms"] > 0
    assert drv.run("net.ping", {"host": "10.66.1.1", "count": 1}) == {
        "success": False,
        "latency_ms": 0.0,
    }
    assert drv.run("net.dns", {"hostname": "localhost"})["addresses"]
    with pytest.raises(ToolError, match=r"^DNS resolution failed for nosuch\.invalid: "):
        drv.run("net.dns", {"hostname": "nosuch.invalid"})
    with http_server(netns) as port:
        assert drv.run("net.port_scan", {"host": "127.0.0.1", "port": port}) == {"open": True}
        got = drv.run("net.http_get", {"url": f"http://127.0.0.1:{port}/"})
        assert got["status"] == 200 and "Directory listing" in got["body"]
    assert drv.run("net.port_scan", {"host": "127.0.0.1", "port": port}) == {"open": False}
    assert drv.run("net.http_get", {"url": f"http://127.0.0.1:{port}/"})["status"] == 0
    # the host namespace has no 10.66.0.1: the probe really ran inside the namespace
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert json.loads(json.dumps(ping)) == ping


def test_the_batch_model_matches_ip(netns: str) -> None:
    """The model of `ip -batch` in tests/unit/test_net_commands.py (on which the IpCmd word
    proof rests) is how the real ip reads a batch: for every word IpCmd accepts, and
    for lines built to hit each special rule (quotes, '#', '\\'-newline, NUL, tabs,
    '\\r', comment lines), ip looks up exactly the device name the model predicts.
    `link show dev W` only reads, in the test's own namespace."""
    chars = sorted(set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/-"))
    words = chars + [f"a{c}b" for c in chars]
    accepted = [netcmd.IpCmd(("link", "show", "dev", w)).line for w in words]
    tricky = [
        'link show dev "x y"',
        "link show dev 'x\"y'",
        'link show dev a"b"c',
        "link show dev ab#c d",
        "link show dev q\\\nz",
        "link show dev k0\0 extra",
        "link show dev\tt1",
        "link show dev\rr1",
        "# a comment line",
    ]
    script = "".join(f"{line}\n" for line in accepted + tricky)
    proc = subprocess.run(
        ["ip", "-n", netns, "-force", "-batch", "-"],
        input=script.encode(),
        capture_output=True,
        check=False,
    )
    looked_up = re.findall(r'^Device "(.*)" does not exist\.$', proc.stderr.decode(), re.M)
    model = batch_words(script)
    assert all(len(w) == 4 and w[:3] == ["link", "show", "dev"] for w in model), model
    assert looked_up == [w[3] for w in model]
    assert looked_up[len(accepted) :] == ["x y", 'x"y', 'a"b"c', "ab", "qz", "k0", "t1", "r1"]
    # the name: ip itself splits it into words ('netns' becomes a keyword)
    injected = 'link show dev "y""netns"abcd\n'
    assert batch_words(injected) == [["link", "show", "dev", "y", "netns", "abcd"]]
    proc = subprocess.run(
        ["ip", "-n", netns, "-batch", "-"],
        input=injected.encode(),
        capture_output=True,
        check=False,
    )
    assert '"netns" is a garbage' in proc.stderr.decode()
