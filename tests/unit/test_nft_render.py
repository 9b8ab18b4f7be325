"""nft rendering, error mapping, canonical text, ruleset splitting and aiOS's rule parsing."""

from __future__ import annotations

import pytest

from contract.vocab.nft import check_rule_text
from registry.core.errors import ToolError
from registry.drivers.nft import ruleset as nft

TABLE = {
    "family": "inet",
    "name": "filter",
    "sets": [
        {
            "name": "allow",
            "type": "ipv4_addr",
            "flags": ["interval"],
            "elements": ["10.0.0.0/8", "192.0.2.1"],
            "comment": "ops",
        },
        {"name": "ifs", "type": "ifname", "elements": ["lo", "v0"]},
    ],
    "chains": [
        {
            "name": "input",
            "type": "filter",
            "hook": "input",
            "priority": "filter+10",
            "policy": "drop",
            "rules": [
                "ct state established,related accept",
                "  ip saddr @allow tcp dport 22 accept  ",
            ],
        },
        {
            "name": "in",
            "type": "filter",
            "hook": "ingress",
            "priority": -150,
            "device": "v0",
            "rules": [],
        },
        {
            "name": "sub",
            "rules": ["tcp dport { 80, 443 } accept", 'iif "v0" oif { "i0", v1 } accept'],
        },
    ],
}

EXPECTED = """\
table inet filter
delete table inet filter
table inet filter {
\tset allow {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 10.0.0.0/8, 192.0.2.1 }
\t\tcomment "ops"
\t}
\tset ifs {
\t\ttype ifname
\t\telements = { "lo", "v0" }
\t}
\tchain input {
\t\ttype filter hook input priority filter + 10; policy drop;
\t\tct state established,related accept
\t\tip saddr @allow tcp dport 22 accept
\t}
\tchain in {
\t\ttype filter hook ingress device "v0" priority -150;
\t}
\tchain sub {
\t\ttcp dport { 80, 443 } accept
\t\tiif "v0" oif { "i0", v1 } accept
\t}
}
table ip old
delete table ip old
"""


def test_render_one_transaction() -> None:
    script = nft.render([TABLE], [{"family": "ip", "name": "old"}])
    assert script.text == EXPECTED
    assert script.rules == {("inet", "filter"): 4}
    assert (
        script.origins[16]
        == "table inet filter, chain input, rule 1 (`ip saddr @allow tcp dport 22 accept`)"
    )


def test_render_refuses_bad_rules_and_duplicates() -> None:
    bad = {"name": "t", "chains": [{"name": "c", "rules": ["accept", "accept; flush ruleset"]}]}
    with pytest.raises(ToolError, match=r"table inet t, chain c, rule 1: rule may not contain ';'"):
        nft.render([bad])
    with pytest.raises(ToolError, match="listed twice"):
        nft.render([{"name": "t"}, {"family": "inet", "name": "t"}])
    with pytest.raises(ToolError, match="both applied and deleted"):
        nft.render([{"name": "t"}], [{"name": "t"}])
    for rule in ("delete table inet filter", "accept }", 'accept "x', "accept # c", "a\nb"):
        with pytest.raises(ToolError):
            nft.render([{"name": "t", "chains": [{"name": "c", "rules": [rule]}]}])


CORPUS = [
    "ip saddr 10.0.0.0/8 tcp dport 22 accept",
    "  meta l4proto tcp counter drop ",
    "tcp dport != 22 reject with tcp reset",
    "ct state established,related accept",
    "ip6 saddr ::1 accept",
    "table-x accept",
    "table accept",
    "flush",
    "listen accept",
    "list ruleset",
    "",
    "   ",
    "accept;",
    "accept # x",
    "tcp dport { 22, 80 } accept",
    'iifname "eth0" accept',
    "a" * 4097,
    "log prefix x accept",
    "limit rate 10/second accept",
    "meta mark & 0xff == 0x1 accept",
    "ip saddr @allow accept",
    "ip daddr $x accept",
]


