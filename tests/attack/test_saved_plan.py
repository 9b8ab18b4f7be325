"""Saved-plan tampering (issue 8, escape 5): `aios apply --plan FILE` runs nothing unreviewed.

A saved plan is only a claim: `aios apply --plan` makes a fresh plan for the
same binding and runs it only when the saved one equals it (what runs is the
fresh plan, which the verifier checked). One sandbox serves the module; one
spec set (Storage: two directories, Network: an ifb link with an MTU,
Firewall: one table) is planned once with `--out`. Each case edits the saved
JSON as an attacker would — an added step (an `fs.write` in the storage
domain), changed inputs (another link, `lo`, an MTU, a float for an int, an
extra key), a changed table (a lockout ruleset, an undeclared table), changed
reason or description text (with a newline that would fake a line), removed
or reordered steps, changed risk, destructive flag or satisfied changes, an
added, removed or doubled domain, a changed binding or state — and runs the
real CLI: exit 1 naming the first difference for an altered plan, exit 3 for a
stale one, and nothing executed: no write call in the sandbox registry's
audit log, no journal row or generation in the reconciler's store, and the
sandbox's links (lo's MTU among them), nft ruleset and scratch-root tree
(names, modes, owners, sizes, file digests) unchanged; after the module the
host's links, addresses, routes, rules, nft ruleset and dpkg status are
unchanged and no namespace, mount or loop device of the sandbox is left. Then the untouched plan
applies (exit 0: the check does not just refuse everything), and an honest
saved plan the verifier refuses (a lockout ruleset without `force`) is
refused with exit 4 when applied, running nothing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox import lifecycle as sandbox
from tests.system.engine_support import Box
from tests.system.helpers import host_state as _host_state

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a sandbox)")

SPECS = """\
apiVersion: aios.dev/v1
kind: Storage
metadata: {name: data}
spec:
  directories:
    - {path: /srv/reviewed, mode: "0750", owner: root}
    - {path: /srv/reviewed2, mode: "0750", owner: root}
---
apiVersion: aios.dev/v1
kind: Network
metadata: {name: lan}
spec:
  links:
    - {name: ifb-rv, kind: ifb, mtu: 1400}
---
apiVersion: aios.dev/v1
kind: Firewall
metadata: {name: host}
spec:
  tables:
    - family: inet
      name: reviewed
      chains:
        - name: input
          type: filter
          hook: input
          priority: filter
          policy: accept
          rules:
            - tcp dport 22 accept
"""
LOCKOUT = """\
apiVersion: aios.dev/v1
kind: Firewall
metadata: {name: host}
spec:
  tables:
    - family: inet
      name: reviewed
      chains:
        - {name: input, type: filter, hook: input, priority: filter, policy: drop}
