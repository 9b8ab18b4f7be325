"""The network controller end to end: the real `aios` CLI against a sandbox's namespace.

Each test gets its own sandbox (`box`) and Network-only spec trees under
tmp_path: examples/edge-router/network.yaml and examples/quickstart/network.yaml
as written (they apply alone), plus small specs of our own. State is read
back with raw `ip -j` and `sysctl` inside the sandbox's namespaces (box.sh),
independently of the registry; drift is made the same way. Real kinds only
(veth, bridge, macvlan, ifb; vlan/bond/wireguard are fixture-tested).
Covers: converge + status Ready + read-back in ONE net.apply call, re-plan
empty with zero write calls, drift repair (mtu, address, route, admin
state, rule, sysctl, an extra address), links of the wrong kind or with
other immutable options created again, an address moving within its
subnet (the kernel flushes the link's routes; they come back), prune
(inventory, --prune, `prune: true`; hand-made objects stay), a failing step
rolled back by net.apply, a stale saved plan (exit 3), export round trip,
and the Python API's simulate-equals-observe check. No destructive case:
no network step destroys data and the Network spec has no `force`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from controllers.network import CONTROLLER
from controllers.network.desired import addresses_view, options_view, route_view, rule_view, wanted
from controllers.network.state import NetState
from reconciler.engine.reader import ReadOnlyReader
from reconciler.sdk.controller import Desired
from specs.loader import load_paths
from tests.system.cli_support import aios, apply, engine_on, ok, statuses, write_tree
from tests.system.engine_support import REPO, Box, box  # noqa: F401

EXAMPLES = REPO / "examples"
EDGE = (EXAMPLES / "edge-router" / "network.yaml").read_text()
QUICKSTART = (EXAMPLES / "quickstart" / "network.yaml").read_text()

EXTRA = """apiVersion: aios.dev/v1
kind: Network
metadata: {name: extra}
spec:
  links:
    - {name: tmp0, kind: ifb, addresses: [10.77.0.1/24]}
    - {name: tmp1, kind: ifb}
  routes:
    - {to: 10.78.0.0/16, via: 10.77.0.254, table: 200}
  rules:
    - {priority: 2000, from: 10.77.0.0/24, table: 200}
