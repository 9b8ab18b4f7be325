"""Command building for every net write, against recorded expectations.

Kinds the test kernel lacks (vlan, bond, wireguard, dummy) are only tested
here: `test_double_*` compare the built `ip`/`wg` commands with what
iproute2 6.1 and wireguard-tools accept (recorded from their man pages);
the real kinds are also proven on real namespaces in tests/system.
"""

from __future__ import annotations

from typing import Any

import pytest

from registry import netcmd
from registry.netcmd import Known
from registry.netsys import sysctl_value
from registry.tooling import ToolError


def texts(op: str, args: dict[str, Any], known: Known | None = None) -> list[str]:
    return [c.text for c in netcmd.build(op, args, known)]


LINK_ADD_CASES: list[tuple[dict[str, Any], list[str]]] = [
    (
        {
            "name": "v0",
            "kind": "veth",
            "mtu": 1400,
            "mac": "02:AA:00:00:00:01",
            "state": "up",
            "master": "br0",
            "veth": {"peer": "v1"},
        },
        [
            "link add dev v0 mtu 1400 address 02:aa:00:00:00:01 type veth peer name v1",
            "link set dev v0 master br0",
            "link set dev v0 up",
        ],
    ),
    (
        {"name": "br0", "kind": "bridge", "bridge": {"stp": True, "forward_delay": 400}},
        ["link add dev br0 type bridge stp_state 1 forward_delay 400"],
    ),
    (
        {"name": "mv0", "kind": "macvlan", "macvlan": {"parent": "v0"}},
        ["link add dev mv0 link v0 type macvlan mode bridge"],
    ),
    (
        {
            "name": "vx0",
            "kind": "vxlan",
            "vxlan": {"id": 42, "remote": "10.9.9.9", "local": "10.0.0.1"},
        },
        ["link add dev vx0 type vxlan id 42 local 10.0.0.1 remote 10.9.9.9 dstport 4789"],
    ),
    (
        {
            "name": "vx1",
            "kind": "vxlan",
            "vxlan": {"id": 7, "parent": "v0", "group": "239.1.1.1", "port": 8472},
        },
        ["link add dev vx1 type vxlan id 7 dev v0 group 239.1.1.1 dstport 8472"],
    ),
    (
        {"name": "i0", "kind": "ifb", "state": "up"},
        ["link add dev i0 type ifb", "link set dev i0 up"],
    ),
    (
        {"name": "t0", "kind": "tun", "mtu": 1300, "tun": {"owner": 1000, "group": 100}},
        ["tuntap add dev t0 mode tun user 1000 group 100", "link set dev t0 mtu 1300"],
    ),
    (
        {"name": "tp0", "kind": "tap", "mac": "02:00:00:00:00:02", "tun": {"multi_queue": True}},
        ["tuntap add dev tp0 mode tap multi_queue", "link set dev tp0 address 02:00:00:00:00:02"],
    ),
]


@pytest.mark.parametrize(("args", "expected"), LINK_ADD_CASES)
def test_link_add_real_kinds(args: dict[str, Any], expected: list[str]) -> None:
    assert texts("link_add", args) == expected


def test_double_vlan() -> None:
    args = {"name": "e0.10", "kind": "vlan", "mtu": 1496, "vlan": {"parent": "e0", "id": 10}}
    assert texts("link_add", args) == ["link add dev e0.10 mtu 1496 link e0 type vlan id 10"]


def test_double_bond() -> None:
    args = {
        "name": "bond0",
        "kind": "bond",
        "state": "up",
        "bond": {"mode": "802.3ad", "miimon": 100},
    }
    assert texts("link_add", args) == [
        "link add dev bond0 type bond mode 802.3ad miimon 100",
        "link set dev bond0 up",
    ]
    assert texts("link_add", {"name": "b1", "kind": "bond"}) == [
        "link add dev b1 type bond mode active-backup"
    ]


def test_double_dummy() -> None:
    assert texts("link_add", {"name": "d0", "kind": "dummy", "mac": "02:00:00:00:00:03"}) == [
        "link add dev d0 address 02:00:00:00:00:03 type dummy"
    ]


def test_double_wireguard_names_the_key_file_never_its_content() -> None:
    args = {
        "name": "wg0",
        "kind": "wireguard",
        "mtu": 1420,
        "wireguard": {
            "private_key_file": "/etc/aios/secrets/wg0.key",
            "listen_port": 51820,
            "peers": [
                {
                    "public_key": "x" * 42 + "A=",
                    "endpoint": "203.0.113.1:51820",
                    "allowed_ips": ["10.200.0.0/24", "10.201.0.1"],
                    "persistent_keepalive": 25,
                }
            ],
        },
    }
    known = Known(path=lambda p: "/scratch" + p)
    cmds = netcmd.build("link_add", args, known)
    assert [c.text for c in cmds] == [
        "link add dev wg0 mtu 1420 type wireguard",
        "wg set wg0 private-key /scratch/etc/aios/secrets/wg0.key listen-port 51820 "
        f"peer {'x' * 42}A= endpoint 203.0.113.1:51820 allowed-ips 10.200.0.0/24,10.201.0.1/32 "
        "persistent-keepalive 25",
    ]
    assert isinstance(cmds[1], netcmd.ExecCmd) and cmds[1].argv[0] == "wg"


