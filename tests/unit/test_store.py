"""reconciler.engine.store on stdlib sqlite3: round trips, old state dirs, and failures.

Round trips and state dirs sqlite-utils created; then each way a state
directory can fail (a schema race, an emptied, corrupt or misplaced database,
a busy one, a full one, a lock path that is no lock file) raising one clear
StateStoreError and leaving every existing file as it was. The same failures
through the real CLI, with read-only and full file systems in private mount
namespaces, are in tests/attack/test_store_failures.py.
"""

from __future__ import annotations

import re
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.engine import store as store_module
from reconciler.engine.store import ResourceStatus, Store
from reconciler.sdk.errors import StateStoreError


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
    assert set(columns) == {
        "generations",
        "status",
        "inventory",
        "journal",
        "runs",
        "sources",
        "cache",
    }


def test_cache_is_bounded_and_keeps_the_newest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "CACHE_LIMIT", 3)
    s = Store(tmp_path)
    for i in range(5):
        s.cache_put(f"k{i}", str(i))
    assert [s.cache_get(f"k{i}") for i in range(5)] == [None, None, "2", "3", "4"]
    s.close()


def test_verifier_memo_skips_inputs_already_found_valid(tmp_path: Path) -> None:
    from contract.tooldef import ToolSpec
    from reconciler.engine.verify import schema_errors

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    spec = ToolSpec("t.x", "x", schema, {}, "low", True, False, 1000, ("net_write",))
    s = Store(tmp_path)
    assert schema_errors(spec, {"n": 1}, s) == []
    assert any(k.startswith("schema-ok:") for (k,) in s.conn.execute("select key from cache"))
    assert schema_errors(spec, {"n": "x"}, s) == ["$.n: 'x' is not of type 'integer'"]
    assert schema_errors(spec, {"n": "x"}, s) != []  # failures are never remembered
    s.close()


# --- failures of the state directory: one clear StateStoreError each, nothing lost ------

TARGET = "t"
RACE = """
import os, sys
from pathlib import Path
from reconciler.engine.store import Store
state, go, ready = (Path(a) for a in sys.argv[1:4])
(ready / str(os.getpid())).touch()
while not go.exists():
    pass
Store(state).close()
"""


def _populated(state: Path) -> Path:
    store = Store(state)
    store.add_generation(TARGET, "d1", [{"kind": "Network", "metadata": {"name": "a"}}])
    store.put_status(TARGET, ResourceStatus("Network/a", "network", 1, "r1", (), ()))
    store.close()
    return state / "reconciler.db"


def _files(directory: Path) -> dict[str, tuple[int, bytes]]:
    return {
        p.name: (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in sorted(directory.iterdir())
    }


def test_concurrent_first_opens_create_the_schema_once(tmp_path: Path) -> None:
    """8 processes released together on a fresh directory, 6 times: the old
    check-then-create failed every round ('table [generations] already exists')."""
    repo = Path(__file__).resolve().parents[2]
    for round_ in range(6):
        state, go, ready = (
            tmp_path / f"s{round_}",
            tmp_path / f"go{round_}",
            tmp_path / f"r{round_}",
        )
        ready.mkdir()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", RACE, str(state), str(go), str(ready)],
                cwd=repo,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(8)
        ]
        deadline = time.monotonic() + 60
        while len(list(ready.iterdir())) < 8 and time.monotonic() < deadline:
            time.sleep(0.002)
        go.touch()
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 8, f"round {round_}: {errors}"
        conn = sqlite3.connect(state / "reconciler.db")
        tables = {n for (n,) in conn.execute("select name from sqlite_master where type='table'")}
        conn.close()
        assert tables == set(store_module.TABLES)
        assert (state / store_module.MARKER_NAME).is_file()


def test_a_fresh_directory_gets_the_marker_and_a_private_database(tmp_path: Path) -> None:
    Store(tmp_path / "s").close()
    marker = (tmp_path / "s" / store_module.MARKER_NAME).read_text()
    assert marker.startswith("aios state since ") and "remove this file only" in marker
    assert stat.S_IMODE((tmp_path / "s" / "reconciler.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("zero-bytes", "is empty (0 bytes), but"),
        ("missing", "is missing, but"),
        ("no-tables", "has lost its table(s) generations, inventory, but"),
        ("no-inventory", "has lost its table(s) inventory, but"),
    ],
)
def test_an_emptied_database_is_refused_not_restarted(
    tmp_path: Path, case: str, expected: str
) -> None:
    db = _populated(tmp_path)
    if case == "zero-bytes":
        db.write_bytes(b"")
    elif case == "missing":
        db.unlink()
    else:
        conn = sqlite3.connect(db)
        drop = ("inventory",) if case == "no-inventory" else tuple(store_module.TABLES)
        for table in drop:
            conn.execute(f"drop table [{table}]")
        conn.commit()
        conn.close()
    before = _files(tmp_path)
    with pytest.raises(StateStoreError) as caught:
        Store(tmp_path)
    message = caught.value.message
    assert expected in message and f"{tmp_path}/reconciler.db" in message
    assert "will not start again at generation 0" in message and "mv " in message
    assert not caught.value.retryable
    assert _files(tmp_path) == before  # nothing rewritten, nothing created