"""


# --- reading the sandbox back, without the registry ---------------------------------


def ip(sb: Box, *args: str) -> Any:
    return json.loads(sb.sh("ip", "-j", *args) or "[]")


def links(sb: Box) -> dict[str, dict[str, Any]]:
    return {x["ifname"]: x for x in ip(sb, "-d", "addr", "show")}


def addrs(link: dict[str, Any]) -> set[str]:
    return {
        f"{a['local']}/{a['prefixlen']}"
        for a in link.get("addr_info", ())
        if a.get("scope") != "link" or a.get("family") == "inet"
    }


def routes(sb: Box, family: str = "-4") -> list[dict[str, Any]]:
    return [r for r in ip(sb, family, "route", "show", "table", "all") if r.get("table") != "local"]


def route_to(sb: Box, dst: str, table: str = "main") -> dict[str, Any] | None:
    for route in routes(sb):
        if route.get("dst") == dst and str(route.get("table", "main")) == table:
            return route
    return None


def rule_at(sb: Box, priority: int) -> list[dict[str, Any]]:
    return [r for r in ip(sb, "rule", "show") if r.get("priority") == priority]


def sysctl(sb: Box, key: str) -> str:
    return sb.sh("sysctl", "-n", key).strip()


def check_edge(sb: Box) -> None:
    """The machine looks like examples/edge-router/network.yaml says."""
    found = links(sb)
    for name in ("br-lan", "veth-lan0", "veth-lan1", "wan0", "uplink1", "mv-dmz0"):
        assert "UP" in found[name]["flags"], (name, found[name]["flags"])
    assert found["br-lan"]["linkinfo"]["info_kind"] == "bridge"
    assert found["br-lan"]["linkinfo"]["info_data"]["stp_state"] == 0
    assert found["veth-lan0"]["master"] == "br-lan"
    assert found["veth-lan0"]["link"] == "veth-lan1"
    assert found["mv-dmz0"]["link"] == "uplink1"
    assert found["mv-dmz0"]["address"] == "02:00:5e:10:00:01"
    assert found["wan0"]["mtu"] == 1500
    assert addrs(found["br-lan"]) == {"192.168.10.1/24", "fd00:10::1/64"}
    assert addrs(found["veth-lan1"]) == {"192.168.10.2/24"}
    assert addrs(found["wan0"]) == {"198.51.100.2/24"}
    assert addrs(found["mv-dmz0"]) == {"203.0.113.10/24"}
    default = route_to(sb, "default")
    assert default and default["gateway"] == "198.51.100.1" and default["metric"] == 100
    assert (branch := route_to(sb, "10.99.0.0/16")) and branch["gateway"] == "192.168.10.20"
    assert (dmz := route_to(sb, "default", "100")) and dmz["dev"] == "mv-dmz0"
    assert (lan := route_to(sb, "192.168.10.0/24", "100")) and lan["dev"] == "br-lan"
    (rule,) = rule_at(sb, 1000)
    assert rule["src"] == "192.168.10.128" and rule["srclen"] == 25 and rule["table"] == "100"
    assert sysctl(sb, "net.ipv4.ip_forward") == "1"
    assert sysctl(sb, "net.ipv6.conf.all.forwarding") == "1"
    assert sysctl(sb, "net.ipv4.conf.all.rp_filter") == "2"


def plan(sb: Box, spec: Path, *extra: str) -> int:
    return aios(sb, "plan", "-f", str(spec), *extra).returncode


# --- converge, no-op, drift -------------------------------------------------------------


def test_edge_router_network_converges_in_one_call_and_replans_to_nothing(
    box: Box,  # noqa: F811
    tmp_path: Path,
) -> None:
    spec = write_tree(tmp_path, "edge", **{"network.yaml": EDGE})
    before = box.write_calls()
    ok(apply(box, spec))
    assert box.write_calls() == before + 1, "all steps run as one net.apply"
    assert statuses(box)["Network/edge"][0], statuses(box)
    check_edge(box)
    assert plan(box, spec) == 0
    writes = box.write_calls()
    out = ok(apply(box, spec))
    assert box.write_calls() == writes, out


def test_quickstart_network_converges(box: Box, tmp_path: Path) -> None:  # noqa: F811
    spec = write_tree(tmp_path, "quick", **{"network.yaml": QUICKSTART})
    ok(apply(box, spec))
    bridge = links(box)["br-lan"]
    assert bridge["linkinfo"]["info_kind"] == "bridge" and "UP" in bridge["flags"]
    assert bridge["mtu"] == 1500
    assert addrs(bridge) == {"10.42.0.1/24", "fd42::1/64"}
    assert statuses(box)["Network/lan"][0]
    assert plan(box, spec) == 0


def test_drift_is_repaired(box: Box, tmp_path: Path) -> None:  # noqa: F811
    spec = write_tree(tmp_path, "edge", **{"network.yaml": EDGE})
    ok(apply(box, spec))
    box.sh("ip", "link", "set", "wan0", "mtu", "1400")
    box.sh("ip", "addr", "del", "192.168.10.2/24", "dev", "veth-lan1")
    box.sh("ip", "addr", "add", "198.51.100.99/24", "dev", "wan0")
    box.sh("ip", "route", "del", "192.168.10.0/24", "table", "100")
    box.sh("ip", "rule", "del", "priority", "1000")
    box.sh("ip", "link", "set", "uplink1", "down")
    box.sh("sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0")
    assert plan(box, spec) == 2
    out = ok(apply(box, spec))
    check_edge(box)
    assert "198.51.100.99/24" not in addrs(links(box)["wan0"]), out
    assert plan(box, spec) == 0


def test_links_that_cannot_change_in_place_are_created_again(
    box: Box,  # noqa: F811
    tmp_path: Path,
) -> None:
    spec = write_tree(tmp_path, "edge", **{"network.yaml": EDGE})
    ok(apply(box, spec))
    box.sh("ip", "link", "del", "mv-dmz0")
    box.sh("ip", "link", "add", "mv-dmz0", "link", "wan0", "type", "macvlan", "mode", "private")
    box.sh("ip", "link", "del", "wan0")  # takes the new mv-dmz0 along
    box.sh("ip", "link", "add", "wan0", "type", "bridge")
    box.sh("ip", "link", "add", "mv-dmz0", "link", "wan0", "type", "macvlan", "mode", "private")
    out = ok(apply(box, spec))
    assert "create it again" in out or "recreate" in out, out
    check_edge(box)
    assert links(box)["wan0"]["linkinfo"]["info_kind"] == "ifb"
    assert links(box)["mv-dmz0"]["linkinfo"]["info_data"]["mode"] == "bridge"
    assert plan(box, spec) == 0


def test_an_address_moving_within_its_subnet_keeps_the_routes(
    box: Box,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The old address must go first (the new one would die with it as a secondary),
    which leaves wan0 without IPv4 addresses: the kernel flushes its routes, and the
    plan adds the default route again."""
    ok(apply(box, write_tree(tmp_path, "a", **{"network.yaml": EDGE})))
    moved = EDGE.replace("addresses: [198.51.100.2/24]", "addresses: [198.51.100.3/24]")
    spec = write_tree(tmp_path, "b", **{"network.yaml": moved})
    ok(apply(box, spec))
    assert addrs(links(box)["wan0"]) == {"198.51.100.3/24"}
    default = route_to(box, "default")
    assert default and default["gateway"] == "198.51.100.1"
    assert plan(box, spec) == 0


