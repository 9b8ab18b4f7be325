"""The storage controller, table-driven: plan and observe fixtures, plus its pure helpers.

Plan cases (tests/controllers/storage/plan/*.yaml) run through the shared
harness: diff -> changes and no-op reasons, plan -> steps, the verifier
accepts the plan (or refuses a destructive one), and dropping any step or
changing any scalar of any step input makes it reject the plan. Observe
cases replay storage.state outputs recorded with the real tool in a
throwaway sandbox (tests/controllers/record_sandbox.py). The mount option
rules, the effect model's refusals, destructive/forced and export are tested
here directly.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from contract.vocab.fsoptions import normal_mount_option as normal
from controllers.storage import CONTROLLER
from controllers.storage.options import for_fresh_mount, kernel_after, missing
from controllers.storage.state import FsState, FstabEntry, MountState, PathState, StorageState
from reconciler.sdk.controller import Desired
from reconciler.sdk.errors import PlanRejected
from reconciler.sdk.plan import Step
from specs.loader import load_documents
from tests.controllers.harness import cases, load_case, run_observe_case, run_plan_case

HERE = Path(__file__).parent / "storage"


@pytest.mark.parametrize("path", cases(HERE / "plan"), ids=lambda p: p.stem)
def test_plan_case(path: Path) -> None:
    run_plan_case(CONTROLLER, path)


@pytest.mark.parametrize("path", cases(HERE / "observe"), ids=lambda p: p.stem)
async def test_observe_case(path: Path) -> None:
    await run_observe_case(CONTROLLER, path)


def dump_documents(documents: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False  # as `aios export` prints them
    yaml.dump_all(documents, out)
    return out.getvalue()


# --- mount options ------------------------------------------------------------


def test_option_normalisation_and_subset() -> None:
    live = ("rw", "nosuid", "relatime", "size=65536k", "mode=750")
    assert missing(["size=64M", "mode=0750", "nosuid", "defaults", "loop", "nofail"], live) == ()
    assert missing(["exec", "dev"], live) == ()  # implied while noexec/nodev are absent
    assert missing(["suid", "noatime", "ro", "x-systemd.automount"], live) == (
        "suid",
        "noatime",
        "ro",
    )
    assert normal("nr_inodes=2k") == "nr_inodes=2048" and normal("mode=0000") == "mode=0"
    assert normal("size=50%") == "size=50%"  # not a byte count: compared literally
    assert for_fresh_mount(["defaults", "loop", "exec", "noatime", "size=1M", "_netdev"]) == (
        "noatime",
        "size=1M",
    )


def test_kernel_after_mount_and_remount() -> None:
    assert kernel_after((), ["noatime", "size=1M"], fresh=True) == ("rw", "noatime", "size=1M")
    assert kernel_after((), ["ro"], fresh=True) == ("ro",)
    live = ("rw", "noexec", "size=1024k")
    assert kernel_after(live, ["exec", "ro", "size=2M"], fresh=False) == ("ro", "size=2M")


# --- effect model ---------------------------------------------------------------

STATE = StorageState(
    mounts=(
        MountState(target="/srv/a", source="/img/a.img", device="/dev/loop0", fstype="ext4"),
        MountState(target="/srv/a/b", source="tmpfs", device="tmpfs", fstype="tmpfs"),
    ),
    filesystems=(
        FsState(path="/img/a.img", exists=True, type="ext4", label="a"),
        FsState(path="/img/new.img", exists=False),
    ),
    fstab=(FstabEntry(source="/img/a.img", target="/srv/a", type="ext4"),),
    paths=(
        PathState(path="/srv/full", exists=True, type="dir", empty=False),
        PathState(path="/srv/file", exists=True, type="file", size=3),
    ),
)


def _step(tool: str, satisfies: tuple[str, ...] = (), **inp: Any) -> Step:
    return Step(tool=tool, input=inp, reason="test", satisfies=satisfies)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (_step("storage.mkfs", target="/img/a.img", type="xfs", force=True), "is mounted at"),
        (_step("storage.mkfs", target="/img/new.img", type="xfs"), "no image.size"),
        (_step("storage.mkfs", target="/img/unseen.img", type="xfs"), "did not probe"),
        (_step("storage.mount", target="/srv/a", source="tmpfs", type="tmpfs"), "already has"),
        (
            _step("storage.mount", target="/x", source="LABEL=a", probe=["/img/zz.img"]),
            "not observed",
        ),
        (
            _step("storage.mount", target="/x", source="LABEL=zz", probe=["/img/a.img"]),
            "no filesystem",
        ),
        (_step("storage.mount", target="/x", source="/img/new.img"), "does not exist"),
        (_step("storage.umount", target="/srv/a"), "mounted below"),
        (_step("storage.fstab", entries=[]), "does not say it satisfies"),
        (_step("storage.dir", path="/srv/full", state="absent"), "needs force"),
        (_step("storage.dir", path="/srv/file"), "not a directory"),
        (_step("storage.swapfile", path="/srv/file", size="1M"), "not a swap file"),
        (_step("fs.delete", path="/srv/file"), "only observed images"),
        (_step("fs.delete", path="/img/a.img"), "is mounted at"),
        (_step("storage.umount", target="/srv/a/b", force=True), "cannot model"),
        (_step("net.link_set", name="x"), "does not know"),
    ],
)
def test_the_effect_model_refuses_what_the_tools_refuse(step: Step, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CONTROLLER.simulate(STATE, [step])


def test_fstab_step_may_drop_the_entries_it_names() -> None:
    step = _step("storage.fstab", ("Storage/x|fstab:/srv/a",), entries=[])
    assert CONTROLLER.simulate(STATE, [step]).fstab == ()


def test_mounting_hides_what_was_below_until_a_step_makes_it() -> None:
    state = STATE.model_copy(
        update={"paths": (PathState(path="/srv/c/d", exists=True, type="dir", mode="0700"),)}
    )
    after = CONTROLLER.simulate(state, [_step("storage.mount", target="/srv/c", source="tmpfs")])
    assert after.path_info("/srv/c/d") == PathState(path="/srv/c/d", exists=False)
    made = CONTROLLER.simulate(after, [_step("storage.dir", path="/srv/c/d", owner="0")])
    assert made.path_info("/srv/c/d") == PathState(
        path="/srv/c/d", exists=True, type="dir", uid=0, empty=True
    )


# --- planner refusals, destructive and forced ------------------------------------


def _desired(text: str) -> Desired:
    specset = load_documents([("case.yaml", text.encode())])
    return Desired("storage", tuple(specset.resources))


SPEC = """
apiVersion: aios.dev/v1
kind: Storage
metadata: {{name: s}}
spec:
  {body}
