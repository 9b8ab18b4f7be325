"""The firewall controller end to end: the real `aios` CLI against a sandbox's nftables.

Each test gets its own sandbox (`box`) and spec trees written under tmp_path
(firewall-only: the Firewall documents of examples/quickstart and
examples/edge-router are used as written minus their `dependsOn` on Network
resources — their rules name interfaces only by iifname/oifname, which need
no links). The ruleset is read back with raw `nft` inside the sandbox's
namespaces (box.sh), independently of the registry; drift is made the same
way. Covers: converge + status Ready + read-back, re-plan empty with zero
write calls, canonical `tcp dport ssh` against a live `tcp dport 22`, drift
repair (deleted rule, added rule, flushed chain), prune (inventory,
--prune, `prune: true`), the lockout guard (exit 4, then force), a failing
nft transaction that changes nothing, a stale saved plan (exit 3), export
round trip, and the Python API's simulate-equals-observe check.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from controllers.firewall import CONTROLLER
from controllers.firewall.state import FirewallState
from reconciler.engine.reader import ReadOnlyReader
from specs.loader import load_paths
from tests.system.engine_support import REPO, Box, box  # noqa: F401

EXAMPLES = REPO / "examples"

HOST = """apiVersion: aios.dev/v1
kind: Firewall
metadata: {name: host}
spec:
  tables:
    - family: inet
      name: filter
      chains:
        - name: input
          type: filter
          hook: input
          priority: filter
          policy: drop
          rules:
            - ct state established,related accept
            - iif lo accept
            - SSH_RULE
          services:
            - {name: console, port: 9090}
        - name: output
          type: filter
          hook: output
          priority: filter
          policy: accept
