"""Command building for every net write, against recorded expectations.

Kinds the test kernel lacks (vlan, bond, wireguard, dummy) are only tested
here: `test_double_*` compare the built `ip`/`wg` commands with what
iproute2 6.1 and wireguard-tools accept (recorded from their man pages);
the real kinds are also proven on real namespaces in tests/system.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from registry.core.errors import ToolError
from registry.drivers.net import commands as netcmd
from registry.drivers.net.commands import Known
from registry.drivers.net.system import sysctl_value


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


# --- the ip batch proof ---------------------------------------------------------------
#
# A model of how iproute2 (6.1, lib/utils.c getcmdline + makeargs) reads `ip -batch`
# input, written from its observable behaviour and checked against the real `ip` by
# tests/system/test_net_tools.py::test_the_batch_model_matches_ip: a line is read up to
# '\n'; everything from the first '#' is cut; a line ending in '\' + '\n' is joined
# with the next (cut at its '#' too); the C string ends at NUL; words are separated by
# spaces, tabs, '\r' and '\n', and a word that BEGINS with '"' or "'" runs to the next
# such quote (which it drops), whatever lies between.

_WS = " \t\r\n"


def _cut(line: str) -> str:
    return line.split("#", 1)[0]


def batch_lines(script: str) -> list[str]:
    """The command lines ip reads from `script` (before splitting into words)."""
    raw = [piece + "\n" for piece in script.split("\n")]
    raw[-1] = raw[-1][:-1]  # the text after the last '\n' has none
    if raw[-1] == "":
        raw.pop()
    out: list[str] = []
    i = 0
    while i < len(raw):
        line = _cut(raw[i])
        i += 1
        while "\\\n" in line:
            nxt = _cut(raw[i]) if i < len(raw) else ""
            i += 1
            head, _, tail = line.partition("\\\n")
            line = head + nxt + tail
        out.append(line.split("\0", 1)[0])
    return out


def batch_words(script: str) -> list[list[str]]:
    """The argv of every command ip runs for `script` (empty lines run nothing)."""
    commands = []
    for line in batch_lines(script):
        words: list[str] = []
        i = 0
        while i < len(line):
            while i < len(line) and line[i] in _WS:
                i += 1
            if i >= len(line):
                break
            if line[i] in "\"'":
                end = line.find(line[i], i + 1)
                assert end >= 0, "ip exits: Unterminated quoted string"
                words.append(line[i + 1 : end])
                i = end + 1
            else:
                j = i
                while j < len(line) and line[j] not in _WS:
                    j += 1
                words.append(line[i:j])
                i = j + 1
        if words:
            commands.append(words)
    return commands


def test_the_model_reproduces_the_injections_of_issue_8() -> None:
    """What unchecked names did: the model must show it, or it proves nothing."""
    assert batch_words('link add dev "y""netns"abcd type ifb\n') == [
        ["link", "add", "dev", "y", "netns", "abcd", "type", "ifb"]
    ]
    assert batch_words("link del dev k0#x\n") == [["link", "del", "dev", "k0"]]
    assert batch_words("link set dev 'k0' mtu 1280\n") == [
        ["link", "set", "dev", "k0", "mtu", "1280"]
    ]
    assert batch_words("link set dev x\\\nlink del dev k0\n") == [
        ["link", "set", "dev", "xlink", "del", "dev", "k0"]
    ]
    assert batch_words("link del dev k0\0 up\n") == [["link", "del", "dev", "k0"]]
    assert batch_words("link set dev a\rmtu\t1 up\n") == [
        ["link", "set", "dev", "a", "mtu", "1", "up"]
    ]


ALL_CHARS = range(0x110000)


def test_batch_words_are_exactly_the_allow_list() -> None:
    """Over every Unicode code point: a one-character word passes the IpCmd word check
    iff it is in WORD_CHARS, and no character the batch reader treats specially is."""
    allowed = {chr(c) for c in ALL_CHARS if netcmd._WORD.fullmatch(chr(c))}
    expected = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/-")
    assert allowed == expected
    assert not allowed & set(_WS + "\"'#\\\0")


def test_every_accepted_word_splits_back_into_itself() -> None:
    """For every allowed character, alone and at the start, middle and end of a word,
    and every pair: the line IpCmd gives ip splits back into exactly its words."""
    chars = sorted(set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/-"))
    words = list(chars) + [f"{c}ab" for c in chars] + [f"a{c}b" for c in chars]
    words += [f"ab{c}" for c in chars] + [a + b for a in chars for b in chars]
    for w in words:
        cmd = netcmd.ip("link", "set", "dev", w, "mtu", "1280")
        assert batch_words(cmd.line + "\n") == [list(cmd.words)], w
    batch = [netcmd.ip("link", "set", "dev", w, "up") for w in words[:500]]
    script = "".join(c.line + "\n" for c in batch)
    assert batch_words(script) == [list(c.words) for c in batch]


def test_every_other_character_is_refused_in_any_word() -> None:
    """Every code point outside the allow-list, in any position of any word, is refused
    when the line is built (checked through IpCmd for the BMP's first 0x3000 and every
    character the batch reader or a shell treats specially; beyond, the same regular
    expression was checked over every code point above)."""
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/-")
    for c in map(chr, range(0x3000)):
        if c in allowed:
            continue
        for w in (c, f"a{c}", f"{c}a", f"a{c}b"):
            with pytest.raises(ToolError, match="refusing the ip batch word"):
                netcmd.ip("link", "set", "dev", "a", "alias", w)
    with pytest.raises(ToolError, match="not an ip command"):
        netcmd.ip("netns", "add", "x")
    with pytest.raises(ToolError, match="not an ip command"):
        netcmd.IpCmd(())
    with pytest.raises(ToolError, match="words"):
        netcmd.ip("link", *(["up"] * netcmd.MAX_WORDS))


HOSTILE_NAMES = [
    '"y""netns"abcd',  # issue 8: three words, the link lands in netns abcd
    "'y''netns'abcd",
    '"k0""mtu"1280',
    "k0#x",  # the line ends at '#'
    "k0\\",  # joins the next line
    "k0\nlink del k0",
    "k0\n",  # what '^...$' let through
    "k0 mtu 1280",
    "k0\tmtu\t1280",
    "k0\rmtu\r1280",
    "k0\0x",
    "k0@x",
    "k0%x",
    "k0:1",
    "br/0",
    "-k0",
    ".",
    "..",
    "k0\u00a0x",
    "",
    "a" * 16,
]


@pytest.mark.parametrize("bad", HOSTILE_NAMES)
@pytest.mark.parametrize(
    ("op", "args", "field"),
    [
        ("link_add", {"name": "{}", "kind": "ifb"}, "name"),
        ("link_add", {"name": "v0", "kind": "veth", "veth": {"peer": "{}"}}, "veth.peer"),
        (
            "link_add",
            {"name": "m0", "kind": "macvlan", "macvlan": {"parent": "{}"}},
            "macvlan.parent",
        ),
        (
            "link_add",
            {"name": "v0", "kind": "vlan", "vlan": {"parent": "{}", "id": 5}},
            "vlan.parent",
        ),
        (
            "link_add",
            {"name": "x0", "kind": "vxlan", "vxlan": {"id": 5, "parent": "{}"}},
            "vxlan.parent",
        ),
        ("link_add", {"name": "i0", "kind": "ifb", "master": "{}"}, "master"),
        ("link_set", {"name": "{}", "mtu": 1400}, "name"),
        ("link_set", {"name": "i0", "master": "{}"}, "master"),
        ("link_delete", {"name": "{}"}, "name"),
        ("addr_add", {"dev": "{}", "address": "10.0.0.1/24"}, "dev"),
        ("addr_delete", {"dev": "{}", "address": "10.0.0.1/24"}, "dev"),
        ("route_replace", {"to": "10.5.0.0/16", "dev": "{}"}, "dev"),
        ("route_delete", {"to": "10.5.0.0/16", "dev": "{}"}, "dev"),
        ("rule_add", {"priority": 5, "iif": "{}", "table": 100}, "iif"),
        ("rule_delete", {"priority": 5, "oif": "{}"}, "oif"),
    ],
)
def test_hostile_names_are_refused_naming_the_field(
    op: str, args: dict[str, Any], field: str, bad: str
) -> None:
    def put(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: put(v) for k, v in value.items()}
        return bad if value == "{}" else value

    hostile = put(args)
    with pytest.raises(ToolError, match=rf"^{re.escape(field)}: invalid interface name "):
        netcmd.build(op, hostile)
    with pytest.raises(ToolError, match=rf"^{re.escape(field)}: invalid interface name "):
        netcmd.touches(op, hostile)


def test_the_builders_check_their_own_words() -> None:
    """Values the builders splice besides names (called directly, e.g. by the restore
    planner, without the schema): each refused with its field."""
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "link_add",
            {"name": "m0", "kind": "macvlan", "macvlan": {"parent": "a", "mode": "x y"}},
            "macvlan.mode",
        ),
        ("link_add", {"name": "b0", "kind": "bond", "bond": {"mode": "a#b"}}, "bond.mode"),
        ("link_add", {"name": "b0", "kind": "bond", "bond": {"miimon": "1 2"}}, "bond.miimon"),
        ("link_add", {"name": "x0", "kind": "vxlan", "vxlan": {"id": "5 dev lo"}}, "vxlan.id"),
        ("link_add", {"name": "t0", "kind": "tun", "tun": {"owner": "0 group 0"}}, "tun.owner"),
        ("link_add", {"name": "i0", "kind": "ifb", "mtu": "1400 up"}, "mtu"),
        ("link_add", {"name": "i0", "kind": "ifb", "mac": "02:00:00:00:00:01\n"}, "mac"),
        ("link_set", {"name": "i0", "state": "up\nlink del dev lo"}, "state"),
        ("route_replace", {"to": "10.5.0.0/16", "dev": "i0", "proto": "static#"}, "proto"),
        ("route_replace", {"to": "10.5.0.0/16", "dev": "i0", "scope": "link host"}, "scope"),
        ("route_replace", {"to": "10.5.0.0/16", "dev": "i0", "table": "main x"}, "table"),
        ("route_replace", {"to": "10.5.0.0/16", "dev": "i0", "metric": "5 x"}, "metric"),
        ("route_replace", {"to": "10.5.0.0/16", "via": "fe80::1%i0 x"}, "via"),
        ("route_replace", {"to": "fe80::/64", "via": "fe80::1%i0 x"}, "via"),
        ("addr_add", {"dev": "i0", "address": "fe80::1%x y/64"}, "address"),
        ("rule_add", {"priority": "5 x", "table": 1}, "priority"),
        ("rule_add", {"priority": 5, "fwmark": "1 x", "table": 1}, "fwmark"),
        ("rule_add", {"priority": 5, "action": "blackhole x"}, "action"),
        ("rule_add", {"priority": 5, "from": "fe80::%x y", "table": 1}, "from"),
        ("sysctl_set", {"key": "net.ipv4.ip_forward\n", "value": 1}, "key"),
        ("sysctl_set", {"key": "net.ipv4.ip_forward", "value": "1 0"}, "value"),
        ("sysctl_set", {"key": "net.ipv4.tcp_rmem", "value": "4096 131072"}, "value"),
        ("dns_set", {"servers": [], "path": "/etc/shadow"}, "path"),
        ("dns_set", {"servers": [], "path": "/etc/netns/../resolv.conf"}, "path"),
        ("dns_set", {"servers": [], "resolver": "unbound", "path": "/etc/resolv.conf"}, "path"),
        ("dns_set", {"servers": [], "path": "/etc/unbound/unbound.conf.d/x.conf"}, "path"),
    ]
    for op, args, field in cases:
        with pytest.raises(ToolError, match=rf"^{re.escape(field)}: ") as refused:
            netcmd.build(op, args)
        assert "Traceback" not in str(refused.value)


def test_multi_value_sysctls_and_resolver_files_still_work() -> None:
    assert texts("sysctl_set", {"key": "net.ipv4.tcp_rmem", "value": "4096 131072 6291456"}) == [
        "sysctl -w net.ipv4.tcp_rmem=4096 131072 6291456"
    ]
    for path in ("/etc/resolv.conf", "/etc/netns/lab-1/resolv.conf"):
        assert netcmd.touches("dns_set", {"servers": [], "path": path}) == [f"dns:{path}"]
    unbound = {"servers": [], "resolver": "unbound", "path": "/etc/unbound/unbound.conf.d/a.conf"}
    assert netcmd.touches("dns_set", unbound) == ["dns:/etc/unbound/unbound.conf.d/a.conf"]


def test_wireguard_values_are_checked_before_wg_sees_them() -> None:
    base = {"private_key_file": "/k", "peers": [{"public_key": "x" * 42 + "A="}]}
    for endpoint in ("1.2.3.4:51820,5.6.7.8:1", "a b:1", "h:0", "h:65536", "-x:1", "[::1]x:1"):
        peer = {**base["peers"][0], "endpoint": endpoint}  # type: ignore[index]
        args = {"name": "wg0", "kind": "wireguard", "wireguard": {**base, "peers": [peer]}}
        with pytest.raises(ToolError, match=r"^wireguard\.peers\[0\]\.endpoint: "):
            netcmd.build("link_add", args)
    bad_key = {**base, "peers": [{"public_key": "x" * 42 + "A=\n"}]}
    with pytest.raises(ToolError, match=r"^wireguard\.peers\[0\]\.public_key: "):
        netcmd.build("link_add", {"name": "wg0", "kind": "wireguard", "wireguard": bad_key})
    ok = {**base, "peers": [{**base["peers"][0], "endpoint": "[2001:db8::1]:51820"}]}  # type: ignore[index]
    (_, wg) = netcmd.build("link_add", {"name": "wg0", "kind": "wireguard", "wireguard": ok})
    assert isinstance(wg, netcmd.ExecCmd) and "[2001:db8::1]:51820" in wg.argv


def test_the_name_rule_is_the_same_at_every_layer() -> None:
    """specs.types (validator), contract.catalogue.netschema (JSON Schema pattern) and netcmd
    (builders) accept exactly the same names: every code point in every position, and
    the edge cases."""
    from jsonschema import Draft202012Validator

    from contract.catalogue.netschema import IFNAME
    from contract.vocab.netvalues import is_ifname

    schema = Draft202012Validator(IFNAME)
    names = [f"a{chr(c)}b" for c in range(0x3000)] + [chr(c) for c in range(0x3000)]
    names += [f"{chr(c)}ab" for c in range(0x80)] + [f"ab{chr(c)}" for c in range(0x80)]
    names += [".", "..", "...", ".a", "-a", "a-", "a" * 15, "a" * 16, "", "k0\n", "\nk0"]
    for n in names:
        layers = (is_ifname(n), schema.is_valid(n), netcmd.is_name(n))
        assert len(set(layers)) == 1, (n, layers)
    assert is_ifname("br-lan.10") and not is_ifname("k0\n")
