"""Parsing captured `ip -j` output into net.state records (tests/fixtures/net).

The fixtures were captured from a real namespace (veth, bridge, macvlan,
vxlan, ifb, tun, tap, routes in several tables, rules); doubles_addr_detail.json
is a DOUBLE written from iproute2's printers for kinds this kernel lacks
(vlan, bond, wireguard, dummy). Every parsed state is validated against
net.state's output schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from contract.catalogue import net as net_defs
from registry.drivers.net.state import (
    interfaces,
    parse_links,
    parse_routes,
    parse_rules,
    parse_table,
)
from registry.drivers.net.system import parse_grep, parse_resolver, render_dns

FIXTURES = Path(__file__).parents[1] / "fixtures" / "net"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def by_name(links: list[Any]) -> dict[str, Any]:
    return {link["name"]: link for link in links}


def test_links_of_every_real_kind() -> None:
    links = by_name(parse_links(load("addr_detail.json")))
    assert {n: link["kind"] for n, link in links.items()} == {
        "lo": "loopback",
        "br0": "bridge",
        "v0": "veth",
        "v1": "veth",
        "mv0": "macvlan",
        "vx0": "vxlan",
        "vx1": "vxlan",
        "i0": "ifb",
        "t0": "tun",
        "tp0": "tap",
    }
    assert links["v0"]["info"] == {"peer": "v1"} and links["v0"]["parent"] == "v1"
    assert links["v0"]["master"] == "br0" and links["v0"]["mtu"] == 1400
    assert links["v0"]["mac"] == "02:00:00:00:00:10"
    assert links["br0"]["info"] == {"stp": False, "forward_delay": 1500}
    assert links["mv0"]["info"] == {"parent": "v1", "mode": "private"}
    assert links["vx0"]["info"] == {
        "id": 42,
        "parent": None,
        "local": "10.0.0.1",
        "remote": "10.9.9.9",
        "group": None,
        "port": 4789,
    }
    assert links["vx1"]["parent"] == "v1" and links["vx1"]["info"]["group"] == "239.1.1.1"
    assert links["t0"]["info"] == {"owner": 0, "group": 0, "multi_queue": False}
    assert links["t0"]["mac"] is None
    assert links["tp0"]["info"] == {"owner": None, "group": None, "multi_queue": True}


def test_state_is_the_admin_flag_not_operstate() -> None:
    links = by_name(parse_links(load("addr_detail.json")))
    assert links["i0"]["state"] == "up" and links["i0"]["operstate"] == "UNKNOWN"
    assert links["br0"]["state"] == "up" and links["br0"]["operstate"] != "UP"
    assert links["v1"]["state"] == "down"


def test_addresses() -> None:
    i0 = by_name(parse_links(load("addr_detail.json")))["i0"]
    assert i0["addresses"] == [
        {"address": "10.0.0.1/24", "family": "inet", "scope": "global", "dynamic": False},
        {"address": "2001:db8::1/64", "family": "inet6", "scope": "global", "dynamic": False},
        {"address": "fe80::ff:fe00:1/64", "family": "inet6", "scope": "link", "dynamic": False},
    ]


def test_doubles_vlan_bond_wireguard_dummy() -> None:
    links = by_name(parse_links(load("doubles_addr_detail.json")))
    assert links["e0.10"]["kind"] == "vlan"
    assert links["e0.10"]["info"] == {"parent": "e0", "id": 10}
    assert links["e0.10"]["mac"] == "52:54:00:aa:bb:cc"  # lowercased
    assert links["bond0"]["info"] == {"mode": "active-backup", "miimon": 100}
    assert links["e0"]["kind"] == "ethernet" and links["e0"]["master"] == "bond0"
    assert links["wg0"]["kind"] == "wireguard" and links["wg0"]["mac"] is None
    assert links["wg0"]["info"] == {}
    assert links["d0"]["kind"] == "dummy"
    assert links["d0"]["addresses"][0]["dynamic"] is True


def test_routes_all_tables_both_families() -> None:
    routes = parse_routes(load("routes4.json"), "inet") + parse_routes(
        load("routes6.json"), "inet6"
    )
    find = {(r["family"], r["table"], r["to"]): r for r in routes}
    assert find[("inet", 100, "10.5.0.0/16")] == {
        "family": "inet",
        "table": 100,
        "to": "10.5.0.0/16",
        "via": "10.0.0.2",
        "dev": "i0",
        "metric": 5,
        "proto": "boot",
        "scope": "global",
        "src": None,
        "type": "unicast",
        "onlink": False,
    }
    static = find[("inet", "main", "10.7.0.0/16")]
    assert (static["proto"], static["scope"], static["src"], static["metric"]) == (
        "static",
        "link",
        "10.0.0.1",
        100,
    )
    assert find[("inet", "main", "10.8.0.0/16")]["type"] == "blackhole"
    assert find[("inet", 7, "default")]["onlink"] is True
    assert find[("inet6", 7, "default")]["type"] == "unreachable"
    assert find[("inet6", 7, "default")]["metric"] == 1024
    assert ("inet", "main", "10.6.0.1/32") in find  # host route gets its prefix length
    assert find[("inet", "local", "10.0.0.1/32")]["type"] == "local"


def test_rules() -> None:
    rules = parse_rules(load("rules4.json"), "inet") + parse_rules(load("rules6.json"), "inet6")
    find = {(r["family"], r["priority"]): r for r in rules}
    assert find[("inet", 400)] == {
        "family": "inet",
        "priority": 400,
        "from": "10.1.0.0/16",
        "to": "10.2.0.5",
        "iif": "i0",
        "oif": "v0",
        "fwmark": "0x10/0xff",
        "table": 100,
        "action": "lookup",
    }
    assert find[("inet", 401)]["action"] == "blackhole" and find[("inet", 401)]["table"] is None
    assert find[("inet", 0)]["table"] == "local" and find[("inet", 0)]["from"] is None
    assert find[("inet6", 101)]["table"] == 100


def test_parse_table_names_and_numbers() -> None:
    assert parse_table(None) == "main"
    assert parse_table("254") == "main" and parse_table("255") == "local"
    assert parse_table("100") == 100 and parse_table("default") == "default"


def test_state_validates_against_the_output_schema() -> None:
    state = {
        "links": parse_links(load("addr_detail.json"))
        + parse_links(load("doubles_addr_detail.json")),
        "routes": parse_routes(load("routes4.json"), "inet")
        + parse_routes(load("routes6.json"), "inet6"),
        "rules": parse_rules(load("rules4.json"), "inet"),
        "sysctls": {"net.ipv4.ip_forward": "0", "net.ipv4.nosuch": None},
        "dns": parse_resolver("/etc/resolv.conf", None),
    }
    errors = list(Draft202012Validator(net_defs.NET_STATE.output_schema).iter_errors(state))
    assert errors == []


def test_aios_interfaces_shape() -> None:
    found = {i["name"]: i for i in interfaces(load("addr.json"))}
    assert found["v1@v0"] == {
        "name": "v1@v0",
        "ip": "",
        "mac": found["v1@v0"]["mac"],
        "status": "down",
    }
    assert found["i0"] == {
        "name": "i0",
        "ip": "10.0.0.1",
        "mac": "02:00:00:00:00:01",
        "status": "up",
    }
    assert found["lo"]["mac"] == "" and found["lo"]["ip"] == "127.0.0.1"
    assert found["t0"]["mac"] == ""
    assert "mv0@v1" in found
    schema = net_defs.NET_INTERFACES.output_schema
    assert Draft202012Validator(schema).is_valid({"interfaces": list(found.values())})


def test_sysctl_grep_output() -> None:
    text = (
        "/proc/sys/net/ipv4/ip_forward:1\n"
        "/proc/sys/net/ipv4/tcp_rmem:4096\t131072\t6291456\n"
        "/proc/sys/net/ipv4/conf/all/rp_filter:2\n"
        "/proc/sys/net/ipv4/empty:\n"
    )
    assert parse_grep(text) == {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.tcp_rmem": "4096\t131072\t6291456",
        "net.ipv4.conf.all.rp_filter": "2",
        "net.ipv4.empty": "",
    }


def test_resolver_round_trip() -> None:
    text = render_dns(
        {
            "servers": ["10.0.0.53", "2001:db8::53"],
            "search": ["lan", "corp.example"],
            "options": ["ndots:2"],
        }
    )
    assert text.splitlines()[1:] == [
        "nameserver 10.0.0.53",
        "nameserver 2001:db8::53",
        "search lan corp.example",
        "options ndots:2",
    ]
    assert parse_resolver("/etc/resolv.conf", text) == {
        "path": "/etc/resolv.conf",
        "exists": True,
        "servers": ["10.0.0.53", "2001:db8::53"],
        "search": ["lan", "corp.example"],
        "options": ["ndots:2"],
    }
    unbound = render_dns({"resolver": "unbound", "servers": ["1.1.1.1", "9.9.9.9"]})
    assert 'name: "."' in unbound and "forward-addr: 9.9.9.9" in unbound
    assert parse_resolver("/x", unbound)["servers"] == ["1.1.1.1", "9.9.9.9"]
