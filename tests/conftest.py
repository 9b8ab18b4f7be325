"""Settings and fixtures for the whole test suite.

`aios` runs started by tests never hand their commands to a warm helper
(reconciler.cli.launch) unless a test asks for it explicitly: a helper
started by one test must not serve another test's code or outlive the run.

System tests run as root against real kernel objects. Every test under
tests/system and tests/attack (but the attack corpus's spec-side runner) is
marked `system` and skipped (with a reason) when not root. A session-wide
fixture snapshots the host's links, addresses, routes, rules, nft ruleset,
mount table, loop devices, network namespaces, dpkg status, the host files an
escape from a scratch root would touch first (sha256, mode, owner of
/etc/passwd, shadow, group, resolv.conf, fstab, hosts) and the entries of
/etc/apt/sources.list.d and /root (names, modes) before the first system test
and fails the run if any of them differ afterwards — so a test that touches
the host, or leaks a namespace or a loop device, fails CI even when its own
assertions passed.

Fixtures: `netns` (a fresh network namespace, deleted afterwards). Plain
helpers (run, in_netns) live in tests/system/helpers.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.helpers import run

os.environ["AIOS_WARM"] = "0"

TESTS = Path(__file__).parent
# Directories whose tests act on real kernel objects and scratch roots (the attack
# corpus's spec-side runner only runs `aios validate`, so it needs no root).
ROOTED = (TESTS / "system", TESTS / "attack")
NOT_ROOTED = (TESTS / "attack" / "test_spec_attacks.py",)


def _rooted(item: pytest.Item) -> bool:
    path = Path(str(item.fspath))
    return path not in NOT_ROOTED and any(d in path.parents for d in ROOTED)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="system tests need root (namespaces, nft, loop devices)")
    for item in items:
        if _rooted(item):
            item.add_marker(pytest.mark.system)
            if os.geteuid() != 0:
                item.add_marker(skip)


# Host files a path escaping the scratch root would reach first (issue #8, escape 2).
_WATCHED_FILES = ("passwd", "shadow", "group", "resolv.conf", "fstab", "hosts")
_WATCHED_DIRS = (Path("/etc/apt/sources.list.d"), Path("/root"))


def _file_state(path: Path) -> str:
    """lstat (type, mode, owner), link text and content digest of one host file."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return "missing"
    text = os.readlink(path) if path.is_symlink() else ""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        digest = f"unreadable: {exc.strerror}"
    return f"{st.st_mode:o} {st.st_uid}:{st.st_gid} {text!r} {digest}"


def _listing(directory: Path) -> str:
    """The entries of a directory with their modes (lstat), not their content."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return "missing"
    return "\n".join(f"{e.name} {e.stat(follow_symlinks=False).st_mode:o}" for e in entries)


def _host_state() -> dict[str, str]:
    """Everything a system test must leave exactly as it found it."""
    dpkg_status = Path("/var/lib/dpkg/status")
    state = {
        "links": run(["ip", "-j", "link", "show"]),
        "addresses": run(["ip", "-j", "addr", "show"]),
        "routes4": run(["ip", "-j", "route", "show", "table", "all"]),
        "routes6": run(["ip", "-j", "-6", "route", "show", "table", "all"]),
        "rules": run(["ip", "-j", "rule", "show"]),
        "netns": run(["ip", "netns", "list"]),
        "mounts": Path("/proc/self/mountinfo").read_text(),
        "loops": run(["losetup", "-J"]) or "{}",
        "dpkg": hashlib.sha256(dpkg_status.read_bytes()).hexdigest()
        if dpkg_status.exists()
        else "",
    }
    nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False)
    state["nft"] = nft.stdout if nft.returncode == 0 else f"nft unavailable: {nft.stderr}"
    # Interface statistics change all the time; compare links without them.
    links = json.loads(state["links"])
    for link in links:
        link.pop("stats", None)
        link.pop("stats64", None)
    state["links"] = json.dumps(links, sort_keys=True)
    for name in _WATCHED_FILES:
        state[f"/etc/{name}"] = _file_state(Path("/etc") / name)
    for directory in _WATCHED_DIRS:
        state[f"{directory}/"] = _listing(directory)
    return state


@pytest.fixture(scope="session", autouse=True)
def host_snapshot(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the run if the system tests changed anything on the host."""
    system_items = [i for i in request.session.items if i.get_closest_marker("system")]
    if os.geteuid() != 0 or not system_items:
        yield
        return
    # The first `ip netns add` on a machine bind-mounts /run/netns onto itself;
    # do it now so that one-time change is not mistaken for a leak.
    prime = f"aiosprime{uuid.uuid4().hex[:6]}"
    run(["ip", "netns", "add", prime])
    run(["ip", "netns", "del", prime])
    before = _host_state()
    yield
    after = _host_state()
    changed = sorted(k for k in before if before[k] != after[k])
    if changed:
        details = "\n".join(
            f"--- {k} before:\n{before[k]}\n+++ {k} after:\n{after[k]}" for k in changed
        )
        pytest.fail(f"system tests changed the host: {', '.join(changed)}\n{details[:20000]}")


@pytest.fixture
def netns() -> Iterator[str]:
    """A fresh network namespace with lo up; deleted afterwards, whatever happens."""
    name = f"aiostest-{uuid.uuid4().hex[:8]}"
    run(["ip", "netns", "add", name])
    try:
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