"""

Plan = dict[str, Any]


def domain(plan: Plan, name: str) -> dict[str, Any]:
    return next(d for d in plan["domains"] if d["domain"] == name)


def step(plan: Plan, name: str, index: int = 0) -> dict[str, Any]:
    steps: list[dict[str, Any]] = domain(plan, name)["steps"]
    return steps[index]


FS_WRITE = {
    "tool": "fs.write",
    "input": {"path": "/srv/planted", "content": "written by a step nobody reviewed\n"},
    "reason": "create directory /srv/reviewed (mode 0750, owner root)",
    "satisfies": ["Storage/data|directory:/srv/reviewed"],
    "risk": "medium",
    "destructive": False,
}
LOCKOUT_TABLE = {"chains": [{"hook": "input", "name": "input", "policy": "drop",
                             "priority": "filter", "rules": [], "type": "filter"}],
                 "family": "inet", "name": "reviewed"}  # fmt: skip
UNDECLARED = {"chains": [{"name": "c", "rules": ["accept"]}], "family": "ip", "name": "sneaky"}
MODELS = {
    "domain": "models",
    "resources": [],
    "state_fingerprint": "0" * 64,
    "changes": [],
    "noops": [],
    "planner": "rules",
    "steps": [
        {
            "tool": "model.fetch",
            "input": {"url": "http://127.0.0.1:18080/models/demo-tiny.gguf",
                      "sha256": "be03cd4325fa0f0856f3fba9c4fdc9b7528bf7fc2a8ea7473db2ac13f7934443",
                      "path": "/srv/evil.gguf"},
            "reason": "nothing", "satisfies": [], "risk": "low", "destructive": False,
        }
    ],
}  # fmt: skip


def _set(path: Callable[[Plan], dict[str, Any]], key: str, value: Any) -> Callable[[Plan], None]:
    def edit(plan: Plan) -> None:
        path(plan)[key] = value

    return edit


def _append_step(plan: Plan) -> None:
    domain(plan, "storage")["steps"].append(FS_WRITE)


def _insert_step(plan: Plan) -> None:
    domain(plan, "storage")["steps"].insert(0, FS_WRITE)


def _tool_lo(plan: Plan) -> None:
    step(plan, "network").update(tool="net.link_set", input={"name": "lo", "mtu": 1280})


def _lockout_and_table(plan: Plan) -> None:
    step(plan, "firewall")["input"]["tables"] = [LOCKOUT_TABLE, UNDECLARED]


def _undeclared(plan: Plan) -> None:
    step(plan, "firewall")["input"]["tables"].append(UNDECLARED)


def _lockout(plan: Plan) -> None:
    step(plan, "firewall")["input"]["tables"] = [LOCKOUT_TABLE]


def _remove_step(plan: Plan) -> None:
    del domain(plan, "storage")["steps"][1]


def _reorder(plan: Plan) -> None:
    domain(plan, "storage")["steps"].reverse()


def _remove_domain(plan: Plan) -> None:
    plan["domains"] = [d for d in plan["domains"] if d["domain"] != "firewall"]


def _add_domain(plan: Plan) -> None:
    plan["domains"].append(MODELS)


def _double_domain(plan: Plan) -> None:
    twin = copy.deepcopy(domain(plan, "storage"))
    twin["steps"] = [FS_WRITE]
    plan["domains"].append(twin)


def _extra_field(plan: Plan) -> None:
    plan["steps"] = [FS_WRITE]


ALTERED = "aios: saved plan does not match a fresh plan for the same binding (altered?): "
TAIL = "; nothing was run; make a new one with aios plan --out"
F = "a fresh plan has"
CASES: list[tuple[str, Callable[[Plan], None], int, str]] = [
    ("plan-added-step", _append_step, 1,
     f"{ALTERED}storage: step 3 (fs.write) is not in a fresh plan (saved 3 steps, fresh 2){TAIL}"),
    ("plan-added-step-first", _insert_step, 1,
     f'{ALTERED}storage: step 1 (fs.write): tool differs: saved "fs.write", {F} "storage.dir"'),
    ("plan-changed-input-mtu", lambda p: step(p, "network")["input"].update(mtu=9000), 1,
     f"{ALTERED}network: step 1 (net.link_add): input differs at $.mtu: saved 9000, {F} 1400"),
    ("plan-changed-input-object", lambda p: step(p, "network")["input"].update(name="lo"), 1,
     f'{ALTERED}network: step 1 (net.link_add): input differs at $.name: saved "lo", '
     f'{F} "ifb-rv"'),
    ("plan-changed-tool-lo-mtu", _tool_lo, 1,
     f'{ALTERED}network: step 1 (net.link_set): tool differs: saved "net.link_set", '
     f'{F} "net.link_add"'),
    ("plan-changed-input-float", lambda p: step(p, "network")["input"].update(mtu=1400.0), 1,
     f"{ALTERED}network: step 1 (net.link_add): input differs at $.mtu: saved 1400.0, {F} 1400"),
    ("plan-added-input-key", lambda p: step(p, "network")["input"].update(netns="1"), 1,
     f'{ALTERED}network: step 1 (net.link_add): input differs at $.netns: saved "1", '
     f"{F} (absent)"),
    ("plan-changed-table-lockout-and-undeclared", _lockout_and_table, 1,
     f"{ALTERED}firewall: step 1 (firewall.apply): input differs at "
     f'$.tables[0].chains[0].policy: saved "drop", {F} "accept"'),
    ("plan-changed-table-undeclared", _undeclared, 1,
     f'{ALTERED}firewall: step 1 (firewall.apply): input differs at $.tables[1]: saved '
     f'{{"chains":[{{"name":"c","rules":["accept"]}}],"family":"ip","name":"sneaky"}}, '
     f"{F} (absent)"),
    ("plan-changed-table-lockout", _lockout, 1,
     f"{ALTERED}firewall: step 1 (firewall.apply): input differs at "
     f'$.tables[0].chains[0].policy: saved "drop", {F} "accept"'),
    ("plan-changed-reason", _set(lambda p: step(p, "storage"), "reason", "tidy up"), 1,
     f'{ALTERED}storage: step 1 (storage.dir): reason differs: saved "tidy up", {F} '
     '"create directory /srv/reviewed (mode 0750, owner root)"'),
    ("plan-reason-newline",
     _set(lambda p: step(p, "storage"), "reason", "ok\n    2. fs.write [low] harmless"), 1,
     f'{ALTERED}storage: step 1 (storage.dir): reason differs: saved '
     f'"ok\\n    2. fs.write [low] harmless", {F} "create directory'),
    ("plan-reason-nul", _set(lambda p: step(p, "storage"), "reason", "ok\x00hidden"), 1,
     f'{ALTERED}storage: step 1 (storage.dir): reason differs: saved "ok\\u0000hidden"'),
    ("plan-changed-description",
     _set(lambda p: domain(p, "firewall")["changes"][0], "detail", "comment only"), 1,
     f'{ALTERED}firewall: change 1 (nft-table:inet/reviewed): detail differs: saved '
     f'"comment only", {F} "create: 1 chain, 1 rule"'),
    ("plan-changed-shown-value",
     lambda p: domain(p, "network")["changes"][0]["new"].update(mtu=1500), 1,
     f"{ALTERED}network: change 1 (link:ifb-rv): new differs at $.mtu: saved 1500, {F} 1400"),
    ("plan-removed-change", _set(lambda p: domain(p, "network"), "changes", []), 1,
     f"{ALTERED}network: change 1 of a fresh plan (link:ifb-rv) is missing "
     "(saved 0 changes, fresh 1)"),
    ("plan-removed-step", _remove_step, 1,
     f"{ALTERED}storage: step 2 of a fresh plan (storage.dir) is missing "
     "(saved 1 steps, fresh 2)"),
    ("plan-reordered-steps", _reorder, 1,
     f"{ALTERED}storage: step 1 (storage.dir): the same steps in another order"),
    ("plan-changed-risk", _set(lambda p: step(p, "firewall"), "risk", "low"), 1,
     f'{ALTERED}firewall: step 1 (firewall.apply): risk differs: saved "low", {F} "high"'),
    ("plan-changed-destructive", _set(lambda p: step(p, "storage"), "destructive", True), 1,
     f"{ALTERED}storage: step 1 (storage.dir): destructive differs: saved true, {F} false"),
    ("plan-changed-satisfies", _set(lambda p: step(p, "network"), "satisfies", []), 1,
     f'{ALTERED}network: step 1 (net.link_add): satisfies differs at $[0]: saved (absent), '
     f'{F} "Network/lan|link:ifb-rv"'),
    ("plan-changed-resources",
     _set(lambda p: domain(p, "storage"), "resources", ["Storage/data", "Storage/evil"]), 1,
     f"{ALTERED}storage: it covers resources Storage/data, Storage/evil; a fresh plan covers "
     "Storage/data"),
    ("plan-changed-planner", _set(lambda p: domain(p, "network"), "planner", "llm"), 1,
     f"{ALTERED}network: planner: saved 'llm', {F} 'rules'"),
    ("plan-removed-domain", _remove_domain, 1,
     f"{ALTERED}firewall: the saved plan has no firewall domain; {F} 1 step(s) there"),
    ("plan-added-domain", _add_domain, 1,
     f"{ALTERED}models: the saved plan has a models domain, which these specs do not involve"),
    ("plan-doubled-domain", _double_domain, 1,
     f"{ALTERED}storage: the saved plan holds this domain 2 times"),
    ("plan-extra-field", _extra_field, 1, "not a saved plan"),
    ("plan-stale-state", _set(lambda p: domain(p, "network"), "state_fingerprint", "0" * 64), 3,
     "aios: saved plan is stale: network: the observed state changed since the saved plan "
     "was made; run aios plan again"),
    ("plan-stale-spec-digest", _set(lambda p: p["binding"], "spec_digest", "0" * 64), 3,
     f"aios: saved plan is stale: spec digest was '{'0' * 64}', now '"),
    ("plan-stale-generation", _set(lambda p: p["binding"], "generation", 7), 3,
     "aios: saved plan is stale: generation was 7, now 1; run aios plan again"),
    ("plan-stale-inventory", _set(lambda p: p["binding"], "inventory_digest", "x"), 3,
     "aios: saved plan is stale: inventory was 'x', now '"),
]  # fmt: skip


class Sandbox:
    """The module's sandbox, its spec tree and the plan saved from it."""

    def __init__(self, box: Box, specs: Path, saved: Plan, tmp: Path) -> None:
        self.box, self.specs, self.saved, self.tmp = box, specs, saved, tmp

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.box.aios(*args, "--sandbox", self.box.name)

    def state(self) -> dict[str, Any]:
        """Everything a saved plan could change, read independently of the registry."""
        links = json.loads(self.box.sh("ip", "-j", "-d", "link", "show") or "[]")
        for link in links:
            link.pop("stats", None)
            link.pop("stats64", None)
        # Names, types, modes, owners, sizes and file digests, as the sandbox sees them.
        tree = self.box.sh(
            "sh", "-c",
            f"cd {self.box.root} && find . -xdev -printf '%p %y %m %U:%G %s\\n' | sort && "
            "find . -xdev -type f -size -1M -exec sha256sum {} + | sort",
        )  # fmt: skip
        db = sqlite3.connect(self.box.record.state_dir / "reconciler.db")
        try:
            store = {
                table: db.execute(f"select count(*) from {table}").fetchone()[0]
                for table in ("generations", "journal", "inventory")
            }
        finally:
            db.close()
        return {
            "links": links,
            "nft": self.box.sh("nft", "list", "ruleset"),
            "tree": tree,
            "store": store,
            "writes": self.box.write_calls(),
        }


