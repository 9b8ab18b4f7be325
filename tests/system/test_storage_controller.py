"""The storage controller end to end: real CLI, real sandbox, state read back independently.

Each test gets its own sandbox (`box`): the registry runs in a private mount
namespace over a scratch root, so loop devices, mounts and the fstab never
reach the host. The machine is read back with findmnt, blkid, stat and cat
inside the sandbox's namespaces (`box.sh`); drift is made there with raw
umount/chmod. Loop devices are global: the sandbox's `down` detaches those
backed by its files, and the session's host snapshot fails the run if one
is left behind.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from controllers.storage import CONTROLLER
from controllers.storage.options import missing
from controllers.storage.state import StorageState
from reconciler.engine.reader import ReadOnlyReader
from reconciler.sdk.controller import Desired
from specs.loader import load_paths
from specs.storage import Storage
from tests.system.cli_support import aios, apply, engine_on, ok, statuses, write_tree
from tests.system.engine_support import Box, box  # noqa: F401

IMAGE = "/srv/images/data.img"
SPEC = """\
apiVersion: aios.dev/v1
kind: Storage
metadata: {{name: data}}
spec:
  filesystems:
    - image: {{path: {image}, size: {size}}}
      type: {fstype}
      label: data{force}
  mounts:
    - target: /srv/data
      source: LABEL=data
      type: {fstype}
      options: [noatime, nodev]
    - target: /srv/scratch
      source: tmpfs
      type: tmpfs
      options: [size=8M, mode=0750, nosuid]
      persist: false
  directories:
    - {{path: /srv/data/www, mode: "0750", owner: {owner}, group: nogroup}}
  swapfiles:
    - {{path: /swapfile, size: 8M}}
