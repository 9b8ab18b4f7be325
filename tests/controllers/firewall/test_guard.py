"""The lockout guard and the rule reader it stands on, table-driven, both ways.

Each case is a base `input` chain (policy and rules as nft prints them, plus
optional regular chains and named sets) and what the guard must say: None
(safe) or a fragment of its reason. Pure; no nft.
"""

from __future__ import annotations

import pytest

from controllers.firewall.guard import lockout
from controllers.firewall.parse import ParsedChain, ParsedSet, ParsedTable
from controllers.firewall.rules import contains, read_rule

EST = "ct state established,related accept"
SSH = "tcp dport 22 accept"
CONSOLE = "tcp dport 9090 accept"


def table(
    rules: list[str],
    *,
    policy: str = "drop",
    hook: str = "input",
    extra: tuple[ParsedChain, ...] = (),
    sets: tuple[ParsedSet, ...] = (),
) -> ParsedTable:
    base = ParsedChain("input", type="filter", hook=hook, priority="filter", policy=policy)
    base = ParsedChain(**{**base.__dict__, "rules": tuple(rules)})
    return ParsedTable("inet", "filter", sets, (base, *extra))


SAFE: list[tuple[str, ParsedTable]] = [
    ("plain accepts", table([EST, SSH, CONSOLE])),
    ("anonymous set", table([EST, "tcp dport { 22, 80, 9090 } accept"])),
    ("port range", table([EST, "tcp dport 1-10000 counter accept"])),
    ("source-narrowed", table([EST, "ip saddr 10.0.0.0/8 tcp dport { 22, 9090 } accept"])),
    ("interface-narrowed", table([EST, 'iifname "br-lan" tcp dport { 22, 9090 } accept'])),
    ("rate-limited", table([EST, "tcp dport { 22, 9090 } limit rate 10/second accept"])),
    ("new connections", table([EST, "ct state new accept"])),
    ("policy accept, nothing", table([], policy="accept")),
    ("not an input hook", table([], hook="forward")),
    ("invalid dropped first", table(["ct state invalid drop", EST, SSH, CONSOLE])),
    ("blocklist first", table(["ip saddr @bad drop", EST, SSH, CONSOLE])),
    ("udp drop first", table(["udp dport 22 drop", EST, SSH, CONSOLE])),
    ("icmp accept", table(["meta l4proto { icmp, ipv6-icmp } accept", EST, SSH, CONSOLE])),
    (
        "verdict map",
        table(
            [
                "ct state vmap { invalid : drop, established : accept, related : accept }",
                "tcp dport vmap { 22 : accept, 9090 : accept }",
            ]
        ),
    ),
    (
        "named set",
        table(
            [EST, "tcp dport @mgmt accept"],
            sets=(ParsedSet("mgmt", "inet_service", elements=("22", "9000-9100")),),
        ),
    ),
    (
        "jump to a regular chain",
        table([EST, "jump mgmt"], extra=(ParsedChain("mgmt", rules=(SSH, CONSOLE)),)),
    ),
    (
        "goto behind an interface match",
        table(
            [EST, 'iifname "lan0" goto lan'],
            extra=(ParsedChain("lan", rules=("tcp dport { 22, 9090 } accept",)),),
        ),
    ),
    ("final drop after accepts", table([EST, SSH, CONSOLE, "counter drop"], policy="accept")),
    ("log and comment", table([EST, 'tcp dport 22 log prefix "ssh " accept comment "x"', CONSOLE])),
]

UNSAFE: list[tuple[str, ParsedTable, str]] = [
    ("no ssh", table([EST, CONSOLE]), "accepts no ssh"),
    ("no console", table([EST, SSH]), "accepts no the management console"),
    ("no established", table([SSH, CONSOLE]), "accepts no established"),
    ("ssh on loopback only", table([EST, 'iif "lo" tcp dport 22 accept', CONSOLE]), "no ssh"),
    ("source-only accept", table([EST, "ip saddr 10.0.0.0/8 accept", CONSOLE]), "no ssh"),
    ("final drop", table(["drop"], policy="accept"), "drops ssh (tcp dport 22) at `drop`"),
    (
        "final reject",
        table([EST, "reject with icmpx type admin-prohibited"], policy="accept"),
        "drops ssh",
    ),
    ("ssh dropped before accept", table([EST, "tcp dport 22 drop", SSH, CONSOLE]), "drops ssh"),
    ("all tcp dropped", table([EST, "meta l4proto tcp drop", SSH, CONSOLE]), "drops ssh"),
    ("unreadable rule", table([EST, "meta mark 0x1 drop", SSH, CONSOLE]), "may drop"),
    ("mangling rule", table([EST, "meta mark set 1", SSH, CONSOLE]), "may drop"),
    ("queue", table(["queue", EST, SSH, CONSOLE]), "may drop"),
    ("unknown named set", table([EST, "tcp dport @nope accept", CONSOLE]), "no ssh"),
    ("service name", table([EST, "tcp dport ssh accept", CONSOLE]), "no ssh"),
    ("jump to a missing chain", table([EST, "jump nowhere", SSH, CONSOLE]), "may drop"),
    (
        "drop inside a jumped chain",
        table([EST, "jump deny", SSH, CONSOLE], extra=(ParsedChain("deny", rules=("drop",)),)),
        "drops ssh",
    ),
    ("negated port", table([EST, "tcp dport != 22 accept", CONSOLE]), "no ssh"),
]