"""


@pytest.mark.parametrize(
    ("body", "state", "message"),
    [
        (
            "directories: [{path: /srv/file}]",
            STATE,
            "exists and is a file",
        ),
        (
            "filesystems: [{image: {path: /img/x.img, size: 1M}, label: a},"
            " {image: {path: /img/y.img, size: 1M}, label: a}]\n"
            "  mounts: [{target: /srv/x, source: LABEL=a}]",
            StorageState(),
            "exactly one declared filesystem",
        ),
        (
            "mounts: [{target: /srv/a, source: tmpfs, type: tmpfs}]",
            STATE,
            "no spec declares this mount",
        ),
    ],
)
def test_the_planner_refuses_what_it_cannot_do_safely(
    body: str, state: StorageState, message: str
) -> None:
    desired = _desired(SPEC.format(body=body))
    with pytest.raises(PlanRejected, match=message):
        CONTROLLER.plan(CONTROLLER.diff(desired, state), desired, state)


def test_destructive_and_forced_do_not_trust_the_planner_flags() -> None:
    quiet = _step("storage.mkfs", target="/img/a.img", type="xfs", force=True)
    assert quiet.destructive is False
    assert "holds ext4" in (CONTROLLER.destructive(STATE, quiet) or "")
    assert (
        CONTROLLER.destructive(STATE, _step("storage.mkfs", target="/img/new.img", type="xfs"))
        is None
    )
    assert "not observed" in (
        CONTROLLER.destructive(STATE, _step("storage.mkfs", target="/q", type="xfs")) or ""
    )
    assert CONTROLLER.destructive(STATE, _step("fs.delete", path="/img/a.img"))
    assert CONTROLLER.destructive(
        STATE, _step("storage.dir", path="/srv/full", state="absent", force=True)
    )
    assert CONTROLLER.destructive(STATE, _step("storage.dir", path="/srv/full")) is None
    forced = _desired(
        SPEC.format(body="filesystems: [{image: {path: /img/a.img, size: 1M}, force: true}]")
    )
    unforced = _desired(SPEC.format(body="filesystems: [{image: {path: /img/a.img, size: 1M}}]"))
    assert CONTROLLER.forced(forced, quiet) and not CONTROLLER.forced(unforced, quiet)
    delete = _step("fs.delete", path="/img/a.img")
    assert not CONTROLLER.forced(forced, delete)  # force on a present filesystem: not a deletion


# --- export ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["export-two-reads", "converged-loop-mount", "tmpfs-bind-swap-owned"]
)
def test_export_validates_and_replans_to_nothing(name: str) -> None:
    state = StorageState.model_validate(load_case(HERE / "observe" / f"{name}.yaml")["expect"])
    documents = CONTROLLER.export(state)
    assert documents, "something is mounted: the export declares it"
    specset = load_documents([("export.yaml", dump_documents(documents).encode())])
    diff = CONTROLLER.diff(Desired("storage", tuple(specset.resources)), state)
    assert diff.changes == ()
    assert len(diff.noops) >= len(state.mounts)


def test_export_leaves_out_system_mounts_and_trusts_an_entry_only_when_in_effect() -> None:
    state = StorageState(
        mounts=(
            MountState(target="/", source="/dev/vda", device="/dev/vda", fstype="ext4"),
            MountState(target="/proc", source="proc", device="proc", fstype="proc"),
            MountState(
                target="/srv/x",
                source="tmpfs",
                device="tmpfs",
                fstype="tmpfs",
                options=("rw", "relatime", "size=1024k"),
            ),
        ),
        fstab=(FstabEntry(source="tmpfs", target="/srv/x", type="tmpfs", options=("noexec",)),),
    )
    (document,) = CONTROLLER.export(state)
    assert document["spec"] == {
        "mounts": [
            {
                "target": "/srv/x",
                "source": "tmpfs",
                "type": "tmpfs",
                "persist": False,
                "options": ["size=1024k"],
            }
        ]
    }
    assert CONTROLLER.export(StorageState()) == []


def test_scope_is_what_the_resources_declare() -> None:
    desired = _desired(SPEC.format(body="mounts: [{target: /srv/a, source: /img/a.img}]"))
    scoped = CONTROLLER.scope(STATE, desired.resources)
    assert [m["target"] for m in scoped["mounts"]] == ["/srv/a"]
    assert [e["target"] for e in scoped["fstab"]] == ["/srv/a"]
    assert scoped["filesystems"] == scoped["paths"] == scoped["swapfiles"] == []