"""


def host(ssh: str = "tcp dport 22 accept") -> str:
    return HOST.replace("SSH_RULE", ssh)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def example_firewall(example: str) -> str:
    text = (EXAMPLES / example / "firewall.yaml").read_text(encoding="utf-8")
    return re.sub(r"(?m)^\s*dependsOn:.*\n", "", text)


def ruleset(b: Box) -> str:
    return b.sh("nft", "list", "ruleset")


def apply(b: Box, *args: str) -> Any:
    return b.aios("apply", *args, "--sandbox", b.name, "--yes")


def plan(b: Box, *args: str) -> Any:
    return b.aios("plan", *args, "--sandbox", b.name)


def statuses(b: Box) -> dict[str, dict[str, Any]]:
    out = b.aios("status", "--sandbox", b.name, "-o", "json").stdout
    return {r["resource"]: r for r in json.loads(out)["resources"]}


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def converge(b: Box, path: Path) -> None:
    before = b.write_calls()
    done = apply(b, "-f", str(path))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert b.write_calls() > before
    assert all(s["ready"] for s in statuses(b).values())
    assert_converged(b, path)


def assert_converged(b: Box, path: Path) -> None:
    """`aios plan` shows nothing and a second apply makes zero write calls."""
    shown = plan(b, "-f", str(path))
    assert shown.returncode == 0, f"plan after converge:\n{shown.stdout}\n{shown.stderr}"
    writes = b.write_calls()
    again = apply(b, "-f", str(path))
    assert again.returncode == 0, again.stderr
    assert b.write_calls() == writes, "a converged firewall made write calls on re-apply"


@pytest.mark.parametrize("example", ["quickstart", "edge-router"])
def test_example_firewall_converges(box: Box, tmp_path: Path, example: str) -> None:  # noqa: F811
    specs = write(tmp_path / "specs", {"firewall.yaml": example_firewall(example)})
    converge(box, specs)
    table = box.sh("nft", "list", "table", "inet", "filter")
    assert "type filter hook input priority filter; policy drop;" in table
    assert "ct state established,related accept" in table
    if example == "quickstart":
        assert 'tcp dport 22 accept comment "ssh"' in table
        assert 'ip saddr 10.42.0.0/24 tcp dport 9090 accept comment "console"' in table
        assert 'ip6 saddr fd42::/64 tcp dport 9090 accept comment "console"' in table
    else:
        assert "elements = { 192.0.2.0/24, 198.51.100.66 }" in table
        assert 'ip saddr 192.168.10.0/24 tcp dport 9090 accept comment "console"' in table
        nat = box.sh("nft", "list", "table", "ip", "nat")
        assert 'iifname "wan0" tcp dport 8080 dnat to 192.168.10.2:80' in nat
        assert 'oifname "mv-dmz0" ip saddr 192.168.10.128/25 snat to 203.0.113.10' in nat


def test_service_name_against_live_port_number_plans_nothing(box: Box, tmp_path: Path) -> None:  # noqa: F811
    converge(box, write(tmp_path / "a", {"host.yaml": host("tcp dport 22 accept")}))
    assert "tcp dport 22 accept" in ruleset(box)
    named = write(tmp_path / "b", {"host.yaml": host("tcp dport ssh accept")})
    shown = plan(box, "-f", str(named))
    assert shown.returncode == 0, f"`tcp dport ssh` vs live `tcp dport 22` planned:\n{shown.stdout}"
    assert_converged(box, named)


@pytest.mark.parametrize(
    "drift,detail",
    [
        ("delete-rule", "+1 -0 rules in chain input"),
        ("add-rule", "+0 -1 rules in chain input"),
        ("flush-chain", "+4 -0 rules in chain input"),
    ],
)
def test_drift_is_repaired(box: Box, tmp_path: Path, drift: str, detail: str) -> None:  # noqa: F811
    specs = write(tmp_path / "specs", {"host.yaml": host()})
    converge(box, specs)
    converged = ruleset(box)
    if drift == "delete-rule":
        listing = box.sh("nft", "-a", "list", "chain", "inet", "filter", "input")
        handle = re.search(r"tcp dport 9090 .*# handle (\d+)", listing)
        assert handle, listing
        box.sh("nft", "delete", "rule", "inet", "filter", "input", "handle", handle.group(1))
    elif drift == "add-rule":
        box.sh("nft", "add", "rule", "inet", "filter", "input", "tcp", "dport", "8080", "accept")
    else:
        box.sh("nft", "flush", "chain", "inet", "filter", "input")
    assert ruleset(box) != converged
    shown = plan(box, "-f", str(specs))
    assert shown.returncode == 2 and detail in shown.stdout, shown.stdout
    repaired = apply(box, "-f", str(specs))
    assert repaired.returncode == 0, repaired.stderr
    assert ruleset(box) == converged
    assert_converged(box, specs)


NAT = """apiVersion: aios.dev/v1
kind: Firewall
metadata: {name: nat}
spec:
  tables:
    - family: ip
      name: nat
      chains:
        - name: postrouting
          type: nat
          hook: postrouting
          priority: srcnat
          rules: ['oifname "wan0" masquerade']
"""
EXTRA = """    - family: inet
      name: extra
      chains:
        - name: c
          rules: [udp dport 53 accept]
