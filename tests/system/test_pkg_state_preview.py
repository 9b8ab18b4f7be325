"""pkg.state's `repositories` input on a real scratch root: versions from a temporary index.

The demo repository (sandbox.debrepo, cached) is copied into the scratch
root at /srv/demo and reached with `file:/srv/demo` (a path under the root).
Before the repository is configured, `pkg.state` with the desired repository
list must already offer the demo packages' versions, and the scratch root must
be byte-for-byte unchanged afterwards (no source file, list, cache or dpkg
entry written). Once configured, the same call answers from the real index.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from registry.core.errors import ToolError
from sandbox import debrepo
from tests.system.targets import ScratchTarget, make_target


def tree(root: Path) -> dict[str, str]:
    """Every path under `root` with its content digest (or link target, or 'dir')."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + str(path.readlink())
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def target(tmp_path: Path) -> ScratchTarget:
    t = make_target(tmp_path)
    debrepo.install_into(t.root / "srv/demo")
    return t


def demo_repo(**extra: object) -> dict[str, object]:
    return {
        "name": "demo",
        "url": "file:/srv/demo",
        "suite": "./",
        "trusted": True,
        **extra,
    }


async def test_versions_of_a_repository_not_configured_yet(target: ScratchTarget) -> None:
    names = ["aios-demo-base", "aios-demo-agent", "nosuch"]
    plain = await target.call("pkg.state", {"names": names})
    assert plain.output["available"] == {n: [] for n in names}  # nothing configured
    before = tree(target.root)

    preview = await target.call("pkg.state", {"names": names, "repositories": [demo_repo()]})
    assert preview.output["available"] == {
        "aios-demo-base": ["2.0-1", "1.1-1", "1.0-1"],
        "aios-demo-agent": ["1.0-1", "0.9-1"],
        "nosuch": [],
    }
    assert preview.output["repositories"] == []  # still what is configured now
    assert tree(target.root) == before, "the preview changed the scratch root"
    assert not any(preview.ctx.work.iterdir()), "the temporary index was left behind"

    # Once pkg.repos configured it, the real index answers the same.
    await target.call("pkg.repos", {"repositories": [demo_repo()]})
    configured = await target.call("pkg.state", {"names": names, "repositories": [demo_repo()]})
    assert configured.output["available"] == preview.output["available"]
    assert [r["name"] for r in configured.output["repositories"]] == ["demo"]

    # Removing it in the desired list: the preview no longer offers its versions.
    gone = await target.call(
        "pkg.state", {"names": names, "repositories": [demo_repo(state="absent")]}
    )
    assert gone.output["available"] == {n: [] for n in names}
    assert [r["name"] for r in gone.output["repositories"]] == ["demo"]


async def test_all_packages_lists_the_whole_database(target: ScratchTarget) -> None:
    await target.call("pkg.repos", {"repositories": [demo_repo()]})
    await target.call("pkg.ensure", {"install": [{"name": "aios-demo-agent"}]})
    named = await target.call("pkg.state", {"names": ["aios-demo-base"]})
    assert [p["name"] for p in named.output["packages"]] == ["aios-demo-base"]
    every = await target.call("pkg.state", {"names": ["aios-demo-base"], "all_packages": True})
    assert [p["name"] for p in every.output["packages"]] == [
        "aios-demo-agent", "aios-demo-base", "aios-demo-tools",
    ]  # fmt: skip
    assert list(every.output["available"]) == ["aios-demo-base"]


async def test_an_unreachable_desired_repository_is_a_clear_error(
    target: ScratchTarget, tmp_path: Path
) -> None:
    missing = {"name": "gone", "url": f"file:{tmp_path}/no-such-repo", "trusted": True}
    with pytest.raises(ToolError, match="cannot index the desired repositories"):
        await target.call("pkg.state", {"names": ["x"], "repositories": [missing]})