# --- ownership ---------------------------------------------------------------------------


def test_prune_removes_only_what_aios_created(box: Box, tmp_path: Path) -> None:  # noqa: F811
    both = write_tree(tmp_path, "both", **{"network.yaml": EDGE, "extra.yaml": EXTRA})
    ok(apply(box, both))
    box.sh("ip", "link", "add", "hand0", "type", "ifb")
    box.sh("ip", "route", "add", "10.79.0.0/16", "via", "198.51.100.1", "table", "200")
    assert "tmp1" in links(box)
    # The resource stops declaring tmp1: aios created it, so it goes.
    less = EXTRA.replace("    - {name: tmp1, kind: ifb}\n", "")
    ok(apply(box, write_tree(tmp_path, "less", **{"extra.yaml": less})))
    assert "tmp1" not in links(box) and "hand0" in links(box)
    # Network/extra leaves the set with --prune: what it created goes, hand-made stays.
    edge_only = write_tree(tmp_path, "edge", **{"network.yaml": EDGE})
    out = ok(apply(box, edge_only, "--prune"))
    found = links(box)
    assert "tmp0" not in found, out
    assert route_to(box, "10.78.0.0/16", "200") is None and not rule_at(box, 2000)
    assert "hand0" in found and route_to(box, "10.79.0.0/16", "200") is not None
    check_edge(box)
    # prune: true widens removal to undeclared virtual links (never lo).
    pruning = EDGE.replace("spec:\n  links:", "spec:\n  prune: true\n  links:")
    ok(apply(box, write_tree(tmp_path, "pruning", **{"network.yaml": pruning})))
    found = links(box)
    assert "hand0" not in found and "lo" in found
    check_edge(box)


# --- failure, stale plans, export -----------------------------------------------------------


def test_a_failing_step_is_rolled_back(box: Box, tmp_path: Path) -> None:  # noqa: F811
    bad = EXTRA.replace(
        "  rules:", "  sysctls:\n    net.ipv4.conf.all.no_such_setting: 1\n  rules:"
    )
    spec = write_tree(tmp_path, "bad", **{"extra.yaml": bad})
    before = sorted(links(box))
    proc = apply(box, spec)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert sorted(links(box)) == before
    assert route_to(box, "10.78.0.0/16", "200") is None and not rule_at(box, 2000)
    ready, reason, message = statuses(box)["Network/extra"]
    assert not ready and reason == "Degraded/StepFailed", (reason, message)
    assert "no_such_setting" in message and "restored" in message, message


