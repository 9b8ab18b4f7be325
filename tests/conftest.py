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

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.helpers import host_state, run

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
    before = host_state()
    yield
    after = host_state()
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