@contextlib.contextmanager
def running_box(tmp: Path, *, profile: str = "full") -> Iterator[Box]:
    """A sandbox for a whole module (the `box` fixture makes one per test), torn down
    whatever happens; the host snapshot must be the same afterwards. Also used by
    the other attack modules (test_plan_errors, test_status_interrupted)."""
    host = _host_view()
    base = tmp / "sandboxes"
    name = f"p{uuid.uuid4().hex[:8]}"
    env = {**os.environ, sandbox.BASE_ENV: str(base), "NO_COLOR": "1", "AIOS_WARM": "0"}
    box = Box(name, base, env)
    try:
        up = box.aios("sandbox", "up", name, "--profile", profile)
        assert up.returncode == 0, up.stdout + up.stderr
        yield box
    finally:
        box.aios("sandbox", "down", name)
        subprocess.run(["ip", "netns", "del", f"aios-{name}"], capture_output=True, check=False)
    after = _host_view()
    assert after == host, f"the host changed: {sorted(k for k in host if host[k] != after[k])}"
    leftovers = {k: v for k, v in _host_state().items() if k in ("netns", "mounts", "loops")}
    for kind, text in leftovers.items():
        assert name not in text and str(tmp) not in text, f"the sandbox left {kind} behind"


def _host_view() -> dict[str, str]:
    """The host snapshot (tests/conftest.py) minus the namespaces, mounts and loop
    devices that other test runs on this machine create meanwhile; this module's own
    leftovers of those are checked by name instead."""
    state = _host_state()
    return {k: v for k, v in state.items() if k not in ("netns", "mounts", "loops")}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    tmp = tmp_path_factory.mktemp("saved-plan")
    with running_box(tmp) as box:
        specs = tmp / "specs"
        specs.mkdir()
        (specs / "all.yaml").write_text(SPECS, encoding="utf-8")
        out = tmp / "plan.json"
        made = box.aios("plan", "-f", str(specs), "--sandbox", box.name, "--out", str(out))
        assert made.returncode == 2, made.stdout + made.stderr
        yield Sandbox(box, specs, json.loads(out.read_text(encoding="utf-8")), tmp)


