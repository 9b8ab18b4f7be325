"""firewall.* tools on a real namespace, read back with `ip netns exec NS nft` (not the tools).

Covers aiOS's rules/add_rule/delete_rule (shapes and error strings), apply
(one transaction; a bad rule anywhere changes nothing), check, ruleset
(text and JSON), canonicalize (throwaway namespace; `ssh` equals a live
`22`), and snapshot/restore round trips for every write.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from registry.core.errors import ToolError
from tests.system.helpers import run
from tests.system.netdriver import Driver, nft

TABLE: dict[str, Any] = {
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
            "rules": [
                "ct state established,related accept",
                'iif "lo" accept',
                "ip saddr @allow tcp dport ssh accept",
                "counter",
            ],
        },
        {"name": "sub", "rules": ["tcp dport { 80, 443 } accept"]},
    ],
}
NAT: dict[str, Any] = {
    "family": "ip",
    "name": "nat",
    "chains": [
        {
            "name": "post",
            "type": "nat",
            "hook": "postrouting",
            "priority": "srcnat",
            "policy": "accept",
            "rules": ['oifname "v0" masquerade'],
        }
    ],
}


@pytest.fixture
def drv(netns: str, tmp_path: Path) -> Driver:
    return Driver(netns, tmp_path)


def tables(ns: str) -> dict[str, str]:
    """Each table's listing by `family name` (table order is creation order; it carries
    no meaning, so restores are compared table by table)."""
    names = [line.removeprefix("table ") for line in nft(ns, "list", "tables").splitlines()]
    return {name: nft(ns, "list", "table", *name.split()) for name in names}


def test_apply_check_ruleset(drv: Driver, netns: str) -> None:
    assert drv.run("firewall.check", {"tables": [TABLE, NAT]}) == {"ok": True}
    assert nft(netns, "list", "ruleset") == ""  # check changed nothing
    out = drv.run("firewall.apply", {"tables": [TABLE, NAT]})
    assert out == {
        "applied": [
            {"family": "inet", "name": "filter", "rules": 5},
            {"family": "ip", "name": "nat", "rules": 1},
        ],
        "deleted": [],
    }
    live = nft(netns, "list", "table", "inet", "filter")
    assert "ip saddr @allow tcp dport 22 accept" in live
    assert "type filter hook input priority filter; policy drop;" in live
    assert 'oifname "v0" masquerade' in nft(netns, "list", "table", "ip", "nat")
    listed = drv.run("firewall.ruleset", {})
    assert [(t["family"], t["name"], t["exists"]) for t in listed["tables"]] == [
        ("inet", "filter", True),
        ("ip", "nat", True),
    ]
    assert listed["tables"][0]["text"] == live.replace("counter packets 0 bytes 0", "counter")
    one = drv.run(
        "firewall.ruleset", {"tables": [{"family": "ip", "name": "nat"}, {"name": "nope"}]}
    )
    assert one["tables"][1] == {"family": "inet", "name": "nope", "exists": False}
    as_json = drv.run(
        "firewall.ruleset", {"tables": [{"family": "ip", "name": "nat"}], "format": "json"}
    )
    kinds = [next(iter(o)) for o in as_json["tables"][0]["json"]]
    assert kinds == ["table", "chain", "rule"]


def test_apply_is_idempotent_and_replaces_the_whole_table(drv: Driver, netns: str) -> None:
    drv.run("firewall.apply", {"tables": [TABLE]})
    nft(netns, "add", "rule", "inet", "filter", "sub", "udp", "dport", "53", "accept")  # drift
    drv.run("firewall.apply", {"tables": [TABLE]})
    drv.run("firewall.apply", {"tables": [TABLE]})
    live = nft(netns, "list", "table", "inet", "filter")
    assert "udp dport 53" not in live and live.count("tcp dport { 80, 443 } accept") == 1


def test_a_bad_rule_anywhere_changes_nothing(drv: Driver, netns: str) -> None:
    drv.run("firewall.apply", {"tables": [NAT]})
    before = nft(netns, "list", "ruleset")
    bad = copy.deepcopy(TABLE)
    bad["chains"][1]["rules"].append("ip saddr @nosuchset accept")
    with pytest.raises(ToolError) as failed:
        drv.run(
            "firewall.apply",
            {
                "tables": [TABLE, bad | {"name": "second"}],
                "delete": [{"family": "ip", "name": "nat"}],
            },
        )
    assert str(failed.value).startswith(
        "table inet second, chain sub, rule 1 (`ip saddr @nosuchset accept`): "
    )
    assert nft(netns, "list", "ruleset") == before
    with pytest.raises(ToolError, match=r"table inet second, chain sub, rule 1"):
        drv.run("firewall.check", {"tables": [bad | {"name": "second"}]})


def test_delete_tables(drv: Driver, netns: str) -> None:
    drv.run("firewall.apply", {"tables": [TABLE, NAT]})
    out = drv.run(
        "firewall.apply", {"delete": [{"family": "ip", "name": "nat"}, {"name": "absent"}]}
    )
    assert out == {
        "applied": [],
        "deleted": [{"family": "ip", "name": "nat"}, {"family": "inet", "name": "absent"}],
    }
    assert nft(netns, "list", "tables").split("\n")[0] == "table inet filter"
    assert "nat" not in nft(netns, "list", "tables")


def test_canonicalize_equals_the_live_listing_and_touches_nothing(drv: Driver, netns: str) -> None:
    spec = {
        "family": "inet",
        "name": "web",
        "chains": [
            {
                "name": "in",
                "type": "filter",
                "hook": "input",
                "priority": 0,
                "rules": ["tcp dport ssh accept", 'iif "v9" drop'],
            },
        ],
    }
    canon = drv.run("firewall.canonicalize", {"tables": [spec]})["tables"][0]
    assert canon["family"] == "inet" and canon["name"] == "web"
    assert "tcp dport 22 accept" in canon["text"]  # the spec's `ssh` ...
    assert nft(netns, "list", "ruleset") == ""  # nothing was loaded in the target
    run(["ip", "-n", netns, "link", "add", "v9", "type", "ifb"])  # `iif` needs the device
    drv.run("firewall.apply", {"tables": [spec]})
    live = drv.run("firewall.ruleset", {"tables": [{"family": "inet", "name": "web"}]})["tables"][0]
    assert live["text"] == canon["text"]  # ... equals the live `22`
    again = drv.run("firewall.canonicalize", {"tables": [spec]})  # cached
    assert again["tables"][0]["text"] == canon["text"]
    with pytest.raises(
        ToolError, match=r"table inet web, chain in, rule 0 \(`tcp dport nosuch accept`\)"
    ):
        drv.run(
            "firewall.canonicalize",
            {
                "tables": [
                    {
                        "name": "web",
                        "chains": [{"name": "in", "rules": ["tcp dport nosuch accept"]}],
                    }
                ]
            },
        )


def test_aios_rules_add_delete(drv: Driver, netns: str) -> None:
    with pytest.raises(ToolError, match=r"^Failed to add nft rule: .*No such file or directory"):
        drv.run("firewall.add_rule", {"chain": "input", "rule": "tcp dport 22", "action": "accept"})
    drv.run("firewall.apply", {"tables": [TABLE]})
    assert drv.run(
        "firewall.add_rule", {"chain": "sub", "rule": "udp dport 53", "action": "accept"}
    ) == {"added": True}
    assert drv.run(
        "firewall.add_rule", {"chain": "sub", "rule": "tcp dport 8080", "action": "drop"}
    ) == {"added": True}
    listed = nft(netns, "list", "chain", "inet", "filter", "sub")
    assert "udp dport 53 accept" in listed and "tcp dport 8080 drop" in listed
    rules = drv.run("firewall.rules", {})["rules"]
    assert {"chain": "sub", "rule": "udp dport 53 accept", "action": "accept"} in rules
    assert {"chain": "input", "rule": "counter packets 0 bytes 0", "action": "other"} in rules
    assert {"chain": "sub", "rule": "tcp dport 8080 drop", "action": "drop"} in rules
    assert drv.run("firewall.delete_rule", {"chain": "sub", "index": 1}) == {"deleted": True}
    listed = nft(netns, "list", "chain", "inet", "filter", "sub")
    assert "udp dport 53" not in listed and "tcp dport 8080 drop" in listed
    with pytest.raises(ToolError, match=r"^Rule index 5 not found in chain sub \(only 2 rules\)$"):
        drv.run("firewall.delete_rule", {"chain": "sub", "index": 5})
    with pytest.raises(ToolError, match=r"^Failed to list nft chain nochain: "):
        drv.run("firewall.delete_rule", {"chain": "nochain", "index": 0})
    before = nft(netns, "list", "ruleset")
    for rule in (
        "udp dport 53; flush ruleset",
        'udp dport 53 comment "x',
        "udp dport 53 } flush ruleset {",
    ):
        with pytest.raises(ToolError, match=r"^Failed to add nft rule: "):
            drv.run("firewall.add_rule", {"chain": "sub", "rule": rule, "action": "accept"})
    assert nft(netns, "list", "ruleset") == before


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        (
            "firewall.apply",
            {"tables": [NAT, {"name": "filter", "chains": [{"name": "sub", "rules": ["drop"]}]}]},
        ),
        ("firewall.apply", {"delete": [{"name": "filter"}]}),
        ("firewall.add_rule", {"chain": "sub", "rule": "udp dport 53", "action": "accept"}),
        ("firewall.delete_rule", {"chain": "input", "index": 2}),
    ],
)
def test_every_write_round_trips(drv: Driver, netns: str, tool: str, args: dict[str, Any]) -> None:
    drv.run("firewall.apply", {"tables": [TABLE]})
    nft(netns, "add", "table", "ip", "bystander")  # outside what the tools touch
    before = tables(netns)
    snap, _ = drv.run_reversible(tool, args)
    assert json.loads(json.dumps(snap)) == snap
    assert tables(netns) != before
    drv.restore(tool, snap)
    assert tables(netns) == before


def _handled(drv: Driver) -> tuple[str, dict[str, list[int]]]:
    listed = drv.run(
        "firewall.ruleset", {"tables": [{"family": "inet", "name": "filter"}], "handles": True}
    )["tables"][0]
    return listed["text"], {c: [int(h) for h in hs.split()] for c, hs in listed["handles"].items()}


def test_ruleset_with_handles_and_a_patch(drv: Driver, netns: str) -> None:
    """firewall.ruleset {handles: true}: the same text, each chain's rule handles in order;
    firewall.apply {patch}: ops by handle in one transaction (run through `ip netns exec`
    here, so the listing after it is not predicted), reversible like a whole apply."""
    drv.run("firewall.apply", {"tables": [TABLE]})
    text, handles = _handled(drv)
    assert (
        text == drv.run("firewall.ruleset", {"tables": [{"name": "filter"}]})["tables"][0]["text"]
    )
    assert [len(handles["input"]), len(handles["sub"])] == [4, 1]
    before = nft(netns, "list", "table", "inet", "filter")
    expect = hashlib.sha256(text.encode()).hexdigest()
    ssh, counter = handles["input"][2], handles["input"][3]
    ops = [
        {"op": "delete", "chain": "input", "handle": counter},
        {"op": "insert", "chain": "input", "handle": ssh, "rule": "tcp dport 23 drop"},
        {"op": "add", "chain": "sub", "rule": "udp dport 53 accept"},
    ]
    patch = {"family": "inet", "name": "filter", "expect": expect, "ops": ops}
    snap, out = drv.run_reversible("firewall.apply", {"patch": [patch]})
    assert out["patched"] == [{"family": "inet", "name": "filter", "ops": 3, "predicted": False}]
    live = nft(netns, "list", "table", "inet", "filter")
    assert "\t\ttcp dport 23 drop\n\t\tip saddr @allow tcp dport 22 accept\n" in live
    assert "\t\tcounter\n" not in live and "udp dport 53 accept" in live
    _, after = _handled(drv)
    assert after["input"][:2] == handles["input"][:2] and after["input"][3] == ssh
    with pytest.raises(ToolError, match="changed since the patch was planned"):
        drv.run("firewall.apply", {"patch": [patch]})  # the text it expects is gone
    drv.restore("firewall.apply", snap)
    assert nft(netns, "list", "table", "inet", "filter") == before
    gone = {**patch, "ops": [{"op": "delete", "chain": "input", "handle": 9999}]}
    with pytest.raises(ToolError, match="No such file or directory"):
        drv.run("firewall.apply", {"patch": [gone]})
    assert drv.run("firewall.check", {"patch": [patch]}) == {"ok": True}
    with pytest.raises(ToolError, match="is listed twice"):
        drv.run("firewall.apply", {"tables": [TABLE], "patch": [patch]})
