"""Rollback over a real server: restores, survives a restart, refuses what it
must; and the `aios` profile's own rules (§2.3-§2.5 of the contract)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from registry_support import running_registry

from reconciler.client import RegistryClient
from reconciler.sdk.errors import RateLimited, ToolFailed, ToolRejected
from registry.server import audit


async def test_rollback_survives_restart_and_refuses_clearly(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/motd").write_text("v0")
    async with running_registry(tmp_path) as (_s, address), RegistryClient(address) as client:
        first = await client.call("fs.write", {"path": "/etc/motd", "content": "v1"}, reason="a")
        second = await client.call("fs.write", {"path": "/etc/motd", "content": "v2"}, reason="b")
        other = await client.call("fs.write", {"path": "/etc/other", "content": "x"}, reason="c")
    assert first.backup_id == first.execution_id
    assert (root / "etc/motd").read_text() == "v2"
    async with (
        running_registry(tmp_path) as (_s, address),  # a new server, same state dir
        RegistryClient(address) as client,
    ):
        with pytest.raises(ToolFailed) as refused:
            await client.rollback(first.execution_id, "too early")
        assert refused.value.message == (
            f"cannot roll back {first.execution_id}: file:/etc/motd was changed later "
            f"by fs.write ({second.execution_id})"
        )
        await client.rollback(second.execution_id, "undo v2")
        assert (root / "etc/motd").read_text() == "v1"
        with pytest.raises(ToolFailed, match=r"was already rolled back"):
            await client.rollback(second.execution_id, "again")
        await client.rollback(first.execution_id, "undo v1")  # unblocked now
        assert (root / "etc/motd").read_text() == "v0"
        assert (root / "etc/motd.bak").exists() is False
        await client.rollback(other.execution_id, "undo other")
        assert not (root / "etc/other").exists()
        with pytest.raises(ToolFailed, match=r"^unknown execution id nope"):
            await client.rollback("nope", "?")
        read = await client.call("fs.read", {"path": "/etc/motd"}, reason="r")
        assert read.backup_id == ""
        with pytest.raises(ToolFailed, match=r"^unknown execution id"):
            await client.rollback(read.execution_id, "not reversible")
        deleted = await client.call("fs.delete", {"path": "/etc/motd"}, reason="d")
        assert deleted.backup_id == ""
    rows = audit.rows(tmp_path / "state")
    undo = [r for r in rows if r["tool"] == "rollback"]
    assert [r["success"] for r in undo] == [0, 1, 0, 1, 1, 0, 0]
    assert undo[1]["target"] == f"{second.execution_id} (fs.write)"
    assert audit.verify(tmp_path / "state").ok


async def test_aios_profile_rules(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/existing").write_text("before")
    async with running_registry(tmp_path, profile="aios") as (_s, address):
        async with RegistryClient(address, agent_id="task-agent") as client:
            tools = await client.list_tools()
            assert len(tools) == 26 and "registry.jobs" not in tools
            assert all(not spec.input_schema for spec in tools.values())
            changed = await client.call(
                "fs.write", {"path": "/etc/existing", "content": "after"}, reason="w"
            )
            created = await client.call(
                "fs.write", {"path": "/etc/new", "content": "n"}, reason="w"
            )
            assert changed.backup_id and created.backup_id  # aiOS: set for reversible tools
            await client.rollback(changed.execution_id, "undo")
            assert (root / "etc/existing").read_text() == "before"
            for eid in (changed.execution_id, created.execution_id, "unknown"):
                with pytest.raises(ToolFailed, match=r"refused"):  # success=false, error=""
                    await client.rollback(eid, "undo")
            with pytest.raises(ToolRejected, match=r"^fs.read: missing required field 'path'$"):
                await client.call("fs.read", {"path": 7}, reason="r")
            with pytest.raises(ToolRejected, match=r"^Invalid JSON input$"):
                await client.call("net.ping", {"count": 1}, reason="r")
        async with RegistryClient(address, agent_id="network-agent") as client:
            with pytest.raises(ToolRejected, match=r'^Capability denied: missing \["fs_read"\]$'):
                await client.call("fs.read", {"path": "/etc/new"}, reason="r")
        async with RegistryClient(address, agent_id="aios-reconciler") as client:
            with pytest.raises(ToolRejected, match=r'missing \["fs_read"\]'):
                await client.call("fs.read", {"path": "/etc/new"}, reason="r")
    assert audit.verify(tmp_path / "state").ok


async def test_aios_rate_limit_is_not_audited(tmp_path: Path) -> None:
    async with (
        running_registry(tmp_path, profile="aios") as (server, address),
        RegistryClient(address, agent_id="storage-agent", attempts=1) as client,
    ):
        server.pipeline.limiter.clock = lambda: 0.0  # no refill during the burst, however slow
        await client.list_tools()

        async def stat() -> str:
            try:
                await client.call("fs.stat", {"path": "/"}, reason="burst")
            except RateLimited:
                return "limited"
            return "ok"

        results = await asyncio.gather(*(stat() for _ in range(30)))
    assert (results.count("ok"), results.count("limited")) == (20, 10)
    rows = audit.rows(tmp_path / "state")
    assert len(rows) == results.count("ok")
