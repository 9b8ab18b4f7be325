"""Planning errors are never hidden, and a failed resource never poisons the others.

Two real sandboxes. Against one serving the `aios` profile (aiOS's own tool
set: no `storage.state`, `net.state` or `firewall.ruleset`), every domain's
observe fails: `aios plan` (text and `-o json`), `aios diff` and `aios apply`
must each name every failed domain with its error, exit 1 and never say "No
changes", "No differences" or "all resources Ready" (main said "No changes. The
target matches the specs." with exit 1 and no reason), and nothing is written.
Against a full sandbox, one Packages resource asks for a version that does not
exist: it is left out with its own error (in text and JSON), the rest of its
domain and the other domains plan and apply, the generation holds only what
took effect, a later apply of other specs is all Ready (main recorded the bad
resource and failed every later apply of the domain, giving every resource its
error), and the failed resource's status is gone once nothing manages it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.attack.test_saved_plan import running_box
from tests.system.cli_support import statuses
from tests.system.engine_support import Box

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a sandbox)")

EVERY_DOMAIN = """\
apiVersion: aios.dev/v1
kind: Storage
metadata: {name: data}
spec:
  directories:
    - {path: /srv/data, mode: "0750", owner: root}
---
apiVersion: aios.dev/v1
kind: Network
metadata: {name: lan}
spec:
  links:
    - {name: ifb-pe, kind: ifb}
---
apiVersion: aios.dev/v1
kind: Firewall
metadata: {name: host}
spec:
  tables:
    - {family: inet, name: filter}
"""
ONE_BAD = """\
apiVersion: aios.dev/v1
kind: Storage
metadata: {name: data}
spec:
  directories:
    - {path: /srv/kept, mode: "0750", owner: root}
---
apiVersion: aios.dev/v1
kind: Packages
metadata: {name: good}
spec:
  repositories:
    - {name: aios-demo, url: "http://127.0.0.1:18080/apt", suite: ./, trusted: true}
  packages:
    - {name: aios-demo-base, version: "1.1-1"}
---
apiVersion: aios.dev/v1
kind: Packages
metadata: {name: bad}
spec:
  packages:
    - {name: aios-demo-console, version: "9.9-9"}
"""
OTHER = """\
apiVersion: aios.dev/v1
kind: Storage
metadata: {name: other}
spec:
  directories:
    - {path: /srv/other, mode: "0750", owner: root}
