"""Pure storage parts: fstab managed block, blkid/findmnt/losetup parsing, mount argv."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.core.errors import ToolError
from registry.core.managedblock import Markers, replace_block
from registry.core.tool import Runner, ToolContext
from registry.drivers.storage import blockdev, fstab, mounting

HOST_FSTAB = """# /etc/fstab: static file system information.
UUID=1234 / ext4 errors=remount-ro 0 1
/swapfile none swap sw 0 0
"""
ENTRY = {"source": "LABEL=data", "target": "/srv/my data", "type": "ext4", "options": ["noatime"]}


def test_block_is_appended_replaced_and_removed_leaving_other_lines() -> None:
    once = fstab.with_block(HOST_FSTAB, [ENTRY])
    assert once.startswith(HOST_FSTAB)
    assert once.endswith(
        "# BEGIN aios-reconciler managed block\n"
        "LABEL=data /srv/my\\040data ext4 noatime 0 0\n"
        "# END aios-reconciler managed block\n"
    )
    assert fstab.with_block(once, [ENTRY]) == once  # idempotent
    moved = once + "tmpfs /tmp tmpfs defaults 0 0\n"
    twice = fstab.with_block(moved, [{**ENTRY, "options": [], "pass": 2}])
    assert "LABEL=data /srv/my\\040data ext4 defaults 0 2\n" in twice
    assert twice.endswith("tmpfs /tmp tmpfs defaults 0 0\n")  # lines after the block stay
    assert fstab.with_block(twice, []) == HOST_FSTAB + "tmpfs /tmp tmpfs defaults 0 0\n"


def test_parse_splits_managed_and_other() -> None:
    parsed = fstab.parse(fstab.with_block(HOST_FSTAB, [ENTRY]))
    assert parsed["managed"] == [{**ENTRY, "dump": 0, "pass": 0}]
    assert [e["target"] for e in parsed["other"]] == ["/", "none"]
    assert parsed["other"][1]["options"] == ["sw"]
    assert fstab.parse_line("tmpfs /t tmpfs") == {
        "source": "tmpfs", "target": "/t", "type": "tmpfs", "options": [], "dump": 0, "pass": 0,
    }  # fmt: skip
    assert fstab.parse_line("# comment") is None


def test_unterminated_block_is_refused() -> None:
    with pytest.raises(ValueError, match="no matching"):
        fstab.with_block("# BEGIN aios-reconciler managed block\nx y z\n", [])
    markers = Markers("#B", "#E")
    assert replace_block("a\nb", markers, ["x"]) == "a\nb\n#B\nx\n#E\n"


def test_blkid_findmnt_losetup_parsers() -> None:
    blkid = "DEVNAME=img\nLABEL=data\nUUID=9f13\nBLOCK_SIZE=1024\nTYPE=ext4\nUSAGE=filesystem\n"
    assert blockdev.parse_blkid_export(blkid)["TYPE"] == "ext4"
    findmnt = """{"filesystems": [
      {"target": "/r/srv", "source": "/dev/loop0", "fstype": "ext4", "options": "rw,noatime",
       "children": [{"target": "/r/srv/b", "source": "/dev/vda[/r/opt]", "fstype": "ext4",
                     "options": "ro,relatime"}]}]}"""
    mounts = blockdev.parse_findmnt(findmnt)
    assert [m["target"] for m in mounts] == ["/r/srv", "/r/srv/b"]
    assert mounts[0]["options"] == ["rw", "noatime"]
    assert blockdev.parse_findmnt("") == []
    losetup = '{"loopdevices": [{"name": "/dev/loop0", "back-file": "/r/images/a.img"}]}'
    assert blockdev.parse_losetup(losetup) == {"/dev/loop0": "/r/images/a.img"}
    assert blockdev.bind_path("/dev/vda[/r/opt]") == "/r/opt"
    assert blockdev.bind_path("/dev/loop0") is None


def ctx(root: Path) -> ToolContext:
    return ToolContext(runner=Runner(), root=root, state_dir=root, work=root, execution_id="t")


def test_describe_maps_loop_and_bind_sources_to_spec_paths(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    loops = {"/dev/loop3": f"{tmp_path}/images/a.img"}
    loop = {"target": f"{tmp_path}/srv", "source": "/dev/loop3", "fstype": "ext4", "options": []}
    assert mounting.describe(c, loop, loops)["source"] == "/images/a.img"
    assert mounting.describe(c, loop, loops)["target"] == "/srv"
    bind = {**loop, "source": f"/dev/vda[{tmp_path}/opt]"}
    assert mounting.describe(c, bind, {})["source"] == "/opt"
    overlay = {
        "target": f"{tmp_path}/srv",
        "source": "overlay",
        "fstype": "overlay",
        "options": [f"lowerdir={tmp_path}/a:/elsewhere", f"upperdir={tmp_path}/u", "index=off"],
    }
    described = mounting.describe(c, overlay, {})
    assert described["options"] == ["lowerdir=/a:/elsewhere", "upperdir=/u", "index=off"]
    assert mounting.host_options(c, "overlay", described["options"]) == [
        f"lowerdir={tmp_path}/a:{tmp_path}/elsewhere",  # outside the root: mapped, never left
        f"upperdir={tmp_path}/u",
        "index=off",
    ]


def test_mount_commands(tmp_path: Path) -> None:
    c = ctx(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "images/a.img").write_bytes(b"")
    target = tmp_path / "srv"
    assert mounting.mount_commands(
        c, source="/images/a.img", fstype="ext4", options=["noatime"], host_target=target
    ) == [["mount", "-t", "ext4", "-o", "loop,noatime", f"{tmp_path}/images/a.img", str(target)]]
    assert mounting.mount_commands(
        c, source="tmpfs", fstype="tmpfs", options=["size=1M"], host_target=target
    ) == [["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(target)]]
    assert mounting.mount_commands(
        c, source="/opt", fstype="bind", options=["ro"], host_target=target
    ) == [
        ["mount", "--bind", f"{tmp_path}/opt", str(target)],
        ["mount", "-o", "remount,bind,ro", str(target)],
    ]
    overlay = mounting.mount_commands(
        c,
        source="overlay",
        fstype="overlay",
        options=["lowerdir=/a:/b", "upperdir=/u", "workdir=/w"],
        host_target=target,
    )
    assert (
        overlay[0][-2]
        == f"lowerdir={tmp_path}/a:{tmp_path}/b,upperdir={tmp_path}/u,workdir={tmp_path}/w"
    )
    assert mounting.mount_commands(
        c, source="/images/a.img", fstype="ext4", options=["loop", "ro"], host_target=target
    ) == [["mount", "-t", "ext4", "-o", "loop,ro", f"{tmp_path}/images/a.img", str(target)]]
    with pytest.raises(ToolError, match="refusing device /dev/sda"):
        mounting.mount_commands(c, source="/dev/sda", fstype="ext4", options=[], host_target=target)
    with pytest.raises(ToolError, match="not an image file"):
        mounting.mount_commands(
            c, source="/nope.img", fstype="auto", options=[], host_target=target
        )


def test_options_are_checked_against_the_kind_the_mount_really_is() -> None:
    assert mounting.option_kind("tmpfs", "auto") == "tmpfs"
    assert mounting.option_kind("overlay", "auto") == "overlay"
    assert mounting.option_kind("/a.img", "xfs") == "xfs"
    assert mounting.check_options("tmpfs", ["size=1M", "mode=0750"]) == ["size=1M", "mode=0750"]
    with pytest.raises(ToolError) as refused:
        mounting.check_options("overlay", ["lowerdir=/a", "upperdir=/u,workdir=/HOST"])
    assert str(refused.value) == (
        "options[1]: mount option 'upperdir=/u,workdir=/HOST' has a comma: list every option "
        "as its own item (a comma would add options that are never checked)"
    )


def test_option_comparison_normalises_sizes() -> None:
    assert mounting.wanted_options_present(["size=1M", "defaults"], ["rw", "size=1024k"])
    assert mounting.wanted_options_present(["mode=0750", "nosuid"], ["nosuid", "mode=750"])
    assert not mounting.wanted_options_present(["ro"], ["rw", "relatime"])
