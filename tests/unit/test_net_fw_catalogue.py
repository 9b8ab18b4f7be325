"""The net and firewall tool catalogue: valid draft 2020-12 schemas, flags, and schema
rejection of a wrong input for every tool (with the JSON path the error points at)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from contract.catalogue import firewall as firewall_defs
from contract.catalogue import net as net_defs

SPECS = {spec.name: spec for spec in (*net_defs.ALL, *firewall_defs.ALL)}

GOOD_TABLE = {
    "family": "inet",
    "name": "filter",
    "sets": [
        {"name": "allow", "type": "ipv4_addr", "flags": ["interval"], "elements": ["10.0.0.0/8"]}
    ],
    "chains": [
        {
            "name": "input",
            "type": "filter",
            "hook": "input",
            "priority": "filter",
            "policy": "drop",
            "rules": ["ip saddr @allow accept"],
        },
        {"name": "sub", "rules": ["tcp dport 22 accept"]},
    ],
}

# tool -> (a valid input, a wrong input, JSON path of the error)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "net.interfaces": ({}, {"verbose": True}, "$"),
    "net.state": (
        {"sysctls": ["net.ipv4.ip_forward"]},
        {"sysctls": ["kernel.panic"]},
        "$.sysctls[0]",
    ),
    "net.link_add": (
        {
            "name": "v0",
            "kind": "veth",
            "mtu": 1400,
            "state": "up",
            "master": None,
            "veth": {"peer": "v1"},
        },
        {"name": "v0", "kind": "veth", "veth": {"peer": "has space"}},
        "$.veth.peer",
    ),
    "net.link_set": ({"name": "v0", "mtu": 9000}, {"name": "v0", "mtu": 67}, "$.mtu"),
    "net.link_delete": ({"name": "v0"}, {"name": "a/b"}, "$.name"),
    "net.addr_add": (
        {"dev": "v0", "address": "10.0.0.1/24"},
        {"dev": "v0", "address": "10.0.0.1"},
        "$.address",
    ),
    "net.addr_delete": (
        {"dev": "v0", "address": "2001:db8::1/64"},
        {"dev": "v0", "address": "10.0.0.1/33"},
        "$.address",
    ),
    "net.route_replace": (
        {"to": "default", "via": "10.0.0.1"},
        {"to": "10.0.0.0/8", "via": "10.0.0.1", "metric": -1},
        "$.metric",
    ),
    "net.route_delete": (
        {"to": "10.1.0.0/16", "table": 100},
        {"to": "10.1.0.0/16", "table": "local"},
        "$.table",
    ),
    "net.rule_add": (
        {"priority": 100, "from": "10.0.0.0/8", "table": 100},
        {"priority": 0, "table": 100},
        "$.priority",
    ),
    "net.rule_delete": ({"priority": 100}, {"priority": 100, "iif": ""}, "$.iif"),
    "net.sysctl_set": (
        {"key": "net.ipv4.ip_forward", "value": 1},
        {"key": "kernel.panic", "value": 1},
        "$.key",
    ),
    "net.dns_set": (
        {"servers": ["1.1.1.1"], "search": ["lan"]},
        {"servers": ["1.1.1.1"], "search": ["bad domain"]},
        "$.search[0]",
    ),
    "net.apply": (
        {"commands": [{"op": "link_add", "args": {"name": "i0", "kind": "ifb"}}]},
        {
            "commands": [
                {"op": "link_add", "args": {"name": "i0", "kind": "ifb"}},
                {"op": "addr_add", "args": {"dev": "i0", "address": "10.0.0.1/24"}},
                {"op": "link_set", "args": {"name": "i0", "mtu": 10}},
            ]
        },
        "$.commands[2].args.mtu",
    ),
    "net.ping": ({"host": "10.0.0.1", "count": 1}, {"host": "10.0.0.1", "count": -1}, "$.count"),
    "net.dns": ({"hostname": "localhost"}, {"hostname": ""}, "$.hostname"),
    "net.http_get": ({"url": "http://127.0.0.1:1/"}, {"url": "ftp://x"}, "$.url"),
    "net.port_scan": (
        {"host": "127.0.0.1", "port": 22},
        {"host": "127.0.0.1", "port": 70000},
        "$.port",
    ),
    "firewall.rules": ({}, {"table": "x"}, "$"),
    "firewall.add_rule": (
        {"chain": "input", "rule": "tcp dport 22", "action": "accept"},
        {"chain": "input", "rule": "tcp dport 22"},
        "$",
    ),
    "firewall.delete_rule": (
        {"chain": "input", "index": 0},
        {"chain": "input", "index": -1},
        "$.index",
    ),
    "firewall.ruleset": (
        {"tables": [{"family": "inet", "name": "filter"}], "format": "json"},
        {"format": "xml"},
        "$.format",
    ),
    "firewall.apply": (
        {"tables": [GOOD_TABLE], "delete": [{"family": "ip", "name": "old"}]},
        {"tables": [{**GOOD_TABLE, "chains": [{"name": "c", "hook": "input", "rules": []}]}]},
        "$.tables[0].chains[0]",
    ),
    "firewall.check": (
        {"tables": [GOOD_TABLE]},
        {"tables": [{"family": "inet", "name": "1bad"}]},
        "$.tables[0].name",
    ),
    "firewall.canonicalize": (
        {"tables": [GOOD_TABLE]},
        {"tables": [{**GOOD_TABLE, "family": "ipx"}]},
        "$.tables[0].family",
    ),
}


def test_every_tool_has_a_case() -> None:
    assert set(CASES) == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_schemas_are_valid_draft_2020_12(name: str) -> None:
    spec = SPECS[name]
    for schema in (spec.input_schema, spec.output_schema):
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["additionalProperties"] is False
    assert spec.timeout_ms >= 5000
    if spec.writes:
        assert spec.reversible, f"{name} writes but is not reversible"


@pytest.mark.parametrize("name", sorted(CASES))
def test_schema_accepts_good_and_rejects_wrong_input(name: str) -> None:
    good, bad, path = CASES[name]
    validator = Draft202012Validator(SPECS[name].input_schema)
    assert list(validator.iter_errors(good)) == []
    errors = list(validator.iter_errors(bad))
    assert errors, f"{name} accepted {bad}"
    assert path in {e.json_path for e in errors}, [(e.json_path, e.message) for e in errors]


def test_capabilities_and_risk_follow_aios() -> None:
    assert SPECS["net.port_scan"].capabilities == ("net_read", "net_scan")
    assert SPECS["firewall.add_rule"].risk == "critical"
    assert SPECS["firewall.delete_rule"].risk == "critical"
    assert SPECS["net.link_delete"].risk == "high"
    assert {s.capabilities for n, s in SPECS.items() if n.startswith("firewall.") and s.writes} == {
        ("firewall_manage",)
    }
    assert net_defs.NET_APPLY.input_schema["$defs"].keys() == net_defs.WRITE_INPUTS.keys()
    assert firewall_defs.FIREWALL_APPLY.input_schema == firewall_defs.FIREWALL_CHECK.input_schema


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ({"name": "i0", "kind": "ifb", "veth": {"peer": "v1"}}, "$.kind"),
        ({"name": "v0", "kind": "veth"}, "$"),
        (
            {
                "name": "x0",
                "kind": "vxlan",
                "vxlan": {"id": 1, "remote": "10.0.0.1", "group": "239.1.1.1", "parent": "e0"},
            },
            "$.vxlan",
        ),
        ({"name": "x0", "kind": "vxlan", "vxlan": {"id": 1, "group": "239.1.1.1"}}, "$.vxlan"),
        ({"name": "t0", "kind": "tap", "tun": {"owner": -1}}, "$.tun.owner"),
        (
            {"name": "w0", "kind": "wireguard", "wireguard": {"private_key_file": "rel/key"}},
            "$.wireguard.private_key_file",
        ),
    ],
)
def test_link_add_kind_blocks(args: dict[str, Any], path: str) -> None:
    validator = Draft202012Validator(SPECS["net.link_add"].input_schema)
    assert path in {e.json_path for e in validator.iter_errors(args)}


@pytest.mark.parametrize(
    ("args", "ok"),
    [
        ({"to": "10.0.0.0/8", "type": "blackhole"}, True),
        ({"to": "10.0.0.0/8", "type": "blackhole", "dev": "i0"}, False),
        ({"to": "10.0.0.0/8"}, False),
        ({"to": "10.0.0.0/8", "dev": "i0"}, True),
    ],
)
def test_route_replace_needs_via_or_dev_for_unicast_only(args: dict[str, Any], ok: bool) -> None:
    validator = Draft202012Validator(SPECS["net.route_replace"].input_schema)
    assert validator.is_valid(args) is ok


def test_dns_set_caps_resolvconf_servers_but_not_unbound() -> None:
    validator = Draft202012Validator(SPECS["net.dns_set"].input_schema)
    four = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert not validator.is_valid({"servers": four})
    assert validator.is_valid({"servers": four, "resolver": "unbound"})