@pytest.mark.parametrize("rule", CORPUS)
def test_fast_path_agrees_with_specs_check(rule: str) -> None:
    try:
        expected: str | None = check_rule_text(rule)
    except ValueError:
        expected = None
    try:
        got: str | None = nft.check_rule(rule)
    except ToolError:
        got = None
    assert got == expected


def test_map_error_names_the_rule() -> None:
    script = nft.render([TABLE])
    stderr = (
        "/dev/stdin:17:3-20: Error: Could not process rule: No such file or directory\n"
        "\t\tip saddr @allow tcp dport 22 accept\n\t\t^^^^^^^^\n"
    )
    assert nft.map_error(stderr, script.origins) == (
        "table inet filter, chain input, rule 1 (`ip saddr @allow tcp dport 22 accept`): "
        "Could not process rule: No such file or directory"
    )
    assert nft.map_error("Error: something\n", None) == "Error: something"


LISTING = """\
table inet filter {
\tset allow {
\t\ttype ipv4_addr
\t\telements = { 10.0.0.1 }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tip saddr @allow counter packets 12 bytes 3456 accept
\t\tiif "lo" log prefix "in" drop
\t\ttcp dport 22 reject
\t\tmeta mark 0x1
\t}
}
table ip nat {
\tchain post {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\toif "v0" masquerade
\t}
}
"""


def test_split_and_canonical() -> None:
    tables = nft.split_ruleset(LISTING)
    assert list(tables) == [("inet", "filter"), ("ip", "nat")]
    assert tables[("ip", "nat")].startswith("table ip nat {\n") and tables[("ip", "nat")].endswith(
        "}\n"
    )
    assert "counter accept" in nft.canonical(tables[("inet", "filter")])
    assert "packets" not in nft.canonical(LISTING)


def test_aios_rules_parsing() -> None:
    assert nft.aios_rules(LISTING) == [
        {
            "chain": "input",
            "rule": "ip saddr @allow counter packets 12 bytes 3456 accept",
            "action": "accept",
        },
        {"chain": "input", "rule": 'iif "lo" log prefix "in" drop', "action": "drop"},
        {"chain": "input", "rule": "tcp dport 22 reject", "action": "reject"},
        {"chain": "input", "rule": "meta mark 0x1", "action": "other"},
        {"chain": "post", "rule": 'oif "v0" masquerade', "action": "other"},
    ]


def test_replace_script_and_interfaces() -> None:
    assert nft.replace_script({("inet", "a"): "table inet a {\n}", ("ip", "b"): None}) == (
        "table inet a\ndelete table inet a\ntable inet a {\n}\ntable ip b\ndelete table ip b\n"
    )
    assert nft.referenced_interfaces([TABLE]) == ["v0", "i0", "v1"]


def test_parse_generation_reads_nfta_gen_id() -> None:
    import struct

    from registry.drivers.nft.libnft import parse_generation

    attrs = struct.pack("=HH", 8, 1) + struct.pack(">I", 4242)  # NFTA_GEN_ID
    attrs += struct.pack("=HH", 8, 2) + struct.pack(">I", 99)  # NFTA_GEN_PROC_PID
    msg = struct.pack("=BBH", 0, 0, 0) + attrs
    reply = struct.pack("=IHHII", 16 + len(msg), (10 << 8) | 15, 0, 1, 0) + msg
    assert parse_generation(reply) == 4242
    error = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -1) + bytes(16)
    assert parse_generation(error) is None
    assert parse_generation(reply[:18]) is None
    no_id = struct.pack("=IHHII", 16 + 4 + 8, (10 << 8) | 15, 0, 1, 0)
    no_id += struct.pack("=BBH", 0, 0, 0) + struct.pack("=HH", 8, 2) + struct.pack(">I", 99)
    assert parse_generation(no_id) is None