def test_a_stale_saved_plan_is_refused(box: Box, tmp_path: Path) -> None:  # noqa: F811
    spec = write_tree(tmp_path, "edge", **{"network.yaml": EDGE})
    saved = tmp_path / "plan.json"
    assert aios(box, "plan", "-f", str(spec), "--out", str(saved)).returncode == 2
    box.sh("ip", "link", "add", "wan0", "type", "ifb")  # the machine moved on
    proc = aios(box, "apply", "-f", str(spec), "--plan", str(saved), "--yes")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert box.write_calls() == 0


def test_export_round_trips(box: Box, tmp_path: Path) -> None:  # noqa: F811
    ok(apply(box, write_tree(tmp_path, "edge", **{"network.yaml": EDGE})))
    box.sh("ip", "link", "add", "hand0", "type", "ifb")
    box.sh("ip", "addr", "add", "10.5.0.1/24", "dev", "hand0")
    exported = ok(aios(box, "export", "Network"))
    out = write_tree(tmp_path, "exported", **{"network.yaml": exported})
    ok(box.aios("validate", "-f", str(out)))
    assert plan(box, out, "--prune") == 0, aios(box, "plan", "-f", str(out), "--prune").stdout
    writes = box.write_calls()
    ok(apply(box, out, "--prune"))
    assert box.write_calls() == writes


# --- the Python API: the effect model against the machine -------------------------------------


def projection(state: NetState, spec_dir: Path) -> dict[str, Any]:
    """What the specs declare, read from `state` (kernel-chosen values left out)."""
    resources = load_paths(sorted(spec_dir.glob("*.yaml"))).resources
    want = wanted(Desired("network", resources))
    out: dict[str, Any] = {"links": {}, "routes": {}, "rules": {}, "sysctls": {}}
    for name, item in want.links.items():
        link = state.link(name)
        if link is None:
            out["links"][name] = None
            continue
        declared = item.link
        shown: dict[str, Any] = {"kind": link.kind, "state": link.state, "master": link.master}
        if addresses_view(declared) is not None:
            shown["addresses"] = list(link.addresses)
        for field in ("mtu", "mac"):
            if getattr(declared, field) is not None:
                shown[field] = getattr(link, field)
        shown["options"] = {k: link.options.get(k) for k in options_view(declared)}
        out["links"][name] = shown
    routes_by_key = {r.key: r for r in state.routes}
    for key, route in want.routes.items():
        found = routes_by_key.get(key)
        view = route_view(route.route)
        out["routes"][key] = found and {k: getattr(found, k) for k in view}
    for key in want.rules:
        out["rules"][key] = [r.selectors() for r in state.rules if r.key == key]
        assert rule_view(want.rules[key].rule) in out["rules"][key]
    out["sysctls"] = {k: state.sysctls.get(k) for k in want.sysctls}
    return out


async def test_python_api_simulation_matches_the_machine(
    box: Box,  # noqa: F811
    tmp_path: Path,
) -> None:
    first = write_tree(tmp_path, "first", **{"network.yaml": EDGE})
    changed = (
        EDGE.replace("addresses: [198.51.100.2/24]", "addresses: [198.51.100.3/24]")
        .replace("      mtu: 1500\n", "      mtu: 1400\n")
        .replace("mac: 02:00:5e:10:00:01", "mac: 02:00:5e:10:00:02")
        .replace("      table: 100\n\n  sysctls", "      table: 200\n\n  sysctls")
        .replace("net.ipv4.conf.all.rp_filter: 2", "net.ipv4.conf.all.rp_filter: 1")
    )
    second = write_tree(tmp_path, "second", **{"network.yaml": changed})
    async with engine_on(box, ("network",)) as engine:
        for spec in (first, second):
            planned = await engine.plan(engine.merge(load_paths(sorted(spec.glob("*.yaml")))))
            work = planned.works["network"]
            assert work.verdict.ok, work.verdict
            before, steps = work.state, work.steps
            assert isinstance(before, NetState) and steps
            result = await engine.apply(planned, assume_yes=True)
            assert result.all_ready, "\n".join(map(str, result.reports))
            reader = ReadOnlyReader(engine.client, planned.catalogue, reason="test")
            after = await CONTROLLER.observe(reader, work.desired)
            predicted = CONTROLLER.simulate(before, steps)
            assert projection(predicted, spec) == projection(after, spec)
            assert CONTROLLER.diff(work.desired, after).empty
