"""Capabilities, rate limits and backup retention: the registry's policies as data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.server.backups import BackupStore
from registry.server.capabilities import AIOS_AGENTS, Capabilities, denial
from registry.server.plugins import PLUGIN_CAPABILITY
from registry.server.profiles import get_profile
from registry.server.ratelimit import RateLimiter


def test_denial_message_is_aioss_rust_debug_list() -> None:
    assert (
        denial(["fs_write", "fs_delete"]) == 'Capability denied: missing ["fs_write", "fs_delete"]'
    )
    assert denial([]) == "Capability denied: missing []"


def test_default_agents_per_profile() -> None:
    full = Capabilities.for_profile("full")
    aios = Capabilities.for_profile("aios")
    assert full.missing("aios-reconciler", ["net_write", "model_manage", "plugin_execute"]) == []
    assert aios.missing("aios-reconciler", ["net_read"]) == ["net_read"]  # unknown on aiOS
    assert aios.missing("task-agent", ["fs_write", "fs_delete"]) == []
    assert aios.missing("package-agent", ["pkg_manage", "fs_write"]) == ["fs_write"]
    assert full.missing("nobody", ["fs_read"]) == ["fs_read"]
    assert len(AIOS_AGENTS["task-agent"]) == 30


def test_reconciler_holds_every_capability_a_full_tool_requires() -> None:
    """On `full`, aios-reconciler may call every built-in tool (net.port_scan needs
    net_scan, which a hand-kept list once lacked) and plugins."""
    full = Capabilities.for_profile("full")
    entries = get_profile("full").builtins()
    assert "net.port_scan" in entries
    for name, entry in entries.items():
        assert entry.enforced is not None, name
        assert full.missing("aios-reconciler", entry.enforced) == [], name
    assert full.missing("aios-reconciler", ["net_scan", PLUGIN_CAPABILITY]) == []


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_agents_file(tmp_path: Path, suffix: str) -> None:
    data = {"agents": {"ci-bot": ["fs_read"], "aios-reconciler": ["net_read"]}}
    path = tmp_path / f"agents{suffix}"
    path.write_text(json.dumps(data))  # JSON is YAML too
    caps = Capabilities.for_profile("full", path)
    assert caps.missing("ci-bot", ["fs_read", "fs_write"]) == ["fs_write"]
    assert caps.missing("aios-reconciler", ["net_write"]) == ["net_write"]  # replaced
    assert caps.missing("task-agent", ["fs_write"]) == []  # defaults kept
    path.write_text(json.dumps({**data, "include_defaults": False}))
    assert Capabilities.for_profile("full", path).missing("task-agent", ["fs_write"]) == [
        "fs_write"
    ]
    path.write_text(json.dumps({"agents": {"x": "fs_read"}}))
    with pytest.raises(ValueError, match="needs a list"):
        Capabilities.for_profile("full", path)


def test_rate_limits_of_the_aios_profile() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert all(limiter.allow("a", f"t{i}") for i in range(20))
    assert not limiter.allow("a", "t0")  # agent bucket (20) empty
    assert limiter.allow("b", "t0")  # per agent
    now[0] += 0.1  # +1 token at 10/s
    assert limiter.allow("a", "t0")
    assert not limiter.allow("a", "t0")
    # tool bucket: 100 burst, and the agent token is spent even when the tool refuses
    limiter = RateLimiter(clock=lambda: now[0], agent_capacity=1000, agent_rate=0)
    assert all(limiter.allow("c", "hot") for _ in range(100))
    assert not limiter.allow("c", "hot")
    assert limiter._agents["c"].tokens == pytest.approx(1000 - 101)


def test_backups_survive_reload_and_are_bounded(tmp_path: Path) -> None:
    store = BackupStore(tmp_path, max_entries=3, max_bytes=1_000_000)
    for i in range(5):
        work = store.prepare(f"e{i}")
        (work / "before-0").write_bytes(b"x" * 100)
        store.commit(f"e{i}", tool="fs.write", input_sha256="0", touches=(f"file:/f{i}",),
                     snapshot={"i": i})  # fmt: skip
        store.finish(f"e{i}", succeeded=True)
    assert store.ids() == ["e2", "e3", "e4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e2", "e3", "e4"]
    again = BackupStore(tmp_path, max_entries=3)
    assert again.ids() == ["e2", "e3", "e4"]
    e3 = again.get("e3")
    assert e3 is not None and e3.snapshot == {"i": 3} and e3.size > 100
    again.max_bytes = 2 * e3.size + 1  # room for two
    assert again.prune() == ["e2"]
    assert again.ids() == ["e3", "e4"]


def test_conflicts_and_superseded(tmp_path: Path) -> None:
    store = BackupStore(tmp_path)
    store.commit("a", tool="fs.write", input_sha256="0", touches=("file:/x",), snapshot={})
    store.finish("a", succeeded=True)
    store.record_change("b", tool="fs.delete", input_sha256="0", touches=("file:/x",))
    a = store.get("a")
    assert a is not None
    later = store.conflict(a)
    assert later is not None and later[0].execution_id == "b" and later[1] == "file:/x"
    assert store.status("a") == "superseded"
    store.mark_rolled_back("b")
    assert store.conflict(a) is None and store.status("a") == "active"


def test_backup_size_counts_allocated_blocks_not_shared_or_sparse_bytes(tmp_path: Path) -> None:
    store = BackupStore(tmp_path / "b", max_bytes=1 << 30)
    live = tmp_path / "model.gguf"
    live.write_bytes(b"m" * (1 << 20))
    work = store.prepare("keep")
    (work / "previous.gguf").hardlink_to(live)  # kept model, still the live file
    with (work / "image.img").open("wb") as sparse:
        sparse.truncate(512 << 20)  # a sparse 512 MiB image copy holding nothing
    store.commit("keep", tool="model.fetch", input_sha256="0", touches=("model:/m",),
                 snapshot={})  # fmt: skip
    store.finish("keep", succeeded=True)
    kept = store.get("keep")
    assert kept is not None and kept.size < (1 << 20), kept.size
    live.unlink()  # now the backup holds the only copy: it costs its blocks
    store.finish("keep", succeeded=True)
    again = store.get("keep")
    assert again is not None and again.size >= (1 << 20)


def test_schema_check_remembers_valid_documents_only() -> None:
    from registry.server import pipeline

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert pipeline.first_error(schema, {"n": 1}) is None
    assert pipeline.first_error(schema, {"n": 1}) is None  # served from the memo
    assert pipeline.first_error(schema, {"n": "x"}) == "$.n: 'x' is not of type 'integer'"
    assert pipeline.first_error(schema, {"n": "x"}) is not None  # errors are never memoised
    other = {"type": "object", "properties": {"n": {"type": "string"}}}
    assert pipeline.first_error(other, {"n": 1}) is not None  # per schema, not per document
