"""storage.* tools for real, inside a private mount namespace and a scratch root.

Nothing is ever mounted in the test process's (the host's) mount namespace: a
holder `unshare -m --propagation private sleep infinity` owns a private
namespace, every tool step runs inside it (`nsenter -t <pid> -m python -m
tests.system.tooldriver`), and state is read back there with findmnt/blkid.
Afterwards the holder is killed and any loop device backed by a file under
the test's tmp dir is detached (loop devices are global).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.helpers import run

REPO = Path(__file__).resolve().parents[2]


class Namespace:
    def __init__(self, pid: int, tmp: Path) -> None:
        self.pid = pid
        self.root = tmp / "root"
        self.state = tmp / "state"
        self.root.mkdir()
        self.state.mkdir()
        self.calls = 0

    def tool(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """Snapshot + run inside the namespace: {'output', 'error', 'snapshot', 'work'}."""
        self.calls += 1
        work = str(self.state / "backups" / f"exec{self.calls}")
        reply = self._driver({"tool": tool, "args": args, "mode": "run", "work": work})
        return reply | {"tool": tool, "work": work}

    def restore(self, call: dict[str, Any]) -> None:
        """What Rollback(execution_id) does: the tool's restore with the call's backup dir."""
        request = {"tool": call["tool"], "args": {}, "mode": "restore", "work": call["work"]}
        reply = self._driver(request | {"snapshot": call["snapshot"]})
        assert reply["error"] is None, reply["error"]

    def ok(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        reply = self.tool(tool, args)
        assert reply["error"] is None, reply["error"]
        return reply

    def _driver(self, request: dict[str, Any]) -> dict[str, Any]:
        request |= {
            "root": str(self.root),
            "state_dir": str(self.state),
            "host_mnt_ns": os.readlink("/proc/self/ns/mnt"),
        }
        out = run(
            ["nsenter", "-t", str(self.pid), "-m", sys.executable, "-m", "tests.system.tooldriver"],
            input=json.dumps(request),
        )
        reply: dict[str, Any] = json.loads(out)
        return reply

    def sh(self, *argv: str, check: bool = True) -> str:
        return run(["nsenter", "-t", str(self.pid), "-m", *argv], check=check)

    def mounted(self, target: str) -> dict[str, Any] | None:
        host = str(self.root) + target
        out = self.sh(
            "findmnt", "-J", "--mountpoint", host, "-o", "TARGET,SOURCE,FSTYPE,OPTIONS", check=False
        )
        return json.loads(out)["filesystems"][0] if out.strip() else None


def _detach_loops_under(directory: Path) -> None:
    out = run(["losetup", "-J"]) or "{}"
    for dev in json.loads(out).get("loopdevices", []):
        if str(dev.get("back-file") or "").startswith(str(directory)):
            subprocess.run(["losetup", "-d", dev["name"]], check=False)


def wait_for_own_namespace(pid: int) -> None:
    """Return once the holder runs `sleep`: unshare(1) has then left this process's
    mount namespace AND made it private (both happen before the exec). Entering it
    earlier would mount on the host, or on mounts still shared with the host."""
    host = os.readlink("/proc/self/ns/mnt")
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/comm").read_text().strip() != "sleep":
        assert time.monotonic() < deadline, "the holder never reached its private namespace"
        time.sleep(0.01)
    assert os.readlink(f"/proc/{pid}/ns/mnt") != host


@pytest.fixture
def ns(tmp_path: Path) -> Iterator[Namespace]:
    holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "infinity"])
    try:
        wait_for_own_namespace(holder.pid)
        yield Namespace(holder.pid, tmp_path)
    finally:
        holder.kill()
        holder.wait()
        _detach_loops_under(tmp_path)


def blkid(ns: Namespace, path: Path) -> dict[str, str]:
    out = ns.sh("blkid", "-p", "-o", "export", str(path), check=False)
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


# Runs the driver in a throwaway private mount namespace that it is told is "the
# host's": the guard must refuse, and should it ever regress, the tmpfs it would
# mount dies with that namespace instead of landing on the real host.
GUARD_PROBE = """
import json, os, subprocess, sys
request = json.loads(sys.argv[1]) | {"host_mnt_ns": os.readlink("/proc/self/ns/mnt")}
driver = [sys.executable, "-m", "tests.system.tooldriver"]
sys.exit(subprocess.run(driver, input=json.dumps(request), text=True).returncode)
"""


def test_the_driver_refuses_the_host_mount_namespace(tmp_path: Path) -> None:
    """The guard behind every test here: in the namespace it is told is the host's,
    the driver mounts nothing and creates nothing."""
    (tmp_path / "root").mkdir()
    request = {
        "tool": "storage.mount",
        "args": {"target": "/run/x", "source": "tmpfs", "type": "tmpfs"},
        "mode": "run",
        "root": str(tmp_path / "root"),
        "state_dir": str(tmp_path),
        "work": str(tmp_path / "work"),
    }
    driver = subprocess.run(
        ["unshare", "-m", "--propagation", "private",
         sys.executable, "-c", GUARD_PROBE, json.dumps(request)],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    assert driver.returncode == 1, driver.stderr
    assert "refusing to run in the host's mount namespace" in driver.stderr
    assert not (tmp_path / "work").exists()
    assert not (tmp_path / "root/run").exists()


def test_mkfs_refuses_a_formatted_image_without_force(ns: Namespace) -> None:
    made = ns.ok(
        "storage.mkfs",
        {"target": "/images/data.img", "image": {"size": "128M"}, "type": "ext4", "label": "data"},
    )
    image = ns.root / "images/data.img"
    assert made["output"]["image_created"] and made["output"]["label"] == "data"
    probed = blkid(ns, image)
    assert probed["TYPE"] == "ext4" and probed["LABEL"] == "data"
    assert probed["UUID"] == made["output"]["uuid"]

    refused = ns.tool("storage.mkfs", {"target": "/images/data.img", "type": "xfs"})
    assert refused["error"] == (
        f"/images/data.img already holds ext4 (label data, uuid {probed['UUID']}); "
        "refusing to format it without force"
    )
    assert blkid(ns, image)["UUID"] == probed["UUID"]  # untouched

    device = ns.tool("storage.mkfs", {"target": "/dev/vda", "type": "ext4", "force": True})
    assert device["error"].startswith("refusing device /dev/vda: under a scratch root")
    probed_host = ns.ok("storage.state", {"probe": ["/dev/vda"]})["output"]["filesystems"]
    assert probed_host == [{"path": "/dev/vda", "type": None, "label": None, "uuid": None}]

    forced = ns.ok(
        "storage.mkfs",
        {"target": "/images/data.img", "type": "btrfs", "label": "new", "force": True},
    )
    assert forced["output"]["previous"]["type"] == "ext4"
    assert blkid(ns, image)["TYPE"] == "btrfs"
    ns.restore(forced)  # the previous image comes back
    assert blkid(ns, image)["UUID"] == probed["UUID"]
    ns.restore(made)  # the image did not exist
    assert not image.exists()


def test_mount_fstab_umount_and_rollbacks(ns: Namespace) -> None:
    ns.ok(
        "storage.mkfs",
        {"target": "/images/data.img", "image": {"size": "32M"}, "type": "ext4", "label": "data"},
    )
    (ns.root / "etc").mkdir()
    host_fstab = "UUID=1234 / ext4 errors=remount-ro 0 1\n"
    (ns.root / "etc/fstab").write_text(host_fstab)

    mount = ns.ok(
        "storage.mount",
        {
            "target": "/srv/data",
            "source": "LABEL=data",
            "type": "ext4",
            "options": ["noatime"],
            "probe": ["/images/data.img"],
        },
    )
    assert mount["output"]["source"] == "/images/data.img" and mount["output"]["changed"]
    seen = ns.mounted("/srv/data")
    assert seen is not None and seen["fstype"] == "ext4" and "noatime" in seen["options"].split(",")
    assert (
        ns.ok(
            "storage.mount", {"target": "/srv/data", "source": "/images/data.img", "type": "ext4"}
        )["output"]["changed"]
        is False
    )
    clash = ns.tool("storage.mount", {"target": "/srv/data", "source": "tmpfs", "type": "tmpfs"})
    assert "already has /images/data.img mounted" in clash["error"]
    assert ns.mounted("/srv/data") is not None and not (
        Path("/proc/self/mounts").read_text().count(str(ns.root))
    )

    entry = {
        "source": "LABEL=data",
        "target": "/srv/data",
        "type": "ext4",
        "options": ["noatime"],
        "pass": 2,
    }
    fstab = ns.ok("storage.fstab", {"entries": [entry]})
    text = (ns.root / "etc/fstab").read_text()
    assert text.startswith(host_fstab) and "LABEL=data /srv/data ext4 noatime 0 2\n" in text
    tab = json.loads(
        ns.sh("findmnt", "-J", "--tab-file", str(ns.root / "etc/fstab"), "-o", "SOURCE,TARGET")
    )
    assert {"source": "LABEL=data", "target": "/srv/data"} in tab["filesystems"]

    state = ns.ok("storage.state", {"paths": ["/srv/data"], "probe": ["/images/data.img"]})[
        "output"
    ]
    assert state["fstab"]["managed"][0]["source"] == "LABEL=data"
    assert state["fstab"]["other"][0]["target"] == "/"
    assert [m["target"] for m in state["mounts"]] == ["/srv/data"]
    assert state["filesystems"][0]["label"] == "data"
    assert state["paths"]["/srv/data"]["type"] == "dir"

    ns.restore(fstab)  # fstab rollback: previous content
    assert (ns.root / "etc/fstab").read_text() == host_fstab

    umount = ns.ok("storage.umount", {"target": "/srv/data"})
    assert umount["output"]["unmounted"] and umount["output"]["detached"][0].startswith("/dev/loop")
    assert ns.mounted("/srv/data") is None
    assert str(ns.root) not in run(["losetup", "-J"])
    ns.restore(umount)  # mounted again
    assert ns.mounted("/srv/data") is not None
    ns.restore(mount)  # and the mount itself undone
    assert ns.mounted("/srv/data") is None
    assert ns.ok("storage.umount", {"target": "/srv/data"})["output"]["unmounted"] is False


def test_tmpfs_bind_dir_and_swapfile(ns: Namespace) -> None:
    (ns.root / "opt/src").mkdir(parents=True)
    (ns.root / "etc").mkdir()
    (ns.root / "etc/passwd").write_text(
        "root:x:0:0::/root:/bin/sh\naios:x:4242:4242::/:/bin/false\n"
    )
    (ns.root / "etc/group").write_text("root:x:0:\naios:x:4243:\n")
    tmpfs = ns.ok(
        "storage.mount",
        {"target": "/run/cache", "source": "tmpfs", "type": "tmpfs", "options": ["size=1M"]},
    )
    assert (
        ns.ok(
            "storage.mount",
            {"target": "/run/cache", "source": "tmpfs", "type": "tmpfs", "options": ["size=1M"]},
        )["output"]["changed"]
        is False
    )
    bind = ns.ok(
        "storage.mount",
        {"target": "/mnt/ro", "source": "/opt/src", "type": "bind", "options": ["ro"]},
    )
    seen = ns.mounted("/mnt/ro")
    assert seen is not None and "ro" in seen["options"].split(",")
    ns.restore(bind)
    ns.restore(tmpfs)
    assert ns.mounted("/mnt/ro") is None and ns.mounted("/run/cache") is None

    made = ns.ok(
        "storage.dir",
        {"path": "/srv/models/cache", "mode": "0750", "owner": "aios", "group": "aios"},
    )
    st = (ns.root / "srv/models/cache").stat()
    assert (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == ("0o750", 4242, 4243)
    assert (
        ns.ok("storage.dir", {"path": "/srv/models/cache", "mode": "0750"})["output"]["changed"]
        is False
    )
    (ns.root / "srv/models/cache/f").write_text("x")
    refused = ns.tool("storage.dir", {"path": "/srv/models/cache", "state": "absent"})
    assert refused["error"] == "/srv/models/cache is not empty; removing it needs force"
    removed = ns.ok("storage.dir", {"path": "/srv/models/cache", "state": "absent", "force": True})
    assert not (ns.root / "srv/models/cache").exists()
    ns.restore(removed)
    assert (ns.root / "srv/models/cache/f").read_text() == "x"
    (ns.root / "srv/models/cache/f").unlink()
    ns.restore(made)
    assert not (ns.root / "srv").exists()

    swap = ns.ok("storage.swapfile", {"path": "/swapfile", "size": "1M", "priority": 5})
    assert swap["output"] == {
        "path": "/swapfile", "state": "present", "changed": True, "size": 1 << 20,
        "active": True, "simulated": True,
    }  # fmt: skip
    assert oct((ns.root / "swapfile").stat().st_mode & 0o777) == "0o600"
    assert blkid(ns, ns.root / "swapfile")["TYPE"] == "swap"
    assert str(ns.root) not in Path("/proc/swaps").read_text()  # the double never swapped on
    listed = ns.ok("storage.state", {})["output"]["swapfiles"]
    assert listed == [
        {
            "path": "/swapfile",
            "size": 1 << 20,
            "signature": True,
            "active": True,
            "simulated": True,
            "priority": 5,
        }
    ]
    ns.restore(swap)
    assert not (ns.root / "swapfile").exists()
    assert ns.ok("storage.state", {})["output"]["swapfiles"] == []