"""


def spec(tmp: Path, tag: str, *, fstype: str = "ext4", force: bool = False,
         owner: str = "nobody", size: str = "32M") -> Path:  # fmt: skip
    text = SPEC.format(
        image=IMAGE, fstype=fstype, owner=owner, size=size,
        force="\n      force: true" if force else "",
    )  # fmt: skip
    return write_tree(tmp, tag, **{"storage.yaml": text})


def mounted(sb: Box, target: str) -> dict[str, Any] | None:
    out = sb.sh(
        "findmnt", "-J", "--mountpoint", f"{sb.root}{target}",
        "-o", "TARGET,SOURCE,FSTYPE,OPTIONS", check=False,
    )  # fmt: skip
    return json.loads(out)["filesystems"][0] if out.strip() else None


def blkid(sb: Box, path: str) -> dict[str, str]:
    out = sb.sh("blkid", "-p", "-o", "export", f"{sb.root}{path}", check=False)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def stat(sb: Box, path: str) -> str:
    return sb.sh("stat", "-c", "%a %u %g %F", f"{sb.root}{path}").strip()


def fstab(sb: Box) -> str:
    return sb.sh("cat", f"{sb.root}/etc/fstab", check=False)  # none: no lines


def assert_converged(sb: Box) -> None:
    data = mounted(sb, "/srv/data")
    assert data is not None and data["fstype"] == "ext4" and data["source"].startswith("/dev/loop")
    assert {"noatime", "nodev"} <= set(data["options"].split(","))
    assert blkid(sb, IMAGE) | {"TYPE": "ext4", "LABEL": "data"} == blkid(sb, IMAGE)
    scratch = mounted(sb, "/srv/scratch")
    assert scratch is not None and scratch["fstype"] == "tmpfs"
    assert {"size=8192k", "mode=750", "nosuid"} <= set(scratch["options"].split(","))
    assert "LABEL=data /srv/data ext4 noatime,nodev 0 0" in fstab(sb)
    assert "/srv/scratch" not in fstab(sb)  # persist: false
    assert stat(sb, "/srv/data/www") == "750 65534 65534 directory"
    assert blkid(sb, "/swapfile").get("TYPE") == "swap"
    assert stat(sb, "/swapfile").startswith("600 0 0 regular")


def test_converge_replan_and_zero_writes(box: Box, tmp_path: Path) -> None:  # noqa: F811
    tree = spec(tmp_path, "a")
    out = ok(apply(box, tree))
    assert "storage: " in out and "all resources Ready" in out
    assert_converged(box)
    assert statuses(box)["Storage/data"][:2] == (True, "Ready/Reconciled")
    writes = box.write_calls()
    assert writes > 0
    ok(aios(box, "plan", "-f", str(tree)))  # exit 0: nothing to do
    out = ok(apply(box, tree, "-v"))
    assert "already as declared" in out or "as declared" in out
    assert box.write_calls() == writes, "a converged machine takes zero write calls"
    assert statuses(box)["Storage/data"][:2] == (True, "Ready/UpToDate")


def test_drift_is_repaired(box: Box, tmp_path: Path) -> None:  # noqa: F811
    tree = spec(tmp_path, "a")
    ok(apply(box, tree))
    box.sh("umount", f"{box.root}/srv/scratch")
    box.sh("chmod", "0777", f"{box.root}/srv/data/www")
    box.sh("sh", "-c", f"sed -i 's/noatime,nodev/defaults/' {box.root}/etc/fstab")
    plan = aios(box, "plan", "-f", str(tree))
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "mount:/srv/scratch" in plan.stdout and "directory:/srv/data/www" in plan.stdout
    ok(apply(box, tree))
    assert_converged(box)
    box.sh("umount", f"{box.root}/srv/data")  # the whole filesystem, directory and all
    assert mounted(box, "/srv/data") is None
    ok(apply(box, tree))
    assert_converged(box)


def test_prune_removes_only_what_aios_created(box: Box, tmp_path: Path) -> None:  # noqa: F811
    ok(apply(box, spec(tmp_path, "a")))
    box.sh("mkdir", "-p", f"{box.root}/srv/byhand")
    box.sh("mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", f"{box.root}/srv/byhand")
    other = write_tree(tmp_path, "b", **{"other.yaml": (
        "apiVersion: aios.dev/v1\nkind: Storage\nmetadata: {name: other}\n"
        "spec:\n  directories: [{path: /srv/other}]\n"
    )})  # fmt: skip
    out = ok(apply(box, other, "--prune"))
    assert mounted(box, "/srv/data") is None and mounted(box, "/srv/scratch") is None
    assert "/srv/data" not in fstab(box)
    assert box.sh("test", "-e", f"{box.root}/swapfile", check=False) == ""
    assert "swapfile" not in json.dumps(blkid(box, "/swapfile"))
    assert blkid(box, IMAGE).get("LABEL") == "data", "an image is never deleted by pruning"
    assert mounted(box, "/srv/byhand") is not None, "a mount made by hand stays"
    assert stat(box, "/srv/other").endswith("directory")
    assert "Storage/data" not in statuses(box)
    assert "generation 2" in out
    box.sh("umount", f"{box.root}/srv/byhand")


def test_destructive_mkfs_needs_force(box: Box, tmp_path: Path) -> None:  # noqa: F811
    ok(apply(box, spec(tmp_path, "a", size="320M")))  # sparse; xfs needs 300M
    uuid = blkid(box, IMAGE)["UUID"]
    refused = apply(box, spec(tmp_path, "xfs", fstype="xfs", size="320M"))
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "destructive" in refused.stderr and "force: true" in refused.stderr
    assert blkid(box, IMAGE)["UUID"] == uuid, "nothing was formatted"
    assert mounted(box, "/srv/data") is not None
    ok(apply(box, spec(tmp_path, "xfs-forced", fstype="xfs", force=True, size="320M")))
    assert blkid(box, IMAGE) | {"TYPE": "xfs", "LABEL": "data"} == blkid(box, IMAGE)
    data = mounted(box, "/srv/data")
    assert data is not None and data["fstype"] == "xfs"
    assert stat(box, "/srv/data/www") == "750 65534 65534 directory"  # made on the new fs


def test_a_failing_step_is_rolled_back(box: Box, tmp_path: Path) -> None:  # noqa: F811
    tree = spec(tmp_path, "a", owner="nosuchuser")  # valid spec; the root has no such user
    result = apply(box, tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back" in result.stdout + result.stderr
    ready, reason, message = statuses(box)["Storage/data"]
    assert not ready and reason == "Degraded/StepFailed"
    assert "nosuchuser" in message and "rolled back storage.fstab" in message
    assert "storage.mount (" in message and "storage.mkfs (" in message
    assert mounted(box, "/srv/data") is None and mounted(box, "/srv/scratch") is None
    assert box.sh("ls", f"{box.root}/srv/images", check=False).strip() == ""  # image deleted
    assert "aios-reconciler" not in fstab(box)


def test_stale_saved_plan_is_refused(box: Box, tmp_path: Path) -> None:  # noqa: F811
    ok(apply(box, spec(tmp_path, "a")))
    changed = spec(tmp_path, "b", owner="root")
    saved = tmp_path / "plan.json"
    ok(aios(box, "plan", "-f", str(changed), "--out", str(saved)), 2)
    box.sh("umount", f"{box.root}/srv/scratch")  # drift after the plan was made
    stale = aios(box, "apply", "-f", str(changed), "--plan", str(saved))
    assert stale.returncode == 3, stale.stdout + stale.stderr
    assert stat(box, "/srv/data/www").split()[1] == "65534", "nothing of the stale plan ran"


def test_export_round_trips(box: Box, tmp_path: Path) -> None:  # noqa: F811
    ok(apply(box, spec(tmp_path, "a")))
    exported = ok(aios(box, "export", "Storage"))
    tree = write_tree(tmp_path, "export", **{"storage.yaml": exported})
    ok(box.aios("validate", "-f", str(tree)))
    fresh = tmp_path / "fresh-state"  # the export alone, as on another reconciler
    out = ok(aios(box, "plan", "-f", str(tree), "--state-dir", str(fresh)))
    assert "No changes" in out
    assert "persist: true" in exported and "LABEL=data" in exported and "/swapfile" in exported


def projection(state: StorageState, resources: tuple[Storage, ...]) -> dict[str, Any]:
    """What the specs declare, as the effect model can know it (options: in effect or not)."""
    scoped = CONTROLLER.scope(state, resources)
    wanted = {m.target: m for r in resources for m in r.spec.mounts}
    declared_dirs = {d.path: d for r in resources for d in r.spec.directories}
    return {
        "filesystems": [
            {k: f[k] for k in ("path", "exists", "type", "label")} for f in scoped["filesystems"]
        ],
        "mounts": [
            {
                "target": m["target"],
                "source": m["source"],
                "options in effect": not missing(wanted[m["target"]].options, m["options"]),
            }
            for m in scoped["mounts"]
        ],
        "fstab": scoped["fstab"],
        "dirs": [
            {"path": p["path"], "exists": p["exists"], "mode": p["mode"], "uid": p["uid"]}
            for p in scoped["paths"]
            if p["path"] in declared_dirs
        ],
        "swapfiles": [
            {k: s[k] for k in ("path", "size", "signature", "active")} for s in scoped["swapfiles"]
        ],
    }


def test_predicted_state_equals_the_re_observed_one(box: Box, tmp_path: Path) -> None:  # noqa: F811
    tree = spec(tmp_path, "a", owner='"65534"')  # a uid: the prediction knows it as a number
    specset = load_paths([tree])
    resources = tuple(r for r in specset.resources if isinstance(r, Storage))

    async def go() -> tuple[StorageState, StorageState]:
        async with engine_on(box, ("storage",)) as engine:
            planned = await engine.plan(engine.merge(specset))
            work = planned.works["storage"]
            before = work.state
            assert isinstance(before, StorageState) and work.steps and work.verdict.ok
            predicted = CONTROLLER.simulate(before, work.steps)
            result = await engine.apply(planned, assume_yes=True)
            assert result.all_ready, result.summaries
            reader = ReadOnlyReader(engine.client, await engine.catalogue(), reason="test")
            after = await CONTROLLER.observe(reader, Desired("storage", resources))
            return predicted, after

    predicted, after = asyncio.run(go())
    assert projection(predicted, resources) == projection(after, resources)
    assert projection(after, resources)["mounts"][0]["options in effect"]