@pytest.mark.parametrize("name,parsed", SAFE, ids=[c[0] for c in SAFE])
def test_safe_tables(name: str, parsed: ParsedTable) -> None:
    assert lockout(parsed) is None


@pytest.mark.parametrize("name,parsed,fragment", UNSAFE, ids=[c[0] for c in UNSAFE])
def test_lockout_tables(name: str, parsed: ParsedTable, fragment: str) -> None:
    reason = lockout(parsed)
    assert reason is not None and fragment in reason, reason
    assert reason.startswith("table inet/filter: chain input ")


def test_reason_names_every_missing_flow() -> None:
    reason = lockout(table([]))
    assert reason is not None
    for flow in ("ssh", "the management console", "established connections"):
        assert f"accepts no {flow}" in reason


@pytest.mark.parametrize(
    "rule,selectors,verdict,understood",
    [
        ("tcp dport 22 accept", ["tcp dport"], "accept", True),
        (
            'iifname "br lan" udp dport { 53, 67 } counter accept',
            ["iifname", "udp dport"],
            "accept",
            True,
        ),
        ("ct state invalid drop", ["ct state"], "drop", True),
        ("jump chain2", [], "jump", True),
        ("reject with tcp reset", [], "reject", True),
        ("fib daddr type local accept", ["fib daddr type"], "accept", True),
        ("ct state vmap { established : accept }", [], "vmap", True),
        ("limit rate over 10/second burst 5 packets drop", ["limit"], "drop", True),
        ('oifname "wan0" masquerade', ["oifname"], None, False),
        ("tcp flags & (syn | ack) == syn accept", [], None, False),
        ("accept meta mark set 1", [], "accept", False),
    ],
)
def test_read_rule(rule: str, selectors: list[str], verdict: str | None, understood: bool) -> None:
    got = read_rule(rule)
    assert got.understood is understood
    if understood:
        assert [m.selector for m in got.matches] == selectors
        assert got.verdict == verdict


@pytest.mark.parametrize(
    "value,item,expected",
    [
        ("22", "22", True),
        ("{ 22, 9090 }", "9090", True),
        ("{ 80, 8000-9999 }", "9090", True),
        ("1-21", "22", False),
        ("ssh", "22", None),
        ("@mgmt", "22", True),
        ("@missing", "22", None),
        ("established,related", "established", True),
        ("{ established, related }", "new", False),
    ],
)
def test_contains(value: str, item: str, expected: bool | None) -> None:
    assert contains(value, item, {"mgmt": ("22", "9090")}) is expected


@pytest.mark.parametrize(
    "rule",
    [
        "ip saddr 10.0.1.0/24 tcp dport 1025 accept",
        "ip6 saddr fd00::/64 tcp dport 22 counter accept",
        'iifname "br-lan" udp dport 22 accept comment "not tcp"',
        'iifname "lo" tcp dport 22 accept',
        "tcp dport 9090 accept",
        "ip saddr 10.0.0.1 iifname eth0 tcp dport 80 accept",
    ],
)
def test_fast_path_agrees_with_the_full_reading(rule: str) -> None:
    from controllers.firewall.guard import _SIMPLE_ACCEPT, FLOWS, _Walker

    simple = _SIMPLE_ACCEPT.match(rule)
    assert simple is not None
    parsed = table([rule])
    for flow in FLOWS:
        walker = _Walker(parsed, flow)
        if walker._passes(simple, rule):
            assert walker._rule(read_rule(rule), (), 0) is None, (rule, flow)