def test_a_directory_from_before_the_marker_gets_one_and_its_lock_is_evidence(
    tmp_path: Path,
) -> None:
    db = _populated(tmp_path)
    (tmp_path / store_module.MARKER_NAME).unlink()
    Store(tmp_path).close()  # tables present: an old directory, upgraded
    assert (tmp_path / store_module.MARKER_NAME).exists()
    (tmp_path / store_module.MARKER_NAME).unlink()
    (tmp_path / "writer.lock").write_text("pid 1")
    db.write_bytes(b"")
    with pytest.raises(StateStoreError, match=r"writer\.lock shows aios applied changes from here"):
        Store(tmp_path)
    assert db.read_bytes() == b""


def test_a_brand_new_empty_database_file_is_fine(tmp_path: Path) -> None:
    (tmp_path / "reconciler.db").write_bytes(b"")  # no marker, no lock: never used
    store = Store(tmp_path)
    assert store.add_generation(TARGET, "d", []).generation == 1
    store.close()


def test_a_write_failing_after_a_call_ran_says_the_target_changed(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.start_run("run1", TARGET, 1)
    store.journal("run1", TARGET, "models", 0, "model.fetch", (0,), "abc", "started")
    pages = store.conn.execute("pragma page_count").fetchone()[0]
    store.conn.execute(f"pragma max_page_count = {pages}")  # the database can grow no more
    with pytest.raises(StateStoreError) as caught:
        store.journal(
            "run1", TARGET, "models", 0, "model.fetch", (0,), "abc", "done", "x1", "e" * 20000
        )
    message = caught.value.message
    assert caught.value.retryable
    assert "cannot record the journal entry 'done' of model.fetch (call 0 of models" in message
    assert "is full" in message
    assert "The target WAS changed: model.fetch (call 0 of models, execution x1) ran" in message
    with pytest.raises(StateStoreError) as later:
        store.put_status(TARGET, ResourceStatus("Models/m", "models", 1, "r" * 20000, (), ()))
    assert "Not recorded: the journal entry 'done' of model.fetch" in later.value.message
    assert "; the status of Models/m;" in later.value.message
    assert "run the same `aios apply` again" in later.value.message
    store.cache_put("k", "v" * 20000)  # derived: best effort, never an error
    assert store.cache_get("k") is None
    assert [r["state"] for r in store.journal_rows("run1")] == ["started"]  # kept
    store.close()


def test_a_busy_database_is_a_retryable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _populated(tmp_path)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.2)
    holder = sqlite3.connect(tmp_path / "reconciler.db")
    holder.execute("pragma locking_mode=exclusive")
    holder.execute("begin exclusive")
    try:
        with pytest.raises(StateStoreError, match="is busy: another process held it") as caught:
            Store(tmp_path)
        assert caught.value.retryable
    finally:
        holder.rollback()
        holder.close()
    Store(tmp_path).close()