"""


def test_prune_removes_only_what_aios_created(box: Box, tmp_path: Path) -> None:  # noqa: F811
    first = write(tmp_path / "first", {"host.yaml": host() + EXTRA, "nat.yaml": NAT})
    converge(box, first)
    box.sh("nft", "add", "table", "ip", "handmade")
    tables = set(re.findall(r"(?m)^table (\S+ \S+)", ruleset(box)))
    assert tables == {"inet filter", "inet extra", "ip nat", "ip handmade"}
    # Firewall/nat is dropped with --prune; Firewall/host no longer declares inet/extra.
    second = write(tmp_path / "second", {"host.yaml": host()})
    done = apply(box, "-f", str(second), "--prune")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    tables = set(re.findall(r"(?m)^table (\S+ \S+)", ruleset(box)))
    assert tables == {"inet filter", "ip handmade"}, "a table made by hand was removed"
    assert set(statuses(box)) == {"Firewall/host"}
    assert_converged(box, second)
    # prune: true widens removal to every table no Firewall resource declares.
    pruning = host().replace("spec:\n", "spec:\n  prune: true\n")
    third = write(tmp_path / "third", {"host.yaml": pruning})
    done = apply(box, "-f", str(third))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert set(re.findall(r"(?m)^table (\S+ \S+)", ruleset(box))) == {"inet filter"}
    assert_converged(box, third)


def test_lockout_is_refused_without_force_and_runs_with_it(box: Box, tmp_path: Path) -> None:  # noqa: F811
    no_ssh = host("ip saddr 192.0.2.10 accept")
    refused = apply(box, "-f", str(write(tmp_path / "a", {"host.yaml": no_ssh})))
    assert refused.returncode == 4, f"{refused.stdout}\n{refused.stderr}"
    assert "accepts no ssh (tcp dport 22)" in refused.stdout + refused.stderr
    assert "force: true" in refused.stdout + refused.stderr
    assert ruleset(box).strip() == "", "a refused plan changed the ruleset"
    forced = no_ssh.replace("      name: filter\n", "      name: filter\n      force: true\n")
    specs = write(tmp_path / "b", {"host.yaml": forced})
    done = apply(box, "-f", str(specs))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "ip saddr 192.0.2.10 accept" in ruleset(box)
    assert_converged(box, specs)


GHOST = """apiVersion: aios.dev/v1
kind: Firewall
metadata: {name: ghost}
spec:
  tables:
    - family: inet
      name: ghost
      chains:
        - name: c
          rules: ['iif "ghost0" accept']
