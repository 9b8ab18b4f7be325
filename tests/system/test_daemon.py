"""`aios daemon` end to end: a real sandbox, real spec files, real kernel events.

One sandbox and one daemon serve the module (each test uses tables, links and
mounts of its own); the daemon watches two specs directories: `plain/` and
`cm/`, the latter in the Kubernetes ConfigMap layout (files linked through a
`..data` symlink that is swapped atomically). Drift is made behind the
daemon's back inside the sandbox's namespaces (raw nft, ip, umount, dpkg) and
must come back through the change feed (the daemon polls once an hour here).
Events are read from the daemon's JSON-line log, state with raw tools.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.daemon_support import DaemonProc, eventually, firewall, module_box, nft_rules
from tests.system.engine_support import Box

pytestmark = pytest.mark.usefixtures("module_box")
__all__ = ["module_box"]


@pytest.fixture(scope="module")
def specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    top = tmp_path_factory.mktemp("specs")
    plain, cm = top / "plain", top / "cm"
    plain.mkdir()
    cm.mkdir()
    (cm / "..v1").mkdir()
    (cm / "..v1" / "cm.yaml").write_text(firewall("cm", "cm", ["tcp dport 2001 accept"]))
    (cm / "..data").symlink_to("..v1")
    (cm / "cm.yaml").symlink_to("..data/cm.yaml")
    return {"plain": plain, "cm": cm, "top": top}


@pytest.fixture(scope="module")
def daemon(module_box: Box, specs: dict[str, Path]) -> Iterator[DaemonProc]:
    proc = DaemonProc(
        module_box, [specs["plain"], specs["cm"]], specs["top"] / "daemon.log",
        "--metrics", "127.0.0.1:0",
    )  # fmt: skip
    try:
        proc.start()
        yield proc
        took = proc.terminate()
        assert took < 5, f"SIGTERM took {took:.1f} s"
    finally:
        proc.kill()


def test_every_kind_of_edit_converges(daemon: DaemonProc, specs: dict[str, Path]) -> None:
    box, plain = daemon.box, specs["plain"]
    path = plain / "edits.yaml"

    path.write_text(firewall("edits", "edits", ["tcp dport 1001 accept"]))  # a plain write
    eventually(lambda: nft_rules(box, "edits") == ["tcp dport 1001 accept"], what="plain write")

    tmp = plain / "edits.yaml.tmp"  # an atomic replace: temp file + rename
    tmp.write_text(firewall("edits", "edits", ["tcp dport 1002 accept"]))
    os.replace(tmp, path)
    eventually(lambda: nft_rules(box, "edits") == ["tcp dport 1002 accept"], what="replace")

    invalid_before = len(daemon.events("SpecsInvalid"))
    text = firewall("edits", "edits", ["tcp dport 1003 accept", "tcp dport 1004 accept"])
    half = len(text) // 2
    with path.open("w") as out:  # one file written in two chunks, cut mid-line
        out.write(text[:half])
        out.flush()
        time.sleep(0.005)
        out.write(text[half:])
    eventually(
        lambda: nft_rules(box, "edits") == ["tcp dport 1003 accept", "tcp dport 1004 accept"],
        what="two-chunk write",
    )
    assert len(daemon.events("SpecsInvalid")) == invalid_before, "half a file was loaded"

    loads = len(daemon.events("SpecsLoaded"))
    os.rename(path, plain / "renamed.yaml")  # a rename: the same set
    eventually(lambda: len(daemon.events("SpecsLoaded")) > loads, what="rename reloaded")
    assert daemon.events("SpecsLoaded")[-1]["message"].endswith("changed: nothing")
    assert nft_rules(box, "edits") == ["tcp dport 1003 accept", "tcp dport 1004 accept"]

    (plain / "renamed.yaml").unlink()  # a delete: the table is pruned
    eventually(lambda: nft_rules(box, "edits") == [], what="delete pruned the table")
    assert "table inet edits" not in box.sh("nft", "list", "tables")

    cm = specs["cm"]  # the ConfigMap layout: ..data swapped to a new directory
    assert nft_rules(box, "cm") == ["tcp dport 2001 accept"]
    (cm / "..v2").mkdir()
    (cm / "..v2" / "cm.yaml").write_text(firewall("cm", "cm", ["tcp dport 2002 accept"]))
    (cm / "..data_tmp").symlink_to("..v2")
    os.replace(cm / "..data_tmp", cm / "..data")
    eventually(lambda: nft_rules(box, "cm") == ["tcp dport 2002 accept"], what="symlink swap")


NETWORK = """apiVersion: aios.dev/v1
kind: Network
metadata:
  name: drift