def test_the_writer_lock_refuses_what_is_not_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sentinel = tmp_path / "host" / "passwd"
    sentinel.parent.mkdir()
    sentinel.write_text("root:x:0:0\n")
    state = tmp_path / "state"
    store = Store(state)
    lock = state / "writer.lock"
    for kind, expected in [
        ("directory", "is a directory, not a file"),
        ("absolute-link", "is a symbolic link (to "),
        ("relative-link", "is a symbolic link (to ../host/passwd)"),
        ("dangling-link", "is a symbolic link (to "),
    ]:
        if kind == "directory":
            lock.mkdir()
        else:
            target = {"absolute-link": str(sentinel), "relative-link": "../host/passwd"}
            lock.symlink_to(target.get(kind, str(tmp_path / "host" / "new")))
        with pytest.raises(StateStoreError, match=re.escape(expected)), store.writer():
            pytest.fail("the lock was taken")
        if kind == "directory":
            lock.rmdir()
        else:
            lock.unlink()
    assert sentinel.read_text() == "root:x:0:0\n" and sorted(sentinel.parent.iterdir()) == [
        sentinel
    ]
    with store.writer():  # a plain file again: taken, and a second writer is told to wait
        second = Store(state)
        with (
            pytest.raises(StateStoreError, match="another writer holds") as caught,
            second.writer(),
        ):
            pytest.fail("two writers")
        assert caught.value.retryable
        second.close()
    monkeypatch.setattr(store_module, "MIN_FREE_BYTES", 1 << 62)
    with (
        pytest.raises(StateStoreError, match="bytes free; an apply needs at least"),
        store.writer(),
    ):
        pytest.fail("no room to journal, yet the lock was taken")
    store.close()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("garbage", "is corrupt (file is not a database: it lacks the SQLite header)"),
        ("short", "is corrupt (file is not a database: it lacks the SQLite header)"),
        ("truncated", "is corrupt (truncated: 20000 bytes where its header records "),
        ("malformed", "is corrupt (database disk image is malformed)"),
        ("directory", "is a directory, not a database file"),
        ("dangling-link", "is a symbolic link to "),
    ],
)
def test_a_corrupt_or_misplaced_database_is_refused(
    tmp_path: Path, case: str, expected: str
) -> None:
    db = _populated(tmp_path / "s")
    data = db.read_bytes()
    if case == "garbage":
        db.write_bytes(b"garbage\n" * 100)
    elif case == "short":
        db.write_bytes(data[:50])
    elif case == "truncated":
        db.write_bytes(data[:20000])
    elif case == "malformed":  # page 2, the generations table's root
        db.write_bytes(data[:4096] + b"\xff" * 4096 + data[8192:])
    elif case == "directory":
        db.unlink()
        db.mkdir()
    else:
        db.unlink()
        db.symlink_to(tmp_path / "elsewhere.db")
    before = _files(tmp_path / "s")
    with pytest.raises(StateStoreError) as caught:
        store = Store(tmp_path / "s")
        try:
            store.generations(TARGET)  # a damaged page is found when it is read
        finally:
            store.close()
    assert expected in caught.value.message and str(db) in caught.value.message
    assert not caught.value.retryable
    assert _files(tmp_path / "s") == before
    assert not (tmp_path / "elsewhere.db").exists()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("file/state", "cannot create state directory {tmp}/file/state: {tmp}/file is a file"),
        ("file/a/b", "cannot create state directory {tmp}/file/a/b: {tmp}/file is a file"),
        ("file", "state directory {tmp}/file exists and is not a directory"),
        ("/proc/aios-test-state", "/proc/aios-test-state is on a proc file system"),
        ("/proc/sys", "/proc/sys is on a proc file system"),
        ("/sys/aios-test-state", "/sys/aios-test-state is on a sysfs file system"),
    ],
)
def test_a_state_directory_that_cannot_be_one_is_refused(
    tmp_path: Path, where: str, expected: str
) -> None:
    (tmp_path / "file").write_text("not a directory\n")
    with pytest.raises(StateStoreError) as caught:
        Store(tmp_path / where)
    assert expected.format(tmp=tmp_path) in caught.value.message
    assert (tmp_path / "file").read_text() == "not a directory\n"
    assert not Path("/proc/aios-test-state").exists() and not Path("/sys/aios-test-state").exists()


def test_an_apply_finds_a_damaged_page_no_read_touched(tmp_path: Path) -> None:
    db = _populated(tmp_path)
    conn = sqlite3.connect(db)
    (root,) = conn.execute("select rootpage from sqlite_master where name = 'journal'").fetchone()
    conn.close()
    data = db.read_bytes()
    db.write_bytes(data[: (root - 1) * 4096] + b"\xff" * 4096 + data[root * 4096 :])
    store = Store(tmp_path)
    assert [g.generation for g in store.generations(TARGET)] == [1]  # reads still work
    with (
        pytest.raises(StateStoreError, match=r"reconciler\.db is corrupt \(") as caught,
        store.writer(),
    ):
        pytest.fail("an apply began on a damaged database")
    assert "aios changed nothing" in caught.value.message and not caught.value.retryable
    store.close()


def test_source_resources_are_replaced_whole_per_target(tmp_path: Path) -> None:
    s = Store(tmp_path)
    s.set_source_resources("t", {"Network/a": "/specs/a.yaml:1:1", "Firewall/f": "/specs/f.yaml"})
    s.set_source_resources("other", {"Network/x": "/x.yaml"})
    assert s.source_resources("t") == {
        "Network/a": "/specs/a.yaml:1:1",
        "Firewall/f": "/specs/f.yaml",
    }
    s.set_source_resources("t", {"Firewall/f": "/specs/g.yaml"})
    s.close()
    again = Store(tmp_path)
    assert again.source_resources("t") == {"Firewall/f": "/specs/g.yaml"}
    assert again.source_resources("other") == {"Network/x": "/x.yaml"}
    again.close()