"""
MISSING = {
    "storage": "the registry has no tool storage.state; observe needs it",
    "network": "the registry has no tool net.state; observe needs it",
    "firewall": "the registry has no tool firewall.ruleset; observe needs it",
}
BAD = (
    "Packages/bad: no available version of package aios-demo-console satisfies '9.9-9' "
    "(available: 1.0-1)"
)
SUCCESS = ("No changes", "No differences", "all resources Ready", "matches the specs")


def tree(tmp: Path, tag: str, text: str) -> Path:
    directory = tmp / tag
    directory.mkdir(exist_ok=True)
    (directory / "specs.yaml").write_text(text, encoding="utf-8")
    return directory


def cli(box: Box, *args: str) -> subprocess.CompletedProcess[str]:
    proc = box.aios(*args, "--sandbox", box.name)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def never_success(proc: subprocess.CompletedProcess[str]) -> None:
    for words in SUCCESS:
        assert words not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def aios_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Box, Path]]:
    tmp = tmp_path_factory.mktemp("plan-errors-aios")
    with running_box(tmp, profile="aios") as box:
        yield box, tree(tmp, "every", EVERY_DOMAIN)


@pytest.fixture(scope="module")
def full_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Box, Path]]:
    tmp = tmp_path_factory.mktemp("plan-errors-full")
    with running_box(tmp) as box:
        yield box, tmp


FAILED_SUMMARY = (
    "domain storage could not be planned (ToolNotFound); domain network could not be "
    "planned (ToolNotFound); domain firewall could not be planned (ToolNotFound)"
)


def test_plan_error_text_names_every_failed_domain(aios_box: tuple[Box, Path]) -> None:
    box, specs = aios_box
    proc = cli(box, "plan", "-f", str(specs))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for domain, message in MISSING.items():
        at = lines.index(f"{domain}: could not be planned")
        assert lines[at + 1] == f"  ! ToolNotFound: {message}"
    assert lines[-1] == f"Planning failed: {FAILED_SUMMARY}; the target may not match the specs."
    assert proc.stderr == f"aios: the plan is incomplete: {FAILED_SUMMARY}\n"
    never_success(proc)


def test_plan_error_json_names_every_failed_domain(aios_box: tuple[Box, Path]) -> None:
    box, specs = aios_box
    proc = cli(box, "plan", "-f", str(specs), "-o", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["domains"] == []
    assert plan["failures"] == [
        {"domain": d, "resource": "", "reason": "ToolNotFound", "message": m, "retryable": False}
        for d, m in MISSING.items()
    ]


def test_plan_error_diff_never_says_no_differences(aios_box: tuple[Box, Path]) -> None:
    box, specs = aios_box
    proc = cli(box, "diff", "-f", str(specs))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        *(f"domain {d}: ToolNotFound: {m}" for d, m in MISSING.items()),
        f"aios: could not compare everything: {FAILED_SUMMARY}",
    ]
    never_success(proc)


def test_plan_error_apply_reports_each_domain_and_writes_nothing(
    aios_box: tuple[Box, Path],
) -> None:
    box, specs = aios_box
    proc = cli(box, "apply", "-f", str(specs), "--yes")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    for domain, message in MISSING.items():
        assert f"{domain}: observe/plan failed: {message}" in proc.stdout
    assert "generation 0: 3 not Ready" in proc.stdout
    never_success(proc)
    assert box.write_calls() == 0
    shown = statuses(box)
    assert set(shown) == {"Storage/data", "Network/lan", "Firewall/host"}
    for key, (ready, reason, message) in shown.items():
        assert not ready and reason == "Stalled/ToolNotFound", (key, reason)
        assert message == MISSING[{"S": "storage", "N": "network", "F": "firewall"}[key[0]]]


def test_plan_left_out_resource_text_and_json(full_box: tuple[Box, Path]) -> None:
    box, tmp = full_box
    specs = tree(tmp, "one-bad", ONE_BAD)
    text = cli(box, "plan", "-f", str(specs))
    assert text.returncode == 1, text.stdout + text.stderr
    lines = text.stdout.splitlines()
    assert f"  ! Packages/bad: PermanentError: {BAD}" in lines
    assert lines[-1] == (
        "Plan: 3 to add, 0 to change, 0 to remove (3 step(s)). "
        "INCOMPLETE: Packages/bad could not be planned (PermanentError)."
    )
    assert "+ package:aios-demo-base  (1.1-1 as declared)" in text.stdout
    assert "+ directory:/srv/kept" in text.stdout
    never_success(text)
    data = cli(box, "plan", "-f", str(specs), "-o", "json")
    assert data.returncode == 1
    plan: dict[str, Any] = json.loads(data.stdout)
    assert plan["failures"] == [
        {
            "domain": "packages",
            "resource": "Packages/bad",
            "reason": "PermanentError",
            "message": BAD,
            "retryable": False,
        }
    ]
    packages = next(d for d in plan["domains"] if d["domain"] == "packages")
    assert packages["resources"] == ["Packages/good"]
    diff = cli(box, "diff", "-f", str(specs))
    assert diff.returncode == 1
    assert "Packages/good: + package:aios-demo-base" in diff.stdout
    assert diff.stderr.splitlines() == [
        f"Packages/bad: PermanentError: {BAD}",
        "aios: could not compare everything: Packages/bad could not be planned (PermanentError)",
    ]


def test_a_failed_resource_does_not_poison_later_applies(full_box: tuple[Box, Path]) -> None:
    box, tmp = full_box
    specs = tree(tmp, "one-bad", ONE_BAD)
    first = cli(box, "apply", "-f", str(specs), "--yes")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "packages: 2 step(s) applied; left out: Packages/bad" in first.stdout
    shown = statuses(box)
    assert shown["Storage/data"][0] and shown["Packages/good"][0]
    ready, reason, message = shown["Packages/bad"]
    assert not ready and reason == "Stalled/PermanentError" and message.startswith(BAD)
    history = cli(box, "history").stdout.splitlines()
    assert len(history) == 1 and history[0].endswith("Packages/good, Storage/data"), history
    later = cli(box, "apply", "-f", str(tree(tmp, "other", OTHER)), "--yes")
    assert later.returncode == 0, later.stdout + later.stderr
    assert "generation 2: all resources Ready" in later.stdout
    assert set(statuses(box)) == {"Packages/good", "Storage/data", "Storage/other"}
    assert all(ready for ready, _, _ in statuses(box).values())
    assert cli(box, "status").returncode == 0
