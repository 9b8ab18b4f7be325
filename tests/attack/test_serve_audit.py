"""Attack corpus, registry side: the registry's socket and its audit chain (`serve-` cases).

Socket: `aios registry serve` without `--listen` serves the 0600 unix socket
/run/aios/tools.sock and no TCP port, so a uid-65534 process can neither
connect to it nor find a port to claim `aios-reconciler` on; TCP is served only
when asked for, with a warning; a socket directory others could write, and a
socket a live registry already serves, are refused. Those runs happen in a
private mount namespace (a tmpfs over /run) and a private network namespace,
so the host's /run and network never see them.

Audit: a 5-row log written by the registry's own writer is tampered with as an
attacker without the key would (rows rewritten and rechained, inserted,
deleted, the last one included; the head, the key or the database replaced
by garbage, truncated, swapped or loosened), and `aios registry audit verify`
must answer exit 1 with the exact message and never a traceback; the
registry's writer (`aios registry serve`) must refuse to continue such a log.

Every case also checks that a sentinel "host" directory outside the state dir
is unchanged, byte for byte and mode for mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from registry_support import audit_entry as entry

from registry.server.audit import GENESIS, KEY_NAME, AuditLog, head_mac, row_hash, row_mac, rows

AIOS = [sys.executable, "-c", "from reconciler.cli.main import main; main()"]
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, uid switch)")
DEFAULT_SOCKET = "/run/aios/tools.sock"
REPLACE = "anyone could replace the registry's socket"


def aios(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIOS_WARM": "0", "NO_COLOR": "1"}
    return subprocess.run(
        [*AIOS, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


# -- the sentinel: what must not change outside the state dir ---------------------------


def _snapshot(top: Path) -> dict[str, tuple[int, bytes]]:
    found = {".": (top.lstat().st_mode, b"")}
    for path in sorted(top.rglob("*")):
        info = path.lstat()
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        if path.is_symlink():
            data = os.readlink(path).encode()
        found[str(path.relative_to(top))] = (info.st_mode, data)
    return found


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Path]:
    """A stand-in for host files an escape would touch; asserted unchanged afterwards."""
    top = tmp_path / "host"
    (top / "etc").mkdir(parents=True)
    (top / "etc/shadow").write_bytes(b"root:*:19000:0:99999:7:::\n")
    (top / "etc/shadow").chmod(0o640)
    (top / "bin").mkdir(mode=0o755)
    (top / "bin/tool").write_bytes(b"\x7fELF not really\n")
    (top / "bin/tool").chmod(0o755)
    before = _snapshot(top)
    yield top
    assert _snapshot(top) == before, "something outside the state dir changed"


# -- the socket ------------------------------------------------------------------------


def test_serve_default_is_the_unix_socket() -> None:
    from reconciler.cli.registry import LISTEN
    from registry.server.grpc import DEFAULT_LISTEN, ServeOptions, tcp_warning

    assert DEFAULT_LISTEN == LISTEN == f"unix://{DEFAULT_SOCKET}"
    assert ServeOptions().listen == DEFAULT_LISTEN
    assert tcp_warning(DEFAULT_LISTEN) is None


@contextlib.contextmanager
def serving_privately(*serve_args: str) -> Iterator[subprocess.Popen[str]]:
    """`aios registry serve ARGS` in a private mount namespace (tmpfs on /run) and netns."""
    script = 'mount -t tmpfs aios-test-run /run && ip link set lo up && exec "$@"'
    argv = [
        "unshare",
        "--mount",
        "--net",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        *AIOS,
        "registry",
        "serve",
        *serve_args,
    ]
    env = {**os.environ, "AIOS_WARM": "0"}
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def in_ns(pid: int, code: str, *, uid: int | None = None) -> subprocess.CompletedProcess[str]:
    """Python `code` run inside the mount and network namespaces of `pid` (as `uid`)."""
    who = ["-S", str(uid), "-G", str(uid)] if uid is not None else []
    python = sys.executable
    if uid is not None:  # an interpreter the other user can run (ours may live under /root)
        python = "/usr/bin/python3"
        if not os.access(python, os.X_OK):
            pytest.skip("no system python3 for the unprivileged client")
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-m", "-n", *who, "--", python, "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def wait_for_log(proc: subprocess.Popen[str], needle: str, limit_s: float = 30) -> list[str]:
    """stderr lines of `proc` up to the one containing `needle`."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            pytest.fail(f"the registry exited ({proc.poll()}): {''.join(lines)}")
        lines.append(line)
        if needle in line:
            return lines
    pytest.fail(f"no {needle!r} within {limit_s} s: {''.join(lines)}")


