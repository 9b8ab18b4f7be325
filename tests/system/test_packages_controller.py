"""The packages controller end to end: real CLI, real sandbox, dpkg read back independently.

Each test gets its own sandbox (`box`) whose provisioning already configured
the demo repository as /etc/apt/sources.list.d/sandbox.list; `pbox` deletes
that file, so the demo packages are offered only once a spec's
`aios-demo` repository is added — the first converge must resolve versions
from pkg.state's temporary index. The machine is read back with
`dpkg-query --admindir=<root>/var/lib/dpkg` inside the sandbox's mount
namespace; drift is made with raw `dpkg --root`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest

from controllers.packages import CONTROLLER
from controllers.packages.state import PackagesState
from reconciler.cli.common import open_engine, resolve_target
from reconciler.engine.reader import ReadOnlyReader
from sandbox import lifecycle as sandbox
from specs.loader import load_paths
from tests.system.engine_support import Box, box  # noqa: F401

REPO = '    - {name: aios-demo, url: "http://127.0.0.1:18080/apt", suite: ./, trusted: true}'


@pytest.fixture
def pbox(box: Box) -> Box:  # noqa: F811
    box.sh("rm", "-f", f"{box.root}/etc/apt/sources.list.d/sandbox.list")
    return box


def write_spec(
    tmp: Path, tag: str, packages: list[str], *, name: str = "sys", prune: bool = False
) -> Path:
    directory = tmp / tag
    directory.mkdir()
    lines = [
        "apiVersion: aios.dev/v1",
        "kind: Packages",
        f"metadata: {{name: {name}}}",
        "spec:",
        *(["  prune: true"] if prune else []),
        "  repositories:",
        REPO,
        "  packages:",
        *(f"    - {p}" for p in packages),
    ]
    (directory / "packages.yaml").write_text("\n".join(lines) + "\n")
    return directory


def aios(b: Box, *args: str) -> subprocess.CompletedProcess[str]:
    return b.aios(*args, "--sandbox", b.name)


def apply(b: Box, spec: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return aios(b, "apply", "-f", str(spec), "--yes", *extra)


def installed(b: Box) -> dict[str, tuple[str, bool]]:
    """name -> (version, held) of fully installed packages, as dpkg-query reports them."""
    out = b.sh(
        "dpkg-query",
        f"--admindir={b.root}/var/lib/dpkg",
        "-W",
        "-f",
        "${Package} ${Version} ${db:Status-Abbrev} ${db:Status-Want}\n",
    )
    rows = (line.split() for line in out.splitlines() if line.strip())
    return {n: (v, want == "hold") for n, v, abbrev, want in rows if abbrev[1] == "i"}


def dpkg(b: Box, *args: str) -> None:
    b.sh("dpkg", f"--root={b.root}", "--force-script-chrootless", *args)


def deb(b: Box, name: str, version: str) -> str:
    return str(b.record.dir / "www/apt" / f"{name}_{version}_all.deb")


def ready(b: Box, resource: str) -> dict[str, str]:
    status = json.loads(aios(b, "status", "-o", "json").stdout)
    found = next(r for r in status["resources"] if r["resource"] == resource)
    return {c["type"]: c for c in found["conditions"]}  # type: ignore[no-any-return]


CONVERGE = [
    "name: aios-demo-console",  # depends on aios-demo-base
    '{name: aios-demo-base, version: ">=1.1, <2"}',  # 1.1-1, not 2.0-1
    "{name: aios-demo-extra, hold: true}",
    "name: aios-demo-models",
]
CONVERGED = {
    "aios-demo-console": ("1.0-1", False),
    "aios-demo-base": ("1.1-1", False),
    "aios-demo-extra": ("1.1-1", True),
    "aios-demo-models": ("1.0-1", False),
}


def test_converge_then_noop_then_drift_repaired(pbox: Box, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "a", CONVERGE)
    plan = aios(pbox, "plan", "-f", str(spec))
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "+ repository:aios-demo" in plan.stdout
    assert "1.1-1, the newest available satisfying >=1.1, <2" in plan.stdout
    done = apply(pbox, spec)
    assert done.returncode == 0, done.stdout + done.stderr
    assert installed(pbox) == CONVERGED
    source = pbox.sh("cat", f"{pbox.root}/etc/apt/sources.list.d/aios-aios-demo.list")
    assert "deb [trusted=yes] http://127.0.0.1:18080/apt ./" in source
    assert ready(pbox, "Packages/sys")["Ready"]["status"] == "True"
    writes = pbox.write_calls()
    assert writes == 2  # pkg.repos, then one pkg.ensure

    again = aios(pbox, "plan", "-f", str(spec), "-v")
    assert again.returncode == 0, again.stdout
    assert "aios-demo-base 1.1-1 satisfies >=1.1, <2" in again.stdout
    assert apply(pbox, spec).returncode == 0
    assert pbox.write_calls() == writes, "a converged spec made write calls"

    dpkg(pbox, "-r", "aios-demo-models")  # drift: removed by hand
    dpkg(pbox, "-i", deb(pbox, "aios-demo-base", "2.0-1"))  # drift: upgraded out of range
    assert installed(pbox)["aios-demo-base"] == ("2.0-1", False)
    repaired = apply(pbox, spec)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert installed(pbox) == CONVERGED
    assert pbox.write_calls() == writes + 1  # one pkg.ensure


def test_one_transaction_with_dependency_downgrade_hold_and_removal(
    pbox: Box, tmp_path: Path
) -> None:
    assert apply(pbox, write_spec(tmp_path, "a", CONVERGE)).returncode == 0
    mixed = write_spec(
        tmp_path,
        "b",
        [
            "name: aios-demo-console",
            '{name: aios-demo-base, version: "1.1-1", hold: true}',  # hold
            '{name: aios-demo-extra, version: "1.0-1", hold: true}',  # downgrade of a held one
            "{name: aios-demo-models, state: absent}",  # removal
            '{name: aios-demo-agent, version: "~1.0"}',  # pulls aios-demo-tools 1.2-1
        ],
    )
    plan = json.loads(aios(pbox, "plan", "-f", str(mixed), "-o", "json").stdout)
    (domain,) = plan["domains"]
    assert [s["tool"] for s in domain["steps"]] == ["pkg.ensure"]
    assert domain["steps"][0]["input"] == {
        "install": [
            {"name": "aios-demo-agent", "version": "1.0-1"},
            {"name": "aios-demo-extra", "version": "1.0-1"},
        ],
        "remove": ["aios-demo-models"],
        "hold": ["aios-demo-base"],
    }
    before = pbox.write_calls()
    done = apply(pbox, mixed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert pbox.write_calls() == before + 1
    assert installed(pbox) == {
        "aios-demo-agent": ("1.0-1", False),
        "aios-demo-tools": ("1.2-1", False),
        "aios-demo-console": ("1.0-1", False),
        "aios-demo-base": ("1.1-1", True),
        "aios-demo-extra": ("1.0-1", True),
    }


def test_removing_a_needed_package_needs_force(box: Box, tmp_path: Path) -> None:  # noqa: F811
    assert (
        apply(
            box, write_spec(tmp_path, "a", ['{name: aios-demo-base, version: "1.1-1"}'])
        ).returncode
        == 0
    )
    dpkg(box, "-i", deb(box, "aios-demo-console", "1.0-1"))  # installed by hand, needs base
    before = installed(box)
    refused = apply(box, write_spec(tmp_path, "b", ["{name: aios-demo-base, state: absent}"]))
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "aios-demo-console" in refused.stdout + refused.stderr
    assert installed(box) == before
    forced = write_spec(tmp_path, "c", ["{name: aios-demo-base, state: absent, force: true}"])
    done = apply(box, forced)
    assert done.returncode == 0, done.stdout + done.stderr
    after = installed(box)
    assert "aios-demo-base" not in after and "aios-demo-console" not in after  # apt's cascade


def test_failing_postinst_rolls_the_transaction_back(pbox: Box, tmp_path: Path) -> None:
    assert apply(pbox, write_spec(tmp_path, "a", CONVERGE)).returncode == 0
    broken = write_spec(
        tmp_path,
        "b",
        [
            "name: aios-demo-console",
            '{name: aios-demo-base, version: "2.0-1"}',
            '{name: aios-demo-extra, version: "1.0-1", hold: true}',
            "name: aios-demo-models",
            "name: aios-demo-broken",  # its postinst exits 1
        ],
    )
    failed = apply(pbox, broken)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert installed(pbox) == CONVERGED, "previous versions were not restored"
    conditions = ready(pbox, "Packages/sys")
    assert conditions["Degraded"]["status"] == "True"
    message = conditions["Degraded"]["message"]
    assert "aios-demo-broken" in message and "rolled back" in message, message


def test_stale_saved_plan_is_refused(pbox: Box, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "a", CONVERGE)
    assert apply(pbox, spec).returncode == 0
    changed = write_spec(tmp_path, "b", [*CONVERGE[:3], "{name: aios-demo-models, hold: true}"])
    saved = tmp_path / "plan.json"
    assert aios(pbox, "plan", "-f", str(changed), "--out", str(saved)).returncode == 2
    dpkg(pbox, "-r", "aios-demo-console")  # drift after the plan was made
    writes = pbox.write_calls()
    stale = aios(pbox, "apply", "-f", str(changed), "--plan", str(saved))
    assert stale.returncode == 3, stale.stdout + stale.stderr
    assert pbox.write_calls() == writes


def test_prune_removes_only_what_aios_installed(pbox: Box, tmp_path: Path) -> None:
    first = write_spec(tmp_path, "a", CONVERGE)
    assert apply(pbox, first).returncode == 0
    dpkg(pbox, "-i", deb(pbox, "aios-demo-bulk00", "1.0-1"))  # by hand
    stray = f"{pbox.root}/etc/apt/sources.list.d/aios-stray.list"
    pbox.sh("sh", "-c", f"echo 'deb [trusted=yes] http://127.0.0.1:1/none ./' > {stray}")
    # prune: true, and the spec no longer declares extra or models
    narrow = write_spec(tmp_path, "b", CONVERGE[:2], prune=True)
    done = apply(pbox, narrow)
    assert done.returncode == 0, done.stdout + done.stderr
    after = installed(pbox)
    assert "aios-demo-models" not in after and "aios-demo-extra" not in after
    assert after["aios-demo-bulk00"] == ("1.0-1", False)  # installed by hand: kept
    assert after["aios-demo-console"] == ("1.0-1", False)
    listing = pbox.sh("ls", f"{pbox.root}/etc/apt/sources.list.d").split()
    assert listing == ["aios-aios-demo.list"]  # the stray managed file is gone

    # --prune of the whole resource: another resource takes over base and the repository
    other = write_spec(tmp_path, "c", ["name: aios-demo-base"], name="other")
    pruned = apply(pbox, other, "--prune")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    after = installed(pbox)
    assert "aios-demo-base" in after and "aios-demo-bulk00" in after
    assert "aios-demo-console" not in after  # Packages/sys created it
    assert pbox.sh("ls", f"{pbox.root}/etc/apt/sources.list.d").split() == ["aios-aios-demo.list"]


def test_export_round_trips(pbox: Box, tmp_path: Path) -> None:
    assert apply(pbox, write_spec(tmp_path, "a", CONVERGE)).returncode == 0
    exported = aios(pbox, "export", "Packages")
    assert exported.returncode == 0, exported.stderr
    path = tmp_path / "exported.yaml"
    path.write_text(exported.stdout)
    assert pbox.aios("validate", "-f", str(path)).returncode == 0
    assert "aios-demo-console" in exported.stdout and "1.1-1" in exported.stdout
    fresh = tmp_path / "fresh-state"
    plan = aios(pbox, "plan", "-f", str(path), "--state-dir", str(fresh))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    writes = pbox.write_calls()
    assert aios(pbox, "apply", "-f", str(path), "--yes", "--state-dir", str(fresh)).returncode == 0
    assert pbox.write_calls() == writes


def _projection(state: PackagesState, names: set[str]) -> dict[str, object]:
    return {
        "packages": {p.name: (p.version, p.hold) for p in state.packages if p.name in names},
        "repositories": [r.model_dump() for r in state.repositories],
    }


def test_simulation_matches_the_reobserved_state(
    pbox: Box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sandbox.BASE_ENV, str(pbox.base))
    specset = load_paths([write_spec(tmp_path, "a", CONVERGE)])
    names = {"aios-demo-console", "aios-demo-base", "aios-demo-extra", "aios-demo-models"}

    async def go() -> tuple[PackagesState, PackagesState]:
        target = resolve_target(None, pbox.name, None)
        async with open_engine(target, ("packages",)) as engine:
            planned = await engine.plan(engine.merge(specset))
            work = planned.works["packages"]
            assert isinstance(work.state, PackagesState) and len(work.steps) == 2
            predicted = CONTROLLER.simulate(work.state, work.steps)
            result = await engine.apply(planned, assume_yes=True)
            assert result.all_ready
            reader = ReadOnlyReader(engine.client, await engine.catalogue(), reason="test")
            return predicted, await CONTROLLER.observe(reader, work.desired)

    predicted, observed = asyncio.run(go())
    assert _projection(predicted, names) == _projection(observed, names)
    assert os.environ[sandbox.BASE_ENV] == str(pbox.base)
