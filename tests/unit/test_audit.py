"""The audit chain: appends are chained with the key and counted outside the
table; verify detects an edited row, an inserted row, a deleted middle row and
a deleted last row (the sqlite file is edited directly, as an attacker would);
logs written before keys are keyed on open and reported for what they prove.
The attack cases (rechained rows, garbage heads, keys, databases) are in
tests/attack/test_serve_audit.py."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pytest
from registry_support import audit_entry as entry

from registry.server.audit import (
    GENESIS,
    AuditError,
    AuditLog,
    Head,
    head_mac,
    row_hash,
    row_mac,
    rows,
    verify,
)


@pytest.fixture
async def state(tmp_path: Path) -> Path:
    log = AuditLog(tmp_path)
    for i in range(5):
        await log.append(entry(i, success=i != 2))
    log.close()
    return tmp_path


def sql(state: Path, statement: str, *params: object) -> None:
    conn = sqlite3.connect(state / "audit.db")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    conn.execute(statement, params)
    conn.commit()
    conn.close()


def test_chain_and_head(state: Path) -> None:
    table = rows(state)
    assert [r["id"] for r in table] == [1, 2, 3, 4, 5]
    assert table[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(table))
    assert table[2]["success"] == 0
    head = json.loads((state / "audit.head").read_text())
    mac = head.pop("mac")
    assert head == {"rows": 5, "hash": table[-1]["hash"], "last_id": 5, "keyed_from": 1,
                    "version": 2}  # fmt: skip
    key = bytes.fromhex((state / "audit.key").read_text())
    assert mac == head_mac(key, Head(5, table[-1]["hash"], 5, 1))
    assert table[0]["hash"] == row_mac(key, GENESIS, table[0])
    assert (state / "audit.key").stat().st_mode & 0o777 == 0o600
    verdict = verify(state)
    assert verdict.ok and verdict.rows == 5 and verdict.head == table[-1]["hash"]


def test_table_refuses_update_and_delete(state: Path) -> None:
    conn = sqlite3.connect(state / "audit.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET reason = 'x' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log WHERE id = 5")
    conn.close()


def test_edited_row_is_detected(state: Path) -> None:
    sql(state, "UPDATE audit_log SET success = 1 WHERE id = 3")
    verdict = verify(state)
    assert not verdict.ok and verdict.bad_row == 3
    assert "row 3: hash mismatch (row edited" in verdict.problem


def test_inserted_row_is_detected_even_with_a_valid_hash(state: Path) -> None:
    table = rows(state)
    forged = {**table[1], "id": 99, "execution_id": "forged", "prev_hash": table[1]["hash"]}
    forged["hash"] = row_hash(forged["prev_hash"], forged)
    # move rows 3.. up to make room right after row 2
    sql(state, "UPDATE audit_log SET id = id + 100 WHERE id > 2")
    cols = ", ".join(forged)
    sql(state, f"INSERT INTO audit_log ({cols}) VALUES ({', '.join('?' * len(forged))})",
        *forged.values())  # fmt: skip
    verdict = verify(state)
    assert not verdict.ok
    assert "chain break" in verdict.problem or "hash mismatch" in verdict.problem


def test_deleted_middle_row_is_detected(state: Path) -> None:
    sql(state, "DELETE FROM audit_log WHERE id = 2")
    verdict = verify(state)
    assert not verdict.ok and verdict.bad_row == 3 and "chain break" in verdict.problem


def test_deleted_last_row_is_detected(state: Path) -> None:
    sql(state, "DELETE FROM audit_log WHERE id = 5")
    verdict = verify(state)
    assert not verdict.ok
    assert "head file says 5 rows" in verdict.problem and "deleted" in verdict.problem


async def test_writer_continues_from_the_head_file(state: Path) -> None:
    """Deleting the last row while the registry is down cannot be papered over."""
    sql(state, "DELETE FROM audit_log WHERE id = 5")
    log = AuditLog(state)
    await log.append(entry(6))
    log.close()
    verdict = verify(state)
    assert not verdict.ok and verdict.bad_row == 6 and "chain break" in verdict.problem


def test_missing_head_file_is_reported(state: Path) -> None:
    (state / "audit.head").unlink()
    verdict = verify(state)
    assert not verdict.ok and "head file" in verdict.problem


def test_cli_verify(state: Path) -> None:
    from click.testing import CliRunner

    from reconciler.cli.main import cli

    ok = CliRunner().invoke(cli, ["registry", "audit", "verify", "--state-dir", str(state)])
    assert ok.exit_code == 0 and ok.output.startswith("ok: 5 rows, head ")
    sql(state, "UPDATE audit_log SET reason = 'nothing to see' WHERE id = 4")
    bad = CliRunner().invoke(cli, ["registry", "audit", "verify", "--state-dir", str(state)])
    assert bad.exit_code == 1 and "row 4: hash mismatch" in bad.output


# -- logs written before audit keys existed -------------------------------------------

LEGACY_SCHEMA = """
CREATE TABLE audit_log (id INTEGER PRIMARY KEY, execution_id TEXT NOT NULL, tool TEXT NOT NULL,
  agent TEXT NOT NULL, task TEXT NOT NULL, reason TEXT NOT NULL, input_sha256 TEXT NOT NULL,
  success INTEGER NOT NULL, duration_ms INTEGER NOT NULL, timestamp TEXT NOT NULL,
  target TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
"""


def legacy_log(state: Path, n: int) -> None:
    """An audit log as the registry wrote it before keys: SHA-256 chain, head without a MAC."""
    conn = sqlite3.connect(state / "audit.db")
    conn.executescript(LEGACY_SCHEMA)
    prev = GENESIS
    for i in range(1, n + 1):
        fields = {"id": i, "execution_id": f"old-{i}", "tool": "fs.write", "agent": "a",
                  "task": "", "reason": "", "input_sha256": "0" * 64, "success": 1,
                  "duration_ms": 1, "timestamp": "2025-01-01T00:00:00Z", "target": ""}  # fmt: skip
        digest = row_hash(prev, fields)
        conn.execute(f"INSERT INTO audit_log VALUES ({', '.join('?' * 13)})",
                     [*fields.values(), prev, digest])  # fmt: skip
        prev = digest
    conn.commit()
    conn.close()
    (state / "audit.head").write_text(json.dumps({"rows": n, "hash": prev, "last_id": n}))


def test_an_unkeyed_log_is_reported_as_unproven(tmp_path: Path) -> None:
    legacy_log(tmp_path, 3)
    verdict = verify(tmp_path)
    assert not verdict.ok and verdict.rows == 3
    assert verdict.problem.startswith("unkeyed audit log (written before audit keys; no audit.key)")


async def test_the_writer_keys_an_old_log_and_anchors_its_rows(tmp_path: Path) -> None:
    legacy_log(tmp_path, 3)
    log = AuditLog(tmp_path)
    assert log.head.keyed_from == 4 and log.head.rows == 3
    await log.append(entry(4))
    log.close()
    assert (tmp_path / "audit.key").stat().st_mode & 0o777 == 0o600
    verdict = verify(tmp_path)
    assert verdict.ok and verdict.rows == 4
    assert verdict.note.startswith("rows 1-3 were written before the log was keyed")
    # rewriting an old row and rechaining the unkeyed part breaks the first keyed row's link
    table = rows(tmp_path)
    prev = GENESIS
    for row in table[:3]:
        row = {**row, "reason": "rewritten" if row["id"] == 2 else row["reason"]}
        digest = row_hash(prev, row)
        sql(tmp_path, "UPDATE audit_log SET reason = ?, prev_hash = ?, hash = ? WHERE id = ?",
            row["reason"], prev, digest, row["id"])  # fmt: skip
        prev = digest
    bad = verify(tmp_path)
    assert not bad.ok and bad.bad_row == 4 and "chain break" in bad.problem


async def test_a_keyed_log_is_not_downgraded_by_an_unkeyed_head(state: Path) -> None:
    head = json.loads((state / "audit.head").read_text())
    (state / "audit.head").write_text(json.dumps({k: head[k] for k in ("rows", "hash", "last_id")}))
    verdict = verify(state)
    assert not verdict.ok and "has no MAC although audit.key exists" in verdict.problem
    with pytest.raises(AuditError, match=r"has no MAC although audit\.key exists"):
        AuditLog(state)


def test_the_writer_refuses_a_forged_head(state: Path) -> None:
    head = json.loads((state / "audit.head").read_text())
    (state / "audit.head").write_text(json.dumps({**head, "rows": 4}))
    with pytest.raises(AuditError, match="fails its MAC"):
        AuditLog(state)


def test_the_writer_refuses_a_missing_head_beside_rows(state: Path) -> None:
    (state / "audit.head").unlink()
    with pytest.raises(AuditError, match=r"is missing although audit\.key exists"):
        AuditLog(state)