def _with(path: tuple[str | int, ...], value: object) -> dict[str, object]:
    """A deep copy of TABLE with one value replaced."""
    import copy

    table = copy.deepcopy(TABLE)
    target: object = table
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    return table


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        # issue 8: a netdev chain's device is spliced inside "..."
        (("chains", 1, "device"), 'v0" priority 0; }', "device: invalid interface name"),
        (("chains", 1, "device"), 'lo"}table ip x{', "device: invalid interface name"),
        (("chains", 1, "device"), "v0\n", "device: invalid interface name"),
        (("chains", 1, "device"), "v0#", "device: invalid interface name"),
        (("chains", 1, "device"), "v0@x", "device: invalid interface name"),
        (("sets", 1, "elements"), ['lo" }'], "elements[0]: element 'lo\" }' is not an interface"),
        (("sets", 1, "elements"), ["eth*x"], "is not an interface name"),
        (("sets", 0, "elements"), ["10.0.0.0/8 }"], "elements[0]: element"),
        (("sets", 0, "elements"), ["10.0.0.1\n"], "not printable ASCII"),
        (("sets", 0, "elements"), [True], "is not a string or number"),
        (("sets", 0, "comment"), 'ops" }', "without '\"'"),
        (("sets", 0, "comment"), "ops\\", "without"),
        (("sets", 0, "comment"), "ops\rx", "printable ASCII only"),
        (("sets", 0, "comment"), "ops\0", "printable ASCII only"),
        (
            ("sets", 0, "type"),
            "ipv4_addr; flush ruleset",
            "type: 'ipv4_addr; flush ruleset' is not one of",
        ),
        (("sets", 0, "flags"), ["interval;"], "flags: 'interval;' is not one of"),
        (("sets", 0, "name"), "allow }", "set: invalid nft identifier"),
        (("chains", 0, "name"), "input\n", "chain: invalid nft identifier"),
        (
            ("chains", 0, "policy"),
            "drop; flush ruleset",
            "policy: 'drop; flush ruleset' is not one of",
        ),
        (("chains", 0, "hook"), "input priority 0;", "hook: 'input priority 0;' is not one of"),
        (("chains", 0, "type"), "filter\n", "type: 'filter\\n' is not one of"),
        (
            ("chains", 0, "priority"),
            "filter\n; flush ruleset",
            "priority 'filter\\n; flush ruleset'",
        ),
        (("chains", 0, "priority"), True, "must be a number"),
        (("chains", 0, "priority"), 1 << 40, "out of the 32-bit range"),
        (("name",), "filter\n", "invalid nft identifier 'filter\\n'"),
        (("name",), "x; flush ruleset", "invalid nft identifier"),
        (("family",), "inet filter; flush ruleset; table inet", "table family"),
    ],
)
def test_render_refuses_what_could_change_the_script(
    path: tuple[str | int, ...], value: object, message: str
) -> None:
    """firewall.apply's renderer is the last line: whatever the schema let through,
    nothing but checked values reaches the nft text."""
    with pytest.raises(ToolError) as refused:
        nft.render([_with(path, value)])
    assert message in str(refused.value)


def test_table_references_are_checked_for_listings_and_restores() -> None:
    with pytest.raises(ToolError, match="invalid nft identifier"):
        nft.ref({"family": "inet", "name": "x; flush ruleset"})
    with pytest.raises(ToolError, match="invalid nft identifier"):
        nft.replace_script({("inet", "x\nflush ruleset"): None})
    assert nft.render([_with(("sets", 1, "elements"), ["lo", "eth*", "br-lan.10"])]).text.count(
        '"eth*"'
    )


def test_referenced_interfaces_only_names_of_the_allow_list() -> None:
    table = _with(("chains", 2, "rules"), ['iif "k0;x" accept', 'iif { "a b", ok0 } accept'])
    assert nft.referenced_interfaces([table]) == ["v0", "ok0"]
