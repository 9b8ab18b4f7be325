"""reconciler.engine.store on stdlib sqlite3: round trips, and state dirs sqlite-utils created."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from reconciler.engine.store import ResourceStatus, Store


def test_round_trips(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.current_generation("t") is None
    first = store.add_generation("t", "d1", [{"kind": "Network", "metadata": {"name": "a"}}])
    second = store.add_generation("t", "d2", [], note="pruned x")
    assert (first.generation, second.generation) == (1, 2)
    assert store.current_generation("t") == second
    assert store.generation("t", 1) == first
    assert [g.generation for g in store.generations("t")] == [1, 2]
    status = ResourceStatus("Network/a", "network", 2, "r1", ({"type": "Ready"},), ())
    store.put_status("t", status)
    store.put_status("t", ResourceStatus("Network/a", "network", 3, "r2", (), ()))
    assert store.status("t", "Network/a") == ResourceStatus("Network/a", "network", 3, "r2", (), ())
    store.update_inventory("t", "network", added={"Network/a": {"link:x", "link:y"}}, removed={})
    store.update_inventory(
        "t", "network", added={"Network/a": {"link:y"}}, removed={"k": {"link:x"}}
    )
    assert store.inventory("t") == {"Network/a": frozenset({"link:y"})}
    assert store.inventory("t", "firewall") == {}
    store.start_run("run1", "t", 2)
    store.journal("run1", "t", "network", 0, "net.apply", (0, 1), "abc", "started")
    assert [r["tool"] for r in store.unfinished_calls("t")] == ["net.apply"]
    store.journal("run1", "t", "network", 0, "net.apply", (0, 1), "abc", "done", "e1")
    assert store.unfinished_calls("t") == []
    assert [r["state"] for r in store.journal_rows("run1")] == ["started", "done"]
    store.finish_run("run1", "ready", "network: ok")
    row = store.conn.execute("select outcome, summary from runs where run = 'run1'").fetchone()
    assert tuple(row) == ("ready", "network: ok")
    store.cache_put("k", "v1")
    store.cache_put("k", "v2")
    assert store.cache_get("k") == "v2" and store.cache_get("nope") is None
    store.forget_resource("t", "Network/a")
    assert store.status("t", "Network/a") is None and store.inventory("t") == {}
    store.close()
    again = Store(tmp_path)
    assert again.current_generation("t") == second and again.cache_get("k") == "v2"
    again.close()


def test_a_state_dir_created_by_sqlite_utils_still_works(tmp_path: Path) -> None:
    sqlite_utils = pytest.importorskip("sqlite_utils")
    db = sqlite_utils.Database(tmp_path / "reconciler.db")
    db.table("generations").create(
        {"target": str, "generation": int, "digest": str, "specs": str, "created": float,
         "note": str},
        pk=("target", "generation"),
    )  # fmt: skip
    db.table("journal").create({"id": int, "run": str}, pk="id")
    db.table("generations").insert(
        {"target": "t", "generation": 1, "digest": "d", "specs": "[]", "created": 1.0, "note": ""}
    )
    db.close()
    store = Store(tmp_path)  # the schema exists: nothing is recreated
    assert store.current_generation("t") is not None
    assert store.add_generation("t", "d2", []).generation == 2
    store.close()


def test_fresh_schema_matches_the_columns_sqlite_utils_made(tmp_path: Path) -> None:
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "reconciler.db")
    columns = {
        table: [c[1] for c in conn.execute(f"pragma table_info([{table}])")]
        for (table,) in conn.execute("select name from sqlite_master where type = 'table'")
    }
    conn.close()
    assert columns["journal"][0] == "id" and "input_sha256" in columns["journal"]
    assert set(columns) == {"generations", "status", "inventory", "journal", "runs", "cache"}


def test_cache_is_bounded_and_keeps_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.engine import store as store_module

    monkeypatch.setattr(store_module, "CACHE_LIMIT", 3)
    s = Store(tmp_path)
    for i in range(5):
        s.cache_put(f"k{i}", str(i))
    assert [s.cache_get(f"k{i}") for i in range(5)] == [None, None, "2", "3", "4"]
    s.close()


def test_verifier_memo_skips_inputs_already_found_valid(tmp_path: Path) -> None:
    from reconciler.engine.verify import schema_errors
    from registry.tooling import ToolSpec

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    spec = ToolSpec("t.x", "x", schema, {}, "low", True, False, 1000, ("net_write",))
    s = Store(tmp_path)
    assert schema_errors(spec, {"n": 1}, s) == []
    assert any(k.startswith("schema-ok:") for (k,) in s.conn.execute("select key from cache"))
    assert schema_errors(spec, {"n": "x"}, s) == ["$.n: 'x' is not of type 'integer'"]
    assert schema_errors(spec, {"n": "x"}, s) != []  # failures are never remembered
    s.close()
