"""The audit chain: appends are chained and counted outside the table; verify
detects an edited row, an inserted row, a deleted middle row and a deleted
last row (the sqlite file is edited directly, as an attacker would)."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pytest

from registry.audit import GENESIS, AuditEntry, AuditLog, row_hash, rows, verify


def entry(i: int, *, success: bool = True) -> AuditEntry:
    return AuditEntry(
        execution_id=f"exec-{i}",
        tool="fs.write",
        agent="aios-reconciler",
        task="t1",
        reason=f"reason {i}",
        input_sha256="0" * 64,
        success=success,
        duration_ms=i,
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
    assert head == {"rows": 5, "hash": table[-1]["hash"], "last_id": 5}
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
    assert "row 3: hash mismatch (row edited)" in verdict.problem


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