def test_tun_has_no_mac() -> None:
    with pytest.raises(ToolError, match="mac"):
        netcmd.build("link_add", {"name": "t0", "kind": "tun", "mac": "02:00:00:00:00:01"})


def test_link_set_and_delete() -> None:
    assert texts(
        "link_set",
        {"name": "v0", "mtu": 9000, "master": None, "mac": "02:00:00:00:00:0A", "state": "down"},
    ) == [
        "link set dev v0 mtu 9000 nomaster address 02:00:00:00:00:0a",
        "link set dev v0 down",
    ]
    assert texts("link_set", {"name": "br0", "bridge": {"stp": False}}) == [
        "link set dev br0 type bridge stp_state 0"
    ]
    assert texts("link_set", {"name": "v0", "master": "br0"}) == ["link set dev v0 master br0"]
    assert texts("link_delete", {"name": "v0"}) == ["link del dev v0"]


def test_addresses() -> None:
    assert texts("addr_add", {"dev": "i0", "address": "10.0.0.1/24"}) == [
        "addr replace 10.0.0.1/24 dev i0"
    ]
    assert texts("addr_delete", {"dev": "i0", "address": "2001:DB8::1/64"}) == [
        "addr del 2001:db8::1/64 dev i0"
    ]
    with pytest.raises(ToolError, match="address"):
        netcmd.build("addr_add", {"dev": "i0", "address": "10.0.0.300/24"})


@pytest.mark.parametrize(
    ("op", "args", "expected"),
    [
        (
            "route_replace",
            {"to": "default", "via": "10.0.0.1"},
            "route replace default via 10.0.0.1 table main",
        ),
        (
            "route_replace",
            {"to": "default", "via": "2001:db8::1", "dev": "i0"},
            "route replace ::/0 via 2001:db8::1 dev i0 table main",
        ),
        (
            "route_replace",
            {"to": "default", "family": "inet6", "type": "unreachable", "table": 7},
            "route replace unreachable ::/0 table 7",
        ),
        (
            "route_replace",
            {
                "to": "10.5.0.0/16",
                "via": "10.0.0.2",
                "table": 100,
                "metric": 5,
                "proto": "static",
                "src": "10.0.0.1",
                "scope": "global",
                "onlink": True,
            },
            "route replace 10.5.0.0/16 via 10.0.0.2 table 100 metric 5 proto static scope global "
            "src 10.0.0.1 onlink",
        ),
        (
            "route_replace",
            {"to": "10.6.0.1", "dev": "i0"},
            "route replace 10.6.0.1/32 dev i0 table main",
        ),
        (
            "route_delete",
            {"to": "10.5.0.0/16", "table": 100, "metric": 5},
            "route del 10.5.0.0/16 table 100 metric 5",
        ),
        (
            "route_delete",
            {"to": "10.8.0.0/16", "type": "blackhole"},
            "route del blackhole 10.8.0.0/16 table main",
        ),
    ],
)
def test_routes(op: str, args: dict[str, Any], expected: str) -> None:
    assert texts(op, args) == [expected]


def test_route_errors_name_the_field() -> None:
    with pytest.raises(
        ToolError, match=r"^to: '10.5.0.1/16' has host bits set; did you mean 10.5.0.0/16\?"
    ):
        netcmd.build("route_replace", {"to": "10.5.0.1/16", "dev": "i0"})
    with pytest.raises(ToolError, match="mix IPv4 and IPv6"):
        netcmd.build("route_replace", {"to": "10.5.0.0/16", "via": "2001:db8::1"})
    with pytest.raises(ToolError, match="family: inet6 does not match"):
        netcmd.build("route_replace", {"to": "10.5.0.0/16", "dev": "i0", "family": "inet6"})


