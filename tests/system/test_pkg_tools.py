"""pkg.* tools on a real scratch root with a local repository of the aios-demo packages.

The repository is sandbox.debrepo's (cached), copied into the scratch root
at /srv/demo and reached with `file:/srv/demo` (a file: URL names a path
under the root; the host's own paths are never read: tests/attack/
test_registry_pkg.py); the sandbox end-to-end test reaches the same packages
over HTTP. Everything
is read back independently with `dpkg-query --admindir=<root>/var/lib/dpkg`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.core.errors import ToolError
from sandbox import debrepo
from tests.system.helpers import run
from tests.system.targets import ScratchTarget, make_target

REPO = {"name": "demo", "url": "", "suite": "./", "trusted": True}


def dpkg_state(root: Path) -> dict[str, tuple[str, str]]:
    """name -> (version, dpkg status) as dpkg-query reports them."""
    out = run(
        [
            "dpkg-query",
            f"--admindir={root}/var/lib/dpkg",
            "-W",
            "-f",
            "${Package}\t${Version}\t${Status}\n",
        ]
    )
    rows = (line.split("\t") for line in out.splitlines())
    return {name: (version, status) for name, version, status in rows}


@pytest.fixture
async def target(tmp_path: Path) -> ScratchTarget:
    t = make_target(tmp_path)
    debrepo.install_into(t.root / "srv/demo")
    call = await t.call("pkg.repos", {"repositories": [{**REPO, "url": "file:/srv/demo"}]})
    assert call.output["written"] == ["demo"] and call.output["index_updated"]
    return t


async def test_transaction_with_dependency_downgrade_hold_and_removal(
    target: ScratchTarget,
) -> None:
    root = target.root
    first = await target.call(
        "pkg.ensure", {"install": [{"name": "aios-demo-agent"}, {"name": "aios-demo-extra"}]}
    )
    assert {p["name"] for p in first.output["installed"]} == {
        "aios-demo-agent", "aios-demo-tools", "aios-demo-base", "aios-demo-extra",
    }  # fmt: skip
    before = dpkg_state(root)
    assert before["aios-demo-base"] == ("2.0-1", "install ok installed")  # dependency, newest
    assert (root / "usr/share/aios-demo/aios-demo-base/VERSION").read_text() == "2.0-1\n"

    tx = await target.call(
        "pkg.ensure",
        {
            "install": [{"name": "aios-demo-base", "version": "1.1-1"}],
            "remove": ["aios-demo-extra"],
            "hold": ["aios-demo-base"],
        },
    )
    assert tx.output == {
        "backend": "apt",
        "installed": [{"name": "aios-demo-base", "version": "1.1-1"}],
        "removed": ["aios-demo-extra"],
        "held": ["aios-demo-base"],
        "unheld": [],
    }
    after = dpkg_state(root)
    assert after["aios-demo-base"] == ("1.1-1", "hold ok installed")
    assert "aios-demo-extra" not in after
    assert (root / "usr/share/aios-demo/aios-demo-base/VERSION").read_text() == "1.1-1\n"
    assert tx.snapshot is not None and set(tx.snapshot["packages"]) >= {
        "aios-demo-base", "aios-demo-extra",
    }  # fmt: skip

    # Idempotent: the same transaction again changes nothing.
    again = await target.call(
        "pkg.ensure",
        {"install": [{"name": "aios-demo-base", "version": "1.1-1"}], "hold": ["aios-demo-base"]},
    )
    assert again.output["installed"] == [] and dpkg_state(root) == after

    await target.rollback(tx)  # Rollback(execution_id) of the transaction
    assert dpkg_state(root) == before


async def test_failing_postinst_is_rolled_back_inside_run(target: ScratchTarget) -> None:
    await target.call("pkg.ensure", {"install": [{"name": "aios-demo-tools", "version": "1.0-1"}]})
    before = dpkg_state(target.root)
    with pytest.raises(ToolError) as failure:
        await target.call(
            "pkg.ensure",
            {
                "install": [
                    {"name": "aios-demo-broken"},
                    {"name": "aios-demo-console"},
                    {"name": "aios-demo-tools", "version": "1.2-1"},
                ]
            },
        )
    message = str(failure.value)
    assert "aios-demo-broken (--configure): installed aios-demo-broken package " in message
    assert "post-installation script subprocess returned error exit status 1" in message
    assert "the transaction was rolled back" in message
    assert dpkg_state(target.root) == before
    assert not (target.root / "usr/share/aios-demo/aios-demo-console").exists()


async def test_aios_named_tools(target: ScratchTarget) -> None:
    installed = await target.call("pkg.install", {"name": "aios-demo-tools=1.0-1"})
    assert installed.output == {"installed": True, "version": "1.0-1"}
    listed = await target.call("pkg.list_installed", {})
    assert {"name": "aios-demo-tools", "version": "1.0-1"} in listed.output["packages"]
    found = await target.call("pkg.search", {"query": "demo agent"})
    assert found.output == {
        "packages": [{"name": "aios-demo-agent", "version": "1.0-1", "description": "demo agent"}]
    }
    updated = await target.call("pkg.update", {})
    assert updated.output == {"updated": 1}  # tools 1.0-1 -> 1.2-1 (base came in at 2.0-1)
    assert dpkg_state(target.root)["aios-demo-tools"][0] == "1.2-1"
    removed = await target.call("pkg.remove", {"name": "aios-demo-tools"})
    assert removed.output == {"removed": True}
    assert "aios-demo-tools" not in dpkg_state(target.root)
    await target.rollback(removed)
    assert dpkg_state(target.root)["aios-demo-tools"] == ("1.2-1", "install ok installed")
    with pytest.raises(ToolError, match=r"^apt-get install nosuch failed: E: Unable to locate"):
        await target.call("pkg.install", {"name": "nosuch"})


async def test_state_and_repository_rollback(target: ScratchTarget) -> None:
    await target.call("pkg.ensure", {"install": [{"name": "aios-demo-agent", "version": "0.9-1"}]})
    state = await target.call(
        "pkg.state", {"names": ["aios-demo-agent", "aios-demo-base", "nosuch"]}
    )
    out = state.output
    assert out["backend"] == "apt"
    agent = next(p for p in out["packages"] if p["name"] == "aios-demo-agent")
    assert agent == {
        "name": "aios-demo-agent", "version": "0.9-1", "status": "installed", "hold": False,
        "auto": False, "depends": ["aios-demo-tools"],
    }  # fmt: skip
    assert out["available"] == {
        "aios-demo-agent": ["1.0-1", "0.9-1"],
        "aios-demo-base": ["2.0-1", "1.1-1", "1.0-1"],
        "nosuch": [],
    }
    assert [r["name"] for r in out["repositories"]] == ["demo"]
    sources = target.root / "etc/apt/sources.list.d/aios-demo.list"
    before = sources.read_text()
    gone = await target.call(
        "pkg.repos", {"repositories": [{**REPO, "url": "file:/x", "state": "absent"}]}
    )
    assert gone.output["removed"] == ["demo"] and not sources.exists()
    await target.rollback(gone)
    assert sources.read_text() == before


async def test_recovers_from_an_interrupted_dpkg(target: ScratchTarget) -> None:
    """A dpkg killed mid-run (a timed-out execution) leaves a journal apt refuses to work with."""
    journal = target.root / "var/lib/dpkg/updates/0001"
    journal.write_text("")
    done = await target.call("pkg.ensure", {"install": [{"name": "aios-demo-models"}]})
    assert done.output["installed"] == [{"name": "aios-demo-models", "version": "1.0-1"}]
    assert not journal.exists()