spec:
  links:
    - name: dd0
      kind: ifb
      state: up
      mtu: 1400
      addresses: [10.77.0.1/24]
"""

STORAGE = """apiVersion: aios.dev/v1
kind: Storage
metadata:
  name: drift
spec:
  mounts:
    - target: /srv/drift
      source: tmpfs
      type: tmpfs
      options: [size=8M]
      persist: false
"""

PACKAGES = """apiVersion: aios.dev/v1
kind: Packages
metadata:
  name: drift
spec:
  repositories:
    - name: aios-demo
      url: http://127.0.0.1:18080/apt
      suite: ./
      trusted: true
  packages:
    - name: aios-demo-base
"""


def _link(box: Box) -> dict[str, object]:
    data = json.loads(box.sh("ip", "-j", "addr", "show", "dev", "dd0", check=False) or "[]")
    return dict(data[0]) if data else {}


def _addresses(box: Box) -> list[str]:
    info = _link(box).get("addr_info", [])
    assert isinstance(info, list)
    return [f"{a['local']}/{a['prefixlen']}" for a in info if a.get("family") == "inet"]


def _mounted(box: Box) -> bool:
    out = box.sh("findmnt", "-n", "-o", "FSTYPE", f"{box.root}/srv/drift", check=False)
    return out.strip() == "tmpfs"


def _installed(box: Box) -> bool:
    out = box.sh(
        "dpkg-query", f"--admindir={box.root}/var/lib/dpkg", "-W", "-f", "${Status}",
        "aios-demo-base", check=False,
    )  # fmt: skip
    return out.strip() == "install ok installed"


def test_drift_is_healed_from_events_in_enforce_and_only_reported_in_audit(
    daemon: DaemonProc, specs: dict[str, Path]
) -> None:
    box, plain = daemon.box, specs["plain"]
    (plain / "network.yaml").write_text(NETWORK)
    (plain / "storage.yaml").write_text(STORAGE)
    (plain / "packages.yaml").write_text(PACKAGES)
    (plain / "heal.yaml").write_text(
        firewall("heal", "heal", ["tcp dport 3001 accept", "tcp dport 3002 accept"])
    )
    (plain / "audit.yaml").write_text(
        firewall("audited", "audited", ["tcp dport 4001 accept"], mode="audit")
    )
    want = ["tcp dport 3001 accept", "tcp dport 3002 accept"]
    eventually(lambda: nft_rules(box, "heal") == want, timeout=60, what="heal table")
    eventually(lambda: _addresses(box) == ["10.77.0.1/24"], timeout=60, what="dd0")
    eventually(lambda: _mounted(box), timeout=60, what="tmpfs mounted")
    eventually(lambda: _installed(box), timeout=120, what="package installed")
    # audit mode never creates anything: the table does not exist, DriftDetected says so
    eventually(lambda: daemon.events("DriftDetected", "Firewall/audited"), what="audit drift")
    assert "table inet audited" not in box.sh("nft", "list", "tables")

    def healed(resource: str, before: int) -> bool:
        return len(daemon.events("Healed", resource)) > before

    n = len(daemon.events("Healed", "Firewall/heal"))
    handle = box.sh("nft", "-a", "list", "chain", "inet", "heal", "input")
    h = next(line for line in handle.splitlines() if "3002" in line).rsplit("handle ", 1)[1]
    box.sh("nft", "delete", "rule", "inet", "heal", "input", "handle", h.strip())
    eventually(lambda: nft_rules(box, "heal") == want, what="rule deleted: healed")
    eventually(lambda: healed("Firewall/heal", n), what="Healed event")
    assert "nft-monitor" in daemon.events("Healed", "Firewall/heal")[-1]["message"]

    n = len(daemon.events("Healed", "Network/drift"))
    box.sh("ip", "link", "set", "dd0", "mtu", "1300")
    eventually(lambda: _link(box).get("mtu") == 1400, what="MTU healed")
    eventually(lambda: healed("Network/drift", n), what="Healed event (MTU)")

    box.sh("ip", "addr", "del", "10.77.0.1/24", "dev", "dd0")
    eventually(lambda: _addresses(box) == ["10.77.0.1/24"], what="address healed")

    box.sh("umount", f"{box.root}/srv/drift")
    eventually(lambda: _mounted(box), what="tmpfs remounted")

    box.sh("dpkg", f"--root={box.root}", "--force-script-chrootless", "--force-depends",
           "-r", "aios-demo-base")  # fmt: skip
    assert not _installed(box)
    eventually(lambda: _installed(box), timeout=120, what="package reinstalled")

    # audit: a table made by hand with the declared rule is left alone when it drifts
    box.sh("nft", "add", "table", "inet", "audited")
    n_drift = len(daemon.events("DriftDetected", "Firewall/audited"))
    box.sh("nft", "add", "chain", "inet", "audited", "input", "{ type filter hook input "
           "priority filter; policy accept; }")  # fmt: skip
    eventually(lambda: len(daemon.events("DriftDetected", "Firewall/audited")) > n_drift,
               what="audit drift reported again")  # fmt: skip
    time.sleep(0.5)
    assert nft_rules(box, "audited") == [], "audit mode changed the machine"
    assert not daemon.events("Healed", "Firewall/audited")
    status = json.loads(daemon.aios("status", "-o", "json").stdout)
    audited = next(r for r in status["resources"] if r["resource"] == "Firewall/audited")
    assert not audited["ready"]
    for path in ("network.yaml", "storage.yaml", "packages.yaml", "heal.yaml", "audit.yaml"):
        (plain / path).unlink()
    eventually(lambda: not _link(box), timeout=60, what="dd0 pruned")


def test_a_broken_edit_keeps_the_last_good_generation(
    daemon: DaemonProc, specs: dict[str, Path]
) -> None:
    box, plain = daemon.box, specs["plain"]
    good = plain / "keep.yaml"
    good.write_text(firewall("keep", "keep", ["tcp dport 4501 accept"]))
    eventually(lambda: nft_rules(box, "keep") == ["tcp dport 4501 accept"], what="keep")
    generation = json.loads(daemon.aios("status", "-o", "json").stdout)["generation"]
    invalid = len(daemon.events("SpecsInvalid"))
    good.write_text(firewall("keep", "keep", ["tcp dport 4502 accept"]).replace(
        "policy: accept", "policy: [accept"))  # fmt: skip
    eventually(lambda: len(daemon.events("SpecsInvalid")) > invalid, what="SpecsInvalid")
    message = daemon.events("SpecsInvalid")[-1]["message"]
    assert f"{good}:" in message and "last good set kept" in message, message
    time.sleep(0.3)
    assert nft_rules(box, "keep") == ["tcp dport 4501 accept"]
    status = json.loads(daemon.aios("status", "-o", "json").stdout)
    assert status["generation"] == generation
    specs_valid = [c for c in status.get("conditions", []) if c.get("type") == "SpecsValid"]
    assert specs_valid and specs_valid[0]["status"] == "False", status.get("conditions")
    good.write_text(firewall("keep", "keep", ["tcp dport 4502 accept"]))
    eventually(lambda: nft_rules(box, "keep") == ["tcp dport 4502 accept"], what="fixed")
    good.unlink()
    eventually(lambda: nft_rules(box, "keep") == [], what="keep pruned")


def _pending(daemon: DaemonProc) -> list[dict[str, object]]:
    proc = daemon.aios("plans", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    return list(data if isinstance(data, list) else data.get("plans", []))


def test_propose_waits_for_approve_and_a_stale_approve_is_refused(
    daemon: DaemonProc, specs: dict[str, Path]
) -> None:
    box, plain = daemon.box, specs["plain"]
    (plain / "prop.yaml").write_text(
        firewall("prop", "prop", ["tcp dport 5001 accept"], mode="propose")
    )
    plans = eventually(lambda: _pending(daemon), what="a pending plan")
    assert plans[0]["domain"] == "firewall"
    assert "table inet prop" not in box.sh("nft", "list", "tables"), "propose ran by itself"
    first = str(plans[0]["id"])
    assert daemon.aios("suspend", "firewall").returncode == 0
    box.sh("nft", "add", "table", "inet", "prop")  # the machine moves under the plan
    stale = daemon.aios("approve", first)
    assert stale.returncode == 3, stale.stdout + stale.stderr
    assert "stale" in (stale.stdout + stale.stderr)
    assert "chain" not in box.sh("nft", "list", "table", "inet", "prop")
    assert daemon.aios("resume", "firewall").returncode == 0
    fresh = eventually(
        lambda: [p for p in _pending(daemon) if p["id"] != first], what="a fresh pending plan"
    )
    approved = daemon.aios("approve", str(fresh[0]["id"]))
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert nft_rules(box, "prop") == ["tcp dport 5001 accept"]
    assert _pending(daemon) == []
    (plain / "prop.yaml").unlink()  # no longer managed; the table made by hand is not aios's

    def unmanaged() -> bool:
        status = json.loads(daemon.aios("status", "-o", "json").stdout)
        return all(r["resource"] != "Firewall/prop" for r in status["resources"])

    eventually(unmanaged, what="Firewall/prop forgotten")
    box.sh("nft", "delete", "table", "inet", "prop")


def test_a_cli_apply_goes_through_the_daemon_and_a_conflict_names_both_places(
    daemon: DaemonProc, specs: dict[str, Path], tmp_path: Path
) -> None:
    box, plain = daemon.box, specs["plain"]
    (plain / "owned.yaml").write_text(firewall("owned", "owned", ["tcp dport 5501 accept"]))
    eventually(lambda: nft_rules(box, "owned") == ["tcp dport 5501 accept"], what="owned")
    extra = tmp_path / "extra.yaml"
    extra.write_text(firewall("extra", "extra", ["tcp dport 5601 accept"]))
    (plain / "busy.yaml").write_text(firewall("busy", "busy", ["tcp dport 5701 accept"]))
    applied = daemon.aios("apply", "-f", str(extra), "--yes")  # while the daemon is busy
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert nft_rules(box, "extra") == ["tcp dport 5601 accept"]
    assert daemon.events("Applied", "Firewall/extra"), "the daemon did not run the CLI's apply"
    eventually(lambda: nft_rules(box, "busy") == ["tcp dport 5701 accept"], what="busy")

    clash = tmp_path / "clash.yaml"
    clash.write_text(firewall("owned", "owned", ["tcp dport 9 accept"]))
    refused = daemon.aios("apply", "-f", str(clash), "--yes")
    assert refused.returncode == 1
    said = refused.stdout + refused.stderr
    assert str(clash) in said and str(plain / "owned.yaml") in said, said
    assert nft_rules(box, "owned") == ["tcp dport 5501 accept"]

    # the CLI-applied resource survives a spec edit (it is no source's), the runs never overlap
    (plain / "busy.yaml").write_text(firewall("busy", "busy", ["tcp dport 5702 accept"]))
    eventually(lambda: nft_rules(box, "busy") == ["tcp dport 5702 accept"], what="busy edit")
    assert nft_rules(box, "extra") == ["tcp dport 5601 accept"]
    db = sqlite3.connect(box.record.state_dir / "reconciler.db")
    try:
        runs = db.execute("select started, finished from runs order by started").fetchall()
    finally:
        db.close()
    for (_, end), (start, _) in itertools.pairwise(runs):
        assert end is not None and end <= start, f"two writers at once: {runs}"
    for name in ("owned.yaml", "busy.yaml"):
        (plain / name).unlink()


def test_a_storm_of_edits_converges_to_the_last_with_few_reconciles(
    daemon: DaemonProc, specs: dict[str, Path]
) -> None:
    box, plain = daemon.box, specs["plain"]
    path = plain / "storm.yaml"
    path.write_text(firewall("storm", "storm", ["tcp dport 6000 accept"]))
    eventually(lambda: nft_rules(box, "storm") == ["tcp dport 6000 accept"], what="storm")
    before = len(daemon.events("Applied", "Firewall/storm"))
    started = time.monotonic()
    for i in range(1, 1001):
        tmp = plain / ".storm.yaml.tmp"
        tmp.write_text(firewall("storm", "storm", [f"tcp dport {6000 + i} accept"]))
        os.replace(tmp, path)
        time.sleep(max(0.0, started + i / 1000 - time.monotonic()))
    eventually(lambda: nft_rules(box, "storm") == ["tcp dport 7000 accept"], what="last edit")
    time.sleep(0.5)
    applies = len(daemon.events("Applied", "Firewall/storm")) - before
    assert 1 <= applies <= 10, f"{applies} reconciles for 1000 edits"
    assert nft_rules(box, "storm") == ["tcp dport 7000 accept"]
    path.unlink()


def _audit_rows(box: Box) -> int:
    db = sqlite3.connect(box.record.registry_state / "audit.db")
    try:
        return int(db.execute("select count(*) from audit_log").fetchone()[0])
    finally:
        db.close()


def test_an_idle_daemon_calls_nothing_and_still_heals_from_events(
    daemon: DaemonProc, specs: dict[str, Path]
) -> None:
    box, plain = daemon.box, specs["plain"]
    (plain / "idle.yaml").write_text(firewall("idle", "idle", ["tcp dport 6501 accept"]))
    eventually(lambda: nft_rules(box, "idle") == ["tcp dport 6501 accept"], what="idle")
    time.sleep(0.5)
    rows = _audit_rows(box)
    time.sleep(5)  # the poll interval is 1 h: nothing observes while nothing changes
    assert _audit_rows(box) == rows, "the idle daemon called the registry"
    box.sh("nft", "flush", "chain", "inet", "idle", "input")
    eventually(lambda: nft_rules(box, "idle") == ["tcp dport 6501 accept"], what="flush healed")
    (plain / "idle.yaml").unlink()


def test_fighting_another_writer_backs_off_and_says_who(
    daemon: DaemonProc, specs: dict[str, Path]
) -> None:
    box, plain = daemon.box, specs["plain"]
    (plain / "fight.yaml").write_text(firewall("fight", "fight", ["tcp dport 7001 accept"]))
    eventually(lambda: nft_rules(box, "fight") == ["tcp dport 7001 accept"], what="fight")
    stop = threading.Event()

    def other_writer() -> None:  # flushes the chain whenever the rule is back
        while not stop.is_set():
            if nft_rules(box, "fight"):
                box.sh("nft", "flush", "chain", "inet", "fight", "input", check=False)
            time.sleep(0.05)

    thread = threading.Thread(target=other_writer, daemon=True)
    thread.start()
    try:
        fights = eventually(lambda: daemon.events("Fighting", "Firewall/fight"), timeout=30,
                            what="Fighting")  # fmt: skip
        assert "nft-monitor" in fights[0]["message"], fights[0]
        heals = len(daemon.events("Healed", "Firewall/fight"))
        time.sleep(3)  # held: 1 s, then 2 s, ...: at most a few heals, never a spin
        assert len(daemon.events("Healed", "Firewall/fight")) - heals <= 3
        status = json.loads(daemon.aios("status", "-o", "json").stdout)
        fighting = [c for c in status.get("conditions", []) if c.get("type") == "Fighting"]
        assert fighting and fighting[0]["resource"] == "Firewall/fight", status.get("conditions")
    finally:
        stop.set()
        thread.join(10)
    eventually(lambda: nft_rules(box, "fight") == ["tcp dport 7001 accept"], timeout=60,
               what="healed once the other writer stopped")  # fmt: skip
    (plain / "fight.yaml").unlink()
    eventually(lambda: "table inet fight" not in box.sh("nft", "list", "tables"), what="pruned")


def test_metrics_and_healthz_are_served(daemon: DaemonProc, specs: dict[str, Path]) -> None:
    import re
    import urllib.request

    line = next(
        r["message"]
        for r in _log_records(daemon)
        if str(r.get("message", "")).startswith("metrics on")
    )
    url = re.search(r"http://\S+/metrics", line)
    assert url, line
    box, plain = daemon.box, specs["plain"]
    (plain / "metered.yaml").write_text(firewall("metered", "metered", ["tcp dport 7501 accept"]))
    eventually(lambda: nft_rules(box, "metered") == ["tcp dport 7501 accept"], what="metered")
    with urllib.request.urlopen(url.group(0), timeout=5) as response:
        text = response.read().decode()
    assert re.search(r'aios_reconciles_total\{domain="firewall",result="ready"\} [1-9]', text), text
    assert re.search(r'aios_tool_calls_total\{result="ok",tool="firewall.apply"\} [1-9]', text), (
        text
    )
    assert "aios_feed_connected 1.0" in text
    with urllib.request.urlopen(url.group(0).replace("/metrics", "/healthz"), timeout=5) as r:
        assert r.status == 200
    (plain / "metered.yaml").unlink()
    eventually(lambda: nft_rules(box, "metered") == [], what="metered pruned")


def _log_records(daemon: DaemonProc) -> list[dict[str, object]]:
    out = []
    for line in daemon.log.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