CONNECT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1] if len(sys.argv) > 1 else {path!r})
except OSError as exc:
    print(type(exc).__name__)
else:
    print("connected")
"""
TCP = """
import socket
try:
    socket.create_connection(("127.0.0.1", 50052), timeout=2)
except OSError as exc:
    print(type(exc).__name__)
else:
    print("connected")
"""


@ROOT_ONLY
def test_serve_default_socket_is_0600_and_no_tcp_port(tmp_path: Path, host: Path) -> None:
    """The original attack: uid 65534 reaching a root registry as aios-reconciler."""
    host_run_aios = Path("/run/aios").exists()
    host_mounts = Path("/proc/self/mountinfo").read_text()
    state, root = tmp_path / "state", tmp_path / "root"
    with serving_privately("--state-dir", str(state), "--root", str(root)) as proc:
        wait_for_log(proc, f"registry serving on unix://{DEFAULT_SOCKET}")
        mode = in_ns(proc.pid, f"import os; print(oct(os.stat({DEFAULT_SOCKET!r}).st_mode))")
        assert mode.stdout.strip() == "0o140600", mode.stderr
        assert in_ns(proc.pid, CONNECT.format(path=DEFAULT_SOCKET)).stdout.strip() == "connected"
        nobody = in_ns(proc.pid, CONNECT.format(path=DEFAULT_SOCKET), uid=65534)
        assert nobody.stdout.strip() == "PermissionError", nobody.stderr
        assert in_ns(proc.pid, TCP, uid=65534).stdout.strip() == "ConnectionRefusedError"
        listening = subprocess.run(
            ["nsenter", "-t", str(proc.pid), "-n", "ss", "-Hltn"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert listening.stdout.strip() == "", listening.stdout
    assert Path("/run/aios").exists() == host_run_aios
    assert Path("/proc/self/mountinfo").read_text() == host_mounts


@ROOT_ONLY
@pytest.mark.parametrize(
    ("case", "listen", "warning"),
    [
        ("serve-tcp-loopback-warns", "127.0.0.1:0", "every local user can connect"),
        ("serve-tcp-ipv6-loopback-warns", "[::1]:0", "every local user can connect"),
        ("serve-tcp-any-warns", "0.0.0.0:0", "reachable from other machines"),
    ],
)
def test_serve_tcp_only_when_asked_and_with_a_warning(
    case: str, listen: str, warning: str, tmp_path: Path, host: Path
) -> None:
    with serving_privately(
        "--listen", listen, "--state-dir", str(tmp_path / "state"), "--root", str(tmp_path / "root")
    ) as proc:
        lines = wait_for_log(proc, "registry serving on")
        text = "".join(lines)
        assert f"WARNING registry.server.grpc: listening on TCP {listen}" in text, text
        assert warning in text and text.count("listening on TCP") == 1
        assert "claim any agent_id" in text
        address = lines[-1].split("registry serving on ", 1)[1].split()[0]
        port = address.rsplit(":", 1)[1]
        listening = subprocess.run(
            ["nsenter", "-t", str(proc.pid), "-n", "ss", "-Hltn"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert f":{port} " in listening.stdout, listening.stdout


@pytest.mark.parametrize(
    ("case", "mode", "owner", "message"),
    [
        (
            "serve-socket-dir-world-writable",
            0o777,
            0,
            f"is writable by group or others (mode 0777): {REPLACE}",
        ),
        (
            "serve-socket-dir-group-writable",
            0o775,
            0,
            f"is writable by group or others (mode 0775): {REPLACE}",
        ),
        (
            "serve-socket-dir-other-owner",
            0o755,
            65534,
            "belongs to uid 65534: its owner could replace the registry's socket",
        ),
    ],
)
def test_serve_refuses_a_socket_dir_others_control(
    case: str, mode: int, owner: int, message: str, tmp_path: Path, host: Path
) -> None:
    if owner and os.geteuid() != 0:
        pytest.skip("chown needs root")
    directory = tmp_path / "sock"
    directory.mkdir()
    directory.chmod(mode)
    if owner:
        os.chown(directory, owner, owner)
    result = aios(
        "registry",
        "serve",
        "--listen",
        f"unix://{directory}/r.sock",
        "--state-dir",
        str(tmp_path / "state"),
        "--root",
        str(tmp_path / "root"),
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == f"Error: socket directory {directory} {message}; " + (
        "use a directory of your own" if owner else "use a directory only its owner can write"
    )
    assert "Traceback" not in result.stderr
    assert list(directory.iterdir()) == []


def test_serve_refuses_a_socket_a_live_registry_serves(tmp_path: Path, host: Path) -> None:
    """A second registry must not unlink a live socket and take its clients over."""
    import socket

    directory = tmp_path / "sock"
    directory.mkdir(mode=0o700)
    path = directory / "r.sock"
    with socket.socket(socket.AF_UNIX) as live:
        live.bind(str(path))
        live.listen(1)
        before = path.stat().st_ino
        result = aios(
            "registry",
            "serve",
            "--listen",
            f"unix://{path}",
            "--state-dir",
            str(tmp_path / "state"),
            "--root",
            str(tmp_path / "root"),
        )
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == f"Error: another process already serves on {path}"
        assert path.stat().st_ino == before


def test_serve_refuses_to_replace_another_users_socket(tmp_path: Path, host: Path) -> None:
    """In a sticky shared directory (like /tmp) a stale socket or link another user left
    is not ours to remove: a clear refusal, not a PermissionError traceback."""
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o1777)
    path = directory / "r.sock"
    path.symlink_to(tmp_path / "elsewhere")
    os.lchown(path, 65534, 65534)
    result = aios(
        "registry", "serve", "--listen", f"unix://{path}",
        "--state-dir", str(tmp_path / "state"), "--root", str(tmp_path / "root"),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"Error: {path} belongs to uid 65534, not to this registry: refusing to replace it; "
        "remove it or listen on a path in a directory of your own"
    )
    assert path.is_symlink() and path.lstat().st_uid == 65534


# -- the audit chain -------------------------------------------------------------------


@pytest.fixture
async def state(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    log = AuditLog(directory)
    for i in range(1, 6):
        await log.append(entry(i))
    log.close()
    return directory


def sql(state: Path, statement: str, *params: object) -> None:
    """Edit the database as an attacker with write access would (triggers dropped)."""
    conn = sqlite3.connect(state / "audit.db")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    conn.execute(statement, params)
    conn.commit()
    conn.close()


def head_of(state: Path) -> dict[str, object]:
    data = json.loads((state / "audit.head").read_text())
    assert isinstance(data, dict)
    return data


def rechain(state: Path, *, first: int, sign: Callable[[str, dict[str, object]], str]) -> str:
    """Recompute prev_hash/hash from row `first` on with `sign`; returns the last hash."""
    table = rows(state)
    prev = GENESIS
    for row in table:
        if row["id"] >= first:
            digest = sign(prev, {**row, "prev_hash": prev})
            sql(
                state,
                "UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?",
                prev,
                digest,
                row["id"],
            )
            prev = digest
        else:
            prev = row["hash"]
    return prev


def _sha_chain(prev: str, row: dict[str, object]) -> str:
    return row_hash(prev, row)


ATTACKER_KEY = bytes(range(32))


def _guessed_key(prev: str, row: dict[str, object]) -> str:
    return row_mac(ATTACKER_KEY, prev, row)


# Each tamper returns the expected problem text (after "audit log STATE: ").
def rewritten_rechained_sha(state: Path) -> str:
    sql(state, "UPDATE audit_log SET success = 0, reason = 'nothing happened' WHERE id = 3")
    rechain(state, first=3, sign=_sha_chain)
    return "row 3: hash mismatch (row edited, or rewritten and rechained without the audit key)"


def rewritten_rechained_guessed_key(state: Path) -> str:
    sql(state, "UPDATE audit_log SET agent = 'task-agent' WHERE id = 2")
    rechain(state, first=2, sign=_guessed_key)
    return "row 2: hash mismatch (row edited, or rewritten and rechained without the audit key)"


def rewritten_rechained_head_too(state: Path) -> str:
    sql(state, "UPDATE audit_log SET tool = 'fs.read' WHERE id = 5")
    last = rechain(state, first=5, sign=_sha_chain)
    head = head_of(state)
    forged = {**head, "hash": last}
    forged["mac"] = hmac.new(ATTACKER_KEY, json.dumps(forged).encode(), hashlib.sha256).hexdigest()
    (state / "audit.head").write_text(json.dumps(forged))
    return (
        "head file audit.head fails its MAC: it was forged or rewritten, or audit.key is not "
        "the key this log was written with"
    )


def edited_in_place(state: Path) -> str:
    sql(state, "UPDATE audit_log SET duration_ms = 0 WHERE id = 4")
    return "row 4: hash mismatch (row edited, or rewritten and rechained without the audit key)"


def inserted_middle(state: Path) -> str:
    table = rows(state)
    forged = {**table[1], "id": 3, "execution_id": "forged", "prev_hash": table[1]["hash"]}
    forged["hash"] = row_hash(forged["prev_hash"], forged)
    sql(state, "UPDATE audit_log SET id = id + 100 WHERE id > 2")
    sql(
        state,
        f"INSERT INTO audit_log ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})",
        *forged.values(),
    )
    return "row 3: hash mismatch (row edited, or rewritten and rechained without the audit key)"


def appended(state: Path) -> str:
    last = rows(state)[-1]
    forged = {**last, "id": 6, "execution_id": "forged", "prev_hash": last["hash"]}
    forged["hash"] = row_mac(ATTACKER_KEY, last["hash"], forged)
    sql(
        state,
        f"INSERT INTO audit_log ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})",
        *forged.values(),
    )
    return "row 6: hash mismatch (row edited, or rewritten and rechained without the audit key)"


def deleted_middle(state: Path) -> str:
    sql(state, "DELETE FROM audit_log WHERE id = 2")
    return (
        "row 3: chain break: prev_hash does not match the hash of the row before it "
        "(a row was inserted or deleted)"
    )


def deleted_last(state: Path) -> str:
    table = rows(state)
    sql(state, "DELETE FROM audit_log WHERE id = 5")
    return (
        f"table has 4 rows ending in {table[3]['hash'][:16]}, head file says 5 rows ending in "
        f"{table[4]['hash'][:16]} (rows deleted, the last one included)"
    )


def deleted_last_head_unkeyed(state: Path) -> str:
    table = rows(state)
    sql(state, "DELETE FROM audit_log WHERE id = 5")
    (state / "audit.head").write_text(
        json.dumps({"rows": 4, "hash": table[3]["hash"], "last_id": 4})
    )
    return (
        "head file audit.head has no MAC although audit.key exists: the head was replaced by "
        "an unkeyed one"
    )


def deleted_last_head_resigned(state: Path) -> str:
    table = rows(state)
    sql(state, "DELETE FROM audit_log WHERE id = 5")
    head = {**head_of(state), "rows": 4, "hash": table[3]["hash"], "last_id": 4}
    from registry.server.audit import Head

    head["mac"] = head_mac(ATTACKER_KEY, Head(4, table[3]["hash"], 4, 1))
    (state / "audit.head").write_text(json.dumps(head))
    return (
        "head file audit.head fails its MAC: it was forged or rewritten, or audit.key is not "
        "the key this log was written with"
    )


def everything_deleted_but_the_key(state: Path) -> str:
    sql(state, "DELETE FROM audit_log")
    (state / "audit.head").unlink()
    return "head file audit.head is missing"


def downgraded_to_unkeyed(state: Path) -> str:
    sql(state, "UPDATE audit_log SET reason = 'rewritten' WHERE id = 1")
    last = rechain(state, first=1, sign=_sha_chain)
    (state / KEY_NAME).unlink()
    (state / "audit.head").write_text(json.dumps({"rows": 5, "hash": last, "last_id": 5}))
    return (
        "unkeyed audit log (written before audit keys; no audit.key): its 5 rows form an intact "
        "SHA-256 chain, but anyone who can write the state dir could have rewritten and "
        "rechained them; start this version's registry once on this state dir to key it "
        "(the rows so far are then anchored under the new key)"
    )


def _bad_head(detail: str) -> Callable[[Path], str]:
    def expect(state: Path) -> str:
        return (
            f"head file {state / 'audit.head'} is not a valid audit head ({detail}): it was "
            "truncated or overwritten; the log cannot be trusted past its last verified row "
            "(`aios registry audit verify`), and to start a new log, stop the registry and "
            "move audit.db and audit.head aside"
        )

    return expect


def _write(name: str, data: bytes, then: Callable[[Path], str]) -> Callable[[Path], str]:
    def tamper(state: Path) -> str:
        (state / name).write_bytes(data)
        return then(state)

    return tamper


def head_truncated(state: Path) -> str:
    text = (state / "audit.head").read_bytes()
    (state / "audit.head").write_bytes(text[: len(text) // 2])
    try:
        json.loads(text[: len(text) // 2])
    except ValueError as exc:
        return _bad_head(str(exc))(state)
    raise AssertionError("half a head parsed")


def head_directory(state: Path) -> str:
    (state / "audit.head").unlink()
    (state / "audit.head").mkdir()
    return f"head file {state / 'audit.head'} cannot be read: Is a directory"


def head_wrong_type(state: Path) -> str:
    (state / "audit.head").write_text(json.dumps({**head_of(state), "rows": "5"}))
    return _bad_head("'rows' must be an integer >= 0, found '5'")(state)


def head_bad_mac(state: Path) -> str:
    (state / "audit.head").write_text(json.dumps({**head_of(state), "mac": "zz"}))
    return _bad_head("'mac' must be a SHA-256 hex digest, found 'zz'")(state)


def key_missing(state: Path) -> str:
    (state / KEY_NAME).unlink()
    return (
        f"audit key {state / KEY_NAME} is missing: the log's rows cannot be checked without the "
        "key it was written with (restore audit.key from a backup; to start a new log, stop "
        "the registry and move audit.db and audit.head aside)"
    )


def _key_garbage(data: bytes) -> Callable[[Path], str]:
    def tamper(state: Path) -> str:
        (state / KEY_NAME).write_bytes(data)
        return (
            f"audit key {state / KEY_NAME} is not an audit key (64 lowercase hex digits "
            f"expected, found {len(data)} bytes): restore it from a backup, or to start a new "
            "log, stop the registry and move audit.db and audit.head aside"
        )

    return tamper


def key_wrong(state: Path) -> str:
    (state / KEY_NAME).write_text(os.urandom(32).hex() + "\n")
    return (
        "head file audit.head fails its MAC: it was forged or rewritten, or audit.key is not "
        "the key this log was written with"
    )


def key_world_readable(state: Path) -> str:
    (state / KEY_NAME).chmod(0o644)
    return (
        f"audit key {state / KEY_NAME} is accessible by group or others (mode 0644): whoever "
        "read it can forge rows; chmod 600 it and treat rows written since as unproven"
    )


def _key_symlink(target: Callable[[Path], Path]) -> Callable[[Path], str]:
    def tamper(state: Path) -> str:
        key = state / KEY_NAME
        aside = state.parent / "aside.key"
        key.rename(aside)
        key.symlink_to(target(state))
        return f"audit key {key} is a symbolic link; refusing to follow it"

    return tamper


def _not_a_log(detail: str) -> Callable[[Path], str]:
    def expect(state: Path) -> str:
        return (
            f"audit database {state / 'audit.db'} is not a readable sqlite audit log ({detail}): "
            "restore it from a backup, or to start a new log, stop the registry and move "
            "audit.db and audit.head aside"
        )

    return expect


def db_truncated(state: Path) -> str:
    db = state / "audit.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    data = db.read_bytes()
    assert len(data) > 8192
    db.write_bytes(data[:4096] + b"\xa5" * 100)
    return _not_a_log("database disk image is malformed")(state)


def db_no_table(state: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        (state / f"audit.db{suffix}").unlink(missing_ok=True)
    sqlite3.connect(state / "audit.db").close()
    return (
        f"audit database {state / 'audit.db'} has no audit_log table: to start a new log, stop "
        "the registry and move audit.db and audit.head aside"
    )


def db_missing_column(state: Path) -> str:
    conn = sqlite3.connect(state / "audit.db")
    conn.execute("ALTER TABLE audit_log DROP COLUMN target")
    conn.close()
    return (
        f"audit database {state / 'audit.db'}: table audit_log lacks column(s) target (it was "
        "altered): restore it from a backup, or to start a new log, stop the registry and move "
        "audit.db and audit.head aside"
    )


def db_missing(state: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        (state / f"audit.db{suffix}").unlink(missing_ok=True)
    return f"no audit database at {state / 'audit.db'}"


def db_directory(state: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        (state / f"audit.db{suffix}").unlink(missing_ok=True)
    (state / "audit.db").mkdir()
    return f"audit database {state / 'audit.db'} is not a regular file"


def _db_garbage(data: bytes) -> Callable[[Path], str]:
    def tamper(state: Path) -> str:
        for suffix in ("-wal", "-shm"):
            (state / f"audit.db{suffix}").unlink(missing_ok=True)
        (state / "audit.db").write_bytes(data)
        return _not_a_log("file is not a database")(state)

    return tamper


TAMPERS: dict[str, Callable[[Path], str]] = {
    "serve-audit-row-rewritten-rechained-sha256": rewritten_rechained_sha,
    "serve-audit-row-rewritten-rechained-guessed-key": rewritten_rechained_guessed_key,
    "serve-audit-row-rewritten-rechained-head-forged": rewritten_rechained_head_too,
    "serve-audit-row-edited-in-place": edited_in_place,
    "serve-audit-row-inserted-middle": inserted_middle,
    "serve-audit-row-appended": appended,
    "serve-audit-row-deleted-middle": deleted_middle,
    "serve-audit-row-deleted-last": deleted_last,
    "serve-audit-row-deleted-last-head-unkeyed": deleted_last_head_unkeyed,
    "serve-audit-row-deleted-last-head-resigned": deleted_last_head_resigned,
    "serve-audit-all-deleted-key-kept": everything_deleted_but_the_key,
    "serve-audit-downgraded-to-unkeyed": downgraded_to_unkeyed,
    "serve-audit-head-garbage": _write(
        "audit.head", b"\x89PNG\r\n\x1a\n\xff\xfe garbage", _bad_head("not UTF-8 text")
    ),
    "serve-audit-head-empty": _write(
        "audit.head", b"", _bad_head("Expecting value: line 1 column 1 (char 0)")
    ),
    "serve-audit-head-truncated": head_truncated,
    "serve-audit-head-json-array": _write(
        "audit.head", b"[5]", _bad_head("a JSON object is expected, found list")
    ),
    "serve-audit-head-nul": _write(
        "audit.head",
        b'{"rows": 5\x00}',
        _bad_head("Expecting ',' delimiter: line 1 column 11 (char 10)"),
    ),
    "serve-audit-head-wrong-type": head_wrong_type,
    "serve-audit-head-bad-mac": head_bad_mac,
    "serve-audit-head-directory": head_directory,
    "serve-audit-key-missing": key_missing,
    "serve-audit-key-garbage": _key_garbage(b"\x00\x01not a key\n"),
    "serve-audit-key-empty": _key_garbage(b""),
    "serve-audit-key-short": _key_garbage(b"ab" * 31 + b"\n"),
    "serve-audit-key-wrong": key_wrong,
    "serve-audit-key-world-readable": key_world_readable,
    "serve-audit-key-symlink-absolute": _key_symlink(lambda state: state.parent / "aside.key"),
    "serve-audit-key-symlink-relative": _key_symlink(lambda state: Path("../aside.key")),
    "serve-audit-db-garbage": _db_garbage(os.urandom(3000)),
    "serve-audit-db-text": _db_garbage(b"SQLite format 2\x00 but not really\n" * 40),
    "serve-audit-db-truncated": db_truncated,
    "serve-audit-db-no-table": db_no_table,
    "serve-audit-db-missing-column": db_missing_column,
    "serve-audit-db-missing": db_missing,
    "serve-audit-db-directory": db_directory,
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_audit_verify_detects_tampering(case: str, state: Path, host: Path) -> None:
    ok = aios("registry", "audit", "verify", "--state-dir", str(state))
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 5 rows, head "), ok.stderr
    problem = TAMPERS[case](state)
    result = aios("registry", "audit", "verify", "--state-dir", str(state))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr == f"audit log {state}: {problem}\n"
    assert "Traceback" not in result.stderr


# The writer refuses to continue a tampered log (it would vouch for it); garbage that
# verify reports must not crash `serve` either.
SERVE_REFUSES = {
    "serve-audit-writer-head-forged": "head-forged",
    "serve-audit-writer-head-unkeyed": "head-unkeyed",
    "serve-audit-writer-head-missing": "head-missing",
    "serve-audit-writer-head-garbage": "head-garbage",
    "serve-audit-writer-key-missing": "key-missing",
    "serve-audit-writer-key-world-readable": "key-world-readable",
    "serve-audit-writer-key-other-owner": "key-other-owner",
    "serve-audit-writer-db-garbage": "db-garbage",
}


def _serve_tamper(kind: str, state: Path) -> str:
    head = state / "audit.head"
    if kind == "head-forged":
        head.write_text(json.dumps({**head_of(state), "rows": 4}))
        return f"head file {head} fails its MAC"
    if kind == "head-unkeyed":
        data = head_of(state)
        head.write_text(json.dumps({k: data[k] for k in ("rows", "hash", "last_id")}))
        return f"head file {head} has no MAC although audit.key exists"
    if kind == "head-missing":
        head.unlink()
        return f"head file {head} is missing although audit.key exists"
    if kind == "head-garbage":
        head.write_bytes(b"\xff\x00")
        return f"head file {head} is not a valid audit head (not UTF-8 text)"
    if kind == "key-missing":
        (state / KEY_NAME).unlink()
        return f"audit key {state / KEY_NAME} is missing"
    if kind == "key-world-readable":
        (state / KEY_NAME).chmod(0o604)
        return f"audit key {state / KEY_NAME} is accessible by group or others (mode 0604)"
    if kind == "key-other-owner":
        os.chown(state / KEY_NAME, 65534, 65534)
        return f"audit key {state / KEY_NAME} belongs to uid 65534, not to this registry (uid 0)"
    assert kind == "db-garbage"
    for suffix in ("-wal", "-shm"):
        (state / f"audit.db{suffix}").unlink(missing_ok=True)
    (state / "audit.db").write_bytes(b"\x00garbage" * 100)
    return f"audit database {state / 'audit.db'} is not a readable sqlite audit log"


@pytest.mark.parametrize("case", sorted(SERVE_REFUSES))
def test_serve_refuses_to_continue_a_tampered_log(
    case: str, state: Path, tmp_path: Path, host: Path
) -> None:
    kind = SERVE_REFUSES[case]
    if kind == "key-other-owner" and os.geteuid() != 0:
        pytest.skip("chown needs root")
    expected = _serve_tamper(kind, state)
    before = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()}
    sock = tmp_path / "sock"
    sock.mkdir(mode=0o700)
    result = aios(
        "registry",
        "serve",
        "--listen",
        f"unix://{sock}/r.sock",
        "--state-dir",
        str(state),
        "--root",
        str(tmp_path / "root"),
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"Error: {expected}"), result.stderr
    assert "Traceback" not in result.stderr
    after = {p.name: p.read_bytes() for p in state.iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k in before} == before, "the log was changed"
    assert list(sock.iterdir()) == []