"""


def test_failing_transaction_changes_nothing(box: Box, tmp_path: Path) -> None:  # noqa: F811
    converge(box, write(tmp_path / "a", {"host.yaml": host()}))
    before = ruleset(box)
    # The spec loads in the throwaway namespace (firewall.canonicalize creates the links a
    # rule names), but ghost0 does not exist in the sandbox: nft refuses the transaction,
    # which also replaces inet/filter — and nothing of it may stay.
    changed = host().replace("iif lo accept", "iif lo accept\n            - tcp dport 80 accept")
    specs = write(tmp_path / "b", {"host.yaml": changed, "ghost.yaml": GHOST})
    failed = apply(box, "-f", str(specs))
    assert failed.returncode == 1, f"{failed.stdout}\n{failed.stderr}"
    assert ruleset(box) == before, "a failed nft transaction left changes behind"
    for key in ("Firewall/host", "Firewall/ghost"):
        status = statuses(box)[key]
        degraded = condition(status, "Degraded")
        assert not status["ready"] and degraded["status"] == "True", status
        assert "firewall.apply failed" in degraded["message"]
        assert "ghost0" in degraded["message"]


def test_stale_saved_plan_is_refused(box: Box, tmp_path: Path) -> None:  # noqa: F811
    converge(box, write(tmp_path / "a", {"host.yaml": host()}))
    specs = write(tmp_path / "b", {"host.yaml": host("tcp dport { 22, 2222 } accept")})
    saved = tmp_path / "plan.json"
    shown = plan(box, "-f", str(specs), "--out", str(saved))
    assert shown.returncode == 2, shown.stderr
    before = ruleset(box)
    box.sh("nft", "add", "rule", "inet", "filter", "output", "tcp", "dport", "25", "drop")
    stale = apply(box, "-f", str(specs), "--plan", str(saved))
    assert stale.returncode == 3, f"{stale.stdout}\n{stale.stderr}"
    assert ruleset(box) != before and "2222" not in ruleset(box)


def test_export_round_trips(box: Box, tmp_path: Path) -> None:  # noqa: F811
    specs = write(
        tmp_path / "specs",
        {"edge.yaml": example_firewall("edge-router"), "extra.yaml": NAT.replace("ip\n", "ip6\n")},
    )
    converge(box, specs)
    exported = box.aios("export", "Firewall", "--sandbox", box.name, check=True).stdout
    assert "kind: Firewall" in exported and "lan_services" in exported
    out = write(tmp_path / "exported", {"firewall.yaml": exported})
    valid = box.aios("validate", "-f", str(out))
    assert valid.returncode == 0, f"{valid.stdout}\n{valid.stderr}"
    documents = load_paths([out / "firewall.yaml"])
    assert sorted(r.key for r in documents.resources) == [
        "Firewall/inet-filter",
        "Firewall/ip-nat",
        "Firewall/ip6-nat",
    ]
    # A fresh state directory: the exported documents alone, against the same machine.
    fresh = ["--state-dir", str(tmp_path / "fresh-state")]
    shown = plan(box, "-f", str(out), *fresh)
    assert shown.returncode == 0, f"export does not re-plan to nothing:\n{shown.stdout}"
    writes = box.write_calls()
    again = apply(box, "-f", str(out), *fresh)
    assert again.returncode == 0 and box.write_calls() == writes, again.stdout


async def test_python_api_simulation_matches_the_machine(
    box: Box,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.cli.common import open_engine, resolve_target

    monkeypatch.setenv("AIOS_SANDBOX_DIR", str(box.base))
    box.sh("nft", "add", "table", "inet", "filter")  # replaced whole: a change, not an add
    box.sh("nft", "add", "chain", "inet", "filter", "junk")
    edge = example_firewall("edge-router").replace("      name: filter\n", "      name: edge\n")
    specs = write(
        tmp_path / "specs", {"host.yaml": host("tcp dport ssh accept"), "edge.yaml": edge}
    )
    target = resolve_target(None, box.name, tmp_path / "state")
    async with open_engine(target, ("firewall",)) as engine:
        merge = engine.merge(load_paths(sorted(specs.glob("*.yaml"))))
        planned = await engine.plan(merge)
        work = planned.works["firewall"]
        assert work.verdict.ok, work.verdict
        assert len(engine.controllers["firewall"].transactions(work.steps)) == 1
        before, steps = work.state, work.steps
        assert isinstance(before, FirewallState) and len(steps) == 3
        result = await engine.apply(planned, assume_yes=True)
        assert result.all_ready, "\n".join(map(str, result.reports))
        reader = ReadOnlyReader(engine.client, planned.catalogue, reason="test", cache=engine.store)
        after = await CONTROLLER.observe(reader, work.desired)
        assert reader.calls == ["firewall.ruleset"], "the canonical forms were not cached"
        predicted = CONTROLLER.simulate(before, steps)
        resources = work.desired.resources
        assert CONTROLLER.scope(predicted, resources) == CONTROLLER.scope(after, resources)
        assert CONTROLLER.diff(work.desired, after).empty


def rule_handles(b: Box) -> list[tuple[str, int]]:
    """(rule, handle) of chain input, read with raw nft."""
    listing = b.sh("nft", "-a", "list", "chain", "inet", "filter", "input")
    found = re.findall(r"^\t\t(.*) # handle (\d+)$", listing, re.MULTILINE)
    return [(rule, int(handle)) for rule, handle in found]


async def test_a_deleted_rule_is_healed_with_a_patch(
    box: Box,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One rule deleted behind aios's back: the plan patches the table (one op, one nft
    transaction), the table is byte-equal to the converged one afterwards, and every rule
    that did not drift keeps its handle."""
    from reconciler.cli.common import open_engine, resolve_target

    monkeypatch.setenv("AIOS_SANDBOX_DIR", str(box.base))
    specs = write(tmp_path / "specs", {"host.yaml": host()})
    converge(box, specs)
    converged = box.sh("nft", "list", "table", "inet", "filter")
    before = rule_handles(box)
    victim = next(h for rule, h in before if rule == "tcp dport 22 accept")
    box.sh("nft", "delete", "rule", "inet", "filter", "input", "handle", str(victim))
    target = resolve_target(None, box.name, tmp_path / "state")
    async with open_engine(target, ("firewall",)) as engine:
        planned = await engine.plan(engine.merge(load_paths(sorted(specs.glob("*.yaml")))))
        work = planned.works["firewall"]
        assert work.verdict.ok, work.verdict
        (step,) = work.steps
        assert set(step.input) == {"patch"}, step.input
        (entry,) = step.input["patch"]
        after_victim = before[[h for _, h in before].index(victim) + 1][1]
        assert entry["ops"] == [
            {
                "op": "insert",
                "chain": "input",
                "handle": after_victim,
                "rule": "tcp dport 22 accept",
            }
        ]
        result = await engine.apply(planned, assume_yes=True)
        assert result.all_ready, "\n".join(map(str, result.reports))
    assert box.sh("nft", "list", "table", "inet", "filter") == converged
    after = rule_handles(box)
    assert [r for r, _ in after] == [r for r, _ in before]
    kept = [(r, h) for r, h in before if h != victim]
    assert [(r, h) for r, h in after if r != "tcp dport 22 accept"] == kept  # untouched
    assert dict(after)["tcp dport 22 accept"] not in {h for _, h in before}  # a new rule
    assert_converged(box, specs)