def test_rules() -> None:
    cmds = netcmd.build(
        "rule_add",
        {
            "priority": 400,
            "from": "10.1.0.0/16",
            "to": "10.2.0.5",
            "iif": "i0",
            "oif": "v0",
            "fwmark": "16/0xff",
            "table": 100,
        },
    )
    assert [c.text for c in cmds] == [
        "rule add priority 400 from 10.1.0.0/16 to 10.2.0.5 iif i0 oif v0 fwmark 0x10/0xff "
        "lookup 100"
    ]
    six = netcmd.build("rule_add", {"priority": 101, "family": "inet6", "table": "main"})
    assert six[0].text == "-6 rule add priority 101 lookup main"
    assert isinstance(six[0], netcmd.IpCmd) and six[0].inet6
    assert texts("rule_add", {"priority": 5, "action": "blackhole", "fwmark": 7}) == [
        "rule add priority 5 fwmark 0x7 blackhole"
    ]
    assert texts("rule_delete", {"priority": 5}) == ["rule del priority 5"]
    with pytest.raises(ToolError, match="table"):
        netcmd.build("rule_add", {"priority": 5})


def test_sysctls_only_net_keys() -> None:
    assert texts("sysctl_set", {"key": "net.ipv4.ip_forward", "value": True}) == [
        "sysctl -w net.ipv4.ip_forward=1"
    ]
    assert texts("sysctl_set", {"key": "net.ipv4.tcp_rmem", "value": "4096\t131072\t6291456"}) == [
        "sysctl -w net.ipv4.tcp_rmem=4096\t131072\t6291456"
    ]
    for key in ("kernel.panic", "net", "net.ipv4/../../kernel", "vm.swappiness"):
        with pytest.raises(ToolError, match="not a net"):
            netcmd.build("sysctl_set", {"key": key, "value": 1})
    with pytest.raises(ToolError, match="value"):
        sysctl_value("1\n2")


def test_dns_set() -> None:
    (cmd,) = netcmd.build("dns_set", {"servers": ["10.0.0.53"], "search": ["lan"]})
    assert isinstance(cmd, netcmd.FileCmd) and cmd.path == "/etc/resolv.conf"
    assert cmd.content is not None and "nameserver 10.0.0.53\nsearch lan\n" in cmd.content
    (unbound,) = netcmd.build("dns_set", {"resolver": "unbound", "servers": ["1.1.1.1"]})
    assert isinstance(unbound, netcmd.FileCmd)
    assert unbound.path == "/etc/unbound/unbound.conf.d/aios-forward.conf"
    with pytest.raises(ToolError, match="search"):
        netcmd.build("dns_set", {"resolver": "unbound", "servers": ["1.1.1.1"], "search": ["x"]})
    with pytest.raises(ToolError, match="at most 3"):
        netcmd.build("dns_set", {"servers": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]})


@pytest.mark.parametrize(
    ("op", "args", "keys"),
    [
        (
            "link_add",
            {"name": "v0", "kind": "veth", "veth": {"peer": "v1"}},
            ["link:v0", "link:v1"],
        ),
        ("link_set", {"name": "v0", "mtu": 1400}, ["link:v0"]),
        ("addr_add", {"dev": "i0", "address": "10.0.0.1/24"}, ["link:i0"]),
        ("route_replace", {"to": "default", "via": "10.0.0.1"}, ["route:inet/main/default/0"]),
        (
            "route_replace",
            {"to": "2001:db8::/32", "dev": "i0", "table": 7},
            ["route:inet6/7/2001:db8::/32/1024"],
        ),
        ("route_delete", {"to": "10.5.0.0/16", "table": 100}, ["route:inet/100/10.5.0.0/16/*"]),
        ("rule_add", {"priority": 100, "from": "2001:db8::/32", "table": 100}, ["rule:inet6/100"]),
        ("sysctl_set", {"key": "net.ipv4.ip_forward", "value": 1}, ["sysctl:net.ipv4.ip_forward"]),
        (
            "dns_set",
            {"servers": [], "path": "/etc/netns/x/resolv.conf"},
            ["dns:/etc/netns/x/resolv.conf"],
        ),
    ],
)
def test_touches(op: str, args: dict[str, Any], keys: list[str]) -> None:
    assert netcmd.touches(op, args) == keys


def test_no_token_can_smuggle_a_batch_line() -> None:
    """Values reaching an ip batch line are checked; a newline never gets through."""
    for bad in ("10.0.0.1/24\nlink del dev lo", "10.0.0.1/24 dev lo"):
        with pytest.raises(ToolError):
            netcmd.build("addr_add", {"dev": "i0", "address": bad})
    with pytest.raises(ToolError, match=r"^dev: invalid interface name"):
        netcmd.build("addr_add", {"dev": "i0\nlink del dev lo", "address": "10.0.0.1/24"})
    with pytest.raises(ToolError, match=r"^macvlan\.parent: invalid interface name"):
        netcmd.build("link_add", {"name": "m", "kind": "macvlan", "macvlan": {"parent": "a b"}})
    with pytest.raises(ToolError, match="control characters"):
        netcmd.build(
            "link_add", {"name": "m", "kind": "macvlan", "macvlan": {"parent": "a", "mode": "x\ny"}}
        )