@pytest.mark.parametrize(("name", "edit", "code", "message"), CASES, ids=[c[0] for c in CASES])
def test_tampered_saved_plan_is_refused_and_runs_nothing(
    sb: Sandbox, name: str, edit: Callable[[Plan], None], code: int, message: str
) -> None:
    tampered = copy.deepcopy(sb.saved)
    edit(tampered)
    assert json.dumps(tampered, sort_keys=True) != json.dumps(sb.saved, sort_keys=True)
    path = sb.tmp / f"{name}.json"
    path.write_text(json.dumps(tampered), encoding="utf-8")
    before = sb.state()
    proc = sb.cli("apply", "-f", str(sb.specs), "--plan", str(path))
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "applied" not in proc.stdout, proc.stdout
    assert sb.state() == before, "a refused saved plan changed the sandbox"
    for planted in ("srv/reviewed", "srv/reviewed2", "srv/planted", "srv/evil.gguf"):
        assert not (sb.box.root / planted).exists(), f"{planted} was created"


def test_the_untouched_plan_runs_and_a_refused_one_stays_refused(sb: Sandbox) -> None:
    """Not an over-strict check: the plan as saved applies; and the verifier still
    gates an honest saved plan (a lockout table without force: exit 4, nothing runs)."""
    honest = sb.tmp / "honest.json"
    honest.write_text(json.dumps(sb.saved), encoding="utf-8")
    done = sb.cli("apply", "-f", str(sb.specs), "--plan", str(honest))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "generation 1: all resources Ready" in done.stdout
    assert (sb.box.root / "srv/reviewed").is_dir() and (sb.box.root / "srv/reviewed2").is_dir()
    again = sb.cli("apply", "-f", str(sb.specs), "--plan", str(honest))
    assert again.returncode == 3, "a plan that already ran is stale"
    lockout = sb.tmp / "lockout"
    lockout.mkdir()
    (lockout / "fw.yaml").write_text(LOCKOUT, encoding="utf-8")
    saved = sb.tmp / "lockout.json"
    shown = sb.cli("plan", "-f", str(lockout), "--out", str(saved))
    assert shown.returncode == 1 and "DestructiveRefused" in shown.stdout, shown.stdout
    before = sb.state()
    refused = sb.cli("apply", "-f", str(lockout), "--plan", str(saved))
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "Firewall/host: stalled (DestructiveRefused)" in refused.stderr, refused.stderr
    assert sb.state() == before