async def test_a_patch_is_refused_whole_when_the_table_changed_meanwhile(
    box: Box,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The planned patch after someone else changed the table: refused (the text it was
    planned against is gone). A patch naming a handle that is gone: the kernel refuses
    the whole transaction, and the op before it does not happen either."""
    from reconciler.cli.common import open_engine, resolve_target
    from reconciler.sdk.errors import AiosError

    monkeypatch.setenv("AIOS_SANDBOX_DIR", str(box.base))
    specs = write(tmp_path / "specs", {"host.yaml": host()})
    converge(box, specs)
    before = rule_handles(box)
    victim = next(h for rule, h in before if rule == "tcp dport 22 accept")
    box.sh("nft", "delete", "rule", "inet", "filter", "input", "handle", str(victim))
    target = resolve_target(None, box.name, tmp_path / "state")
    async with open_engine(target, ("firewall",)) as engine:
        planned = await engine.plan(engine.merge(load_paths(sorted(specs.glob("*.yaml")))))
        work = planned.works["firewall"]
        (call,) = engine.controllers["firewall"].transactions(work.steps)
        (entry,) = call.input["patch"]
        anchor = entry["ops"][0]["handle"]
        # meanwhile, someone deletes the rule the insert is anchored on
        box.sh("nft", "delete", "rule", "inet", "filter", "input", "handle", str(anchor))
        changed = box.sh("nft", "list", "table", "inet", "filter")
        with pytest.raises(AiosError, match="changed since the patch was planned"):
            await engine.client.call(call.tool, call.input, reason="test")
        assert box.sh("nft", "list", "table", "inet", "filter") == changed
        # the same ops against the table's text as it is now: the transaction is refused
        listed = await engine.client.call(
            "firewall.ruleset",
            {"tables": [{"family": "inet", "name": "filter"}], "handles": True},
            reason="test",
        )
        expect = hashlib.sha256(listed.output["tables"][0]["text"].encode()).hexdigest()
        first = before[0][1]  # ct state established,related accept: still there
        ops = [{"op": "delete", "chain": "input", "handle": first}, *entry["ops"]]
        patch = {**entry, "expect": expect, "ops": ops}
        with pytest.raises(AiosError, match="No such file or directory"):
            await engine.client.call("firewall.apply", {"patch": [patch]}, reason="test")
    assert box.sh("nft", "list", "table", "inet", "filter") == changed  # nothing happened
    assert first in {h for _, h in rule_handles(box)}
