"""State-store failures through the real `aios` CLI: one clear line, exit 1, nothing lost.

Each case breaks a state directory the way the issue found it broken (corrupt,
truncated, emptied, a directory or a link where the database or the writer
lock should be, a state directory under a regular file or on /proc or /sys,
busy, read-only, full, full in the middle of an apply, eight first runs at
once) and runs the real CLI (`python -m reconciler.cli.main`) as a subprocess.
Each asserts the exact refusal, exit 1 and no traceback, and that nothing
outside changed: the state directory byte for byte and mode for mode (history
is never deleted or rewritten), the registry's scratch root (the target: a
refused apply fetched nothing), a sentinel "host" directory, and this
process's mounts under the test's directories, /proc and /sys. Read-only and
full file systems exist only in a private mount namespace held by a `sleep`
(`unshare -m --propagation private`), where aios runs through nsenter. Applies go to a real registry
(`aios registry serve` over a scratch root; only the model tools are called)
that fetches GGUF files from a file server in this process, whose handler can
fill the disk while the step runs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

from reconciler.engine.store import MARKER_NAME, TABLES, ResourceStatus, Store
from sandbox import demo, fileserver

REPO = Path(__file__).resolve().parents[2]
MODEL_SIZE = 200 * 1024
MODELS_DIR = "/var/lib/aios/models"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")


# --- the world: a registry over a scratch root, a model server, the CLI -------------------


class HookHandler(fileserver.Handler):
    """The file server's handler: records every request and runs a hook for a path."""

    requests: ClassVar[list[str]] = []
    hooks: ClassVar[dict[str, Callable[[], None]]] = {}

    def _serve(self, *, body: bool) -> None:
        type(self).requests.append(self.path)
        hook = type(self).hooks.get(self.path)
        if hook is not None:
            hook()
        super()._serve(body=body)


@dataclass
class World:
    registry: str  # unix://... of the registry
    root: Path  # its scratch root: the target
    www: Path
    base_url: str
    sentinel: Path  # a "host" directory nothing may touch
    env: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"registry:{self.registry}"

    def model(self, name: str) -> tuple[str, str]:
        """A GGUF file the server offers: (url, sha256)."""
        with (self.www / f"{name}.gguf").open("wb") as f:
            for piece in demo.gguf_chunks(name, MODEL_SIZE):
                f.write(piece)
        return f"{self.base_url}/{name}.gguf", demo.gguf_sha256(name, MODEL_SIZE)

    def specs(self, directory: Path, resource: str, *models: str) -> Path:
        """A Models spec `resource` declaring `models` (written to `directory`)."""
        directory.mkdir(parents=True, exist_ok=True)
        items = []
        for name in models:
            url, sha = self.model(name)
            items.append(f"    - name: {name}\n      source: {url}\n      sha256: {sha}\n")
        (directory / "models.yaml").write_text(
            f"apiVersion: aios.dev/v1\nkind: Models\nmetadata: {{name: {resource}}}\n"
            f"spec:\n  directory: {MODELS_DIR}\n  models:\n" + "".join(items)
        )
        return directory

    def fetched(self, name: str) -> bool:
        return any(p.endswith(f"/{name}.gguf") for p in HookHandler.requests)

    def placed(self, name: str) -> Path:
        return self.root / MODELS_DIR.lstrip("/") / f"{name}.gguf"

    def aios(
        self, *args: str, ns: int | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "reconciler.cli.main", *args]
        if ns is not None:
            argv = ["nsenter", "-t", str(ns), "-m", *argv]
        return subprocess.run(
            argv, capture_output=True, text=True, cwd=REPO, env=self.env | (env or {}),
            timeout=180, check=False,
        )  # fmt: skip

    def read(
        self, command: str, state: Path, *, ns: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`aios status` or `aios history` of this registry's target in `state`."""
        return self.aios(command, "--state-dir", str(state), "--registry", self.registry, ns=ns)

    def apply(
        self, specs: Path, state: Path | str, *, ns: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.aios(
            "apply", "-f", str(specs), "--registry", self.registry, "--state-dir", str(state),
            "--yes", ns=ns,
        )  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("store-world")
    root, www, sentinel = base / "root", base / "www", base / "host"
    for directory in (root, www, sentinel):
        directory.mkdir()
    (sentinel / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (sentinel / "passwd").chmod(0o644)
    env = {k: v for k, v in os.environ.items() if k not in ("AIOS_TOOLS_ADDR", "AIOS_STATE_DIR")}
    env |= {"AIOS_WARM": "0", "AIOS_CONFIG": str(base / "no-config.yaml")}
    with tempfile.TemporaryDirectory(prefix="aios-store-") as short:
        socket = Path(short) / "registry.sock"
        log = (base / "registry.log").open("w")
        server = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli.main", "registry", "serve",
             "--listen", f"unix://{socket}", "--root", str(root),
             "--state-dir", str(base / "registry")],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not socket.exists():
                assert server.poll() is None, (base / "registry.log").read_text()
                assert time.monotonic() < deadline, "the registry never listened"
                time.sleep(0.05)
            with fileserver.serve(www, handler=HookHandler) as url:
                yield World(f"unix://{socket}", root, www, url, sentinel, env)
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()


def tree(top: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under `top`: mode and content (a link's target), for exact comparison."""
    out: dict[str, tuple[int, bytes]] = {}
    if not os.path.lexists(top):
        return out
    for path in [top, *sorted(top.rglob("*"))]:
        info = path.lstat()
        if path.is_symlink():
            data = os.fsencode(path.readlink())
        elif path.is_file():
            data = path.read_bytes()
        else:
            data = b""
        out[str(path.relative_to(top))] = (info.st_mode, data)
    return out


def history_files(top: Path, *, unread: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a state directory records: every table but the derived cache, row by row,
    and the marker and lock byte for byte (sqlite's -wal/-shm and the cache may change)."""
    data = bytearray((top / "reconciler.db").read_bytes())
    data[18:20] = b"\x01\x01"  # read the copy in rollback mode (WAL needs a file)
    conn = sqlite3.connect(":memory:")  # a copy: sqlite would resolve /proc/PID/root
    try:
        conn.deserialize(bytes(data))
        recorded: dict[str, Any] = {
            table: sorted(tuple(map(str, row)) for row in conn.execute(f"select * from [{table}]"))
            for table in TABLES
            if table != "cache" and table not in unread
        }
    finally:
        conn.close()
    for name in (MARKER_NAME, "writer.lock"):
        path = top / name
        recorded[name] = tree(path).get(".")
    return recorded


def mounts_under(*tops: Path) -> list[str]:
    """This process's mount points under `tops` (other work on the machine may mount elsewhere)."""
    points = [line.split(" ")[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    return [p for p in points if any(p == str(t) or p.startswith(f"{t}/") for t in tops)]


@pytest.fixture(autouse=True)
def host_unchanged(world: World, tmp_path: Path) -> Iterator[None]:
    """No mount of the test reaches this process's namespace; the sentinel stays as it was."""
    tops = (tmp_path, world.root.parent, Path("/proc"), Path("/sys"))
    mounts = mounts_under(*tops)
    sentinel = tree(world.sentinel)
    yield
    assert mounts_under(*tops) == mounts, "a mount reached the host"
    assert tree(world.sentinel) == sentinel


def refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 1, no traceback, the last stderr line the aios message holding every needle."""
    shown = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 1, shown
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, shown
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("aios: "), shown
    for needle in needles:
        assert needle in line, f"{needle!r} not in:\n{line}"
    return line


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def populate(state: Path, target: str, resource: str = "Models/kept") -> None:
    """A state directory with one generation and one Ready resource, through the store."""
    store = Store(state)
    document = {
        "apiVersion": "aios.dev/v1",
        "kind": "Models",
        "metadata": {"name": resource.split("/")[1]},
        "spec": {"models": []},
    }
    store.add_generation(target, "d" * 64, [document])
    ready = {"type": "Ready", "status": "True", "reason": "Reconciled"}
    store.put_status(target, ResourceStatus(resource, "models", 1, "r1", (ready,), ()))
    store.close()


# --- a broken state directory: every command refuses it, nothing is touched --------------


@dataclass(frozen=True)
class Broken:
    """How to break a state directory; `where` is the --state-dir (or AIOS_STATE_DIR)."""

    make: Callable[[Path, Path], None]  # (state dir, test tmp) -> None
    needles: tuple[str, ...]
    where: str = "{state}"
    via_env: bool = False


def _replace_db(data: Callable[[bytes], bytes]) -> Callable[[Path, Path], None]:
    def make(state: Path, tmp: Path) -> None:
        db = state / "reconciler.db"
        db.write_bytes(data(db.read_bytes()))

    return make


def _drop_tables(state: Path, tmp: Path) -> None:
    conn = sqlite3.connect(state / "reconciler.db")
    for table in TABLES:
        conn.execute(f"drop table [{table}]")
    conn.execute("create table notes (text)")
    conn.commit()
    conn.close()


def _db_dir(state: Path, tmp: Path) -> None:
    (state / "reconciler.db").unlink()
    (state / "reconciler.db").mkdir()
    (state / "reconciler.db" / "keep").write_text("x")


def _db_link(target: Callable[[Path], str]) -> Callable[[Path, Path], None]:
    def make(state: Path, tmp: Path) -> None:
        (state / "reconciler.db").unlink()
        (state / "reconciler.db").symlink_to(target(tmp))

    return make


def _legacy_empty(state: Path, tmp: Path) -> None:  # from before the marker; applied once
    (state / MARKER_NAME).unlink()
    (state / "writer.lock").write_text("pid 1")
    (state / "reconciler.db").write_bytes(b"")


def _file_at(state: Path, tmp: Path) -> None:
    (tmp / "file").write_text("a regular file\n")


def _nothing(state: Path, tmp: Path) -> None:
    pass


CORRUPT = "is corrupt ("
HEADER = "is corrupt (file is not a database: it lacks the SQLite header); aios changed nothing"
EMPTIED = "aios will not start again at generation 0 and forget what it created"
GONE = f"/aios-store-test-{uuid.uuid4().hex[:8]}"
BROKEN: dict[str, Broken] = {
    "store-corrupt-garbage": Broken(_replace_db(lambda d: b"garbage\n" * 512), (HEADER,)),
    "store-corrupt-nul-bytes": Broken(_replace_db(lambda d: bytes(len(d))), (HEADER,)),
    "store-corrupt-other-format": Broken(
        _replace_db(lambda d: b"SQLite format 2\x00" + d[16:]), (HEADER,)
    ),
    "store-corrupt-short": Broken(_replace_db(lambda d: d[:50]), (HEADER,)),
    "store-truncated-to-header": Broken(
        _replace_db(lambda d: d[:100]), ("is corrupt (truncated: 100 bytes where its header",)
    ),
    "store-truncated-half": Broken(
        _replace_db(lambda d: d[: len(d) // 2]), ("is corrupt (truncated: ", "mv ")
    ),
    "store-malformed-page": Broken(  # page 2: the generations table's root
        _replace_db(lambda d: d[:4096] + b"\xff" * 4096 + d[8192:]),
        (CORRUPT + "database disk image is malformed); aios changed nothing",),
    ),
    "store-zero-byte": Broken(
        _replace_db(lambda d: b""), ("reconciler.db is empty (0 bytes), but", MARKER_NAME, EMPTIED)
    ),
    "store-zero-byte-legacy": Broken(
        _legacy_empty, ("is empty (0 bytes), but", "writer.lock shows aios applied", EMPTIED)
    ),
    "store-missing-db": Broken(
        lambda s, t: (s / "reconciler.db").unlink(), ("reconciler.db is missing, but", EMPTIED)
    ),
    "store-no-tables": Broken(
        _drop_tables, ("has lost its table(s) generations, inventory, but", EMPTIED)
    ),
    "store-db-is-directory": Broken(_db_dir, ("reconciler.db is a directory, not a database",)),
    "store-db-dangling-absolute-link": Broken(
        _db_link(lambda t: str(t / "host-new.db")), ("is a symbolic link to /", "does not exist")
    ),
    "store-db-dangling-relative-link": Broken(
        _db_link(lambda t: "../../x/new.db"), ("is a symbolic link to ../../x/new.db, which",)
    ),
    "store-dir-under-file": Broken(
        _file_at,
        ("cannot create state directory", "/file is a file, not a directory"),
        where="{tmp}/file/state",
    ),
    "store-dir-under-file-deep": Broken(
        _file_at, ("/file/a/b/c: ", "/file is a file, not a directory"), where="{tmp}/file/a/b/c"
    ),
    "store-dir-is-file": Broken(
        _file_at, ("/file exists and is not a directory",), where="{tmp}/file", via_env=True
    ),
    "store-dir-proc-new": Broken(
        _nothing, (f"/proc{GONE} is on a proc file system",), where=f"/proc{GONE}"
    ),
    "store-dir-proc-existing": Broken(
        _nothing, ("/proc/sys is on a proc file system",), where="/proc/sys"
    ),
    "store-dir-proc-self": Broken(
        _nothing, ("/proc/self/fdinfo is on a proc file system",), where="/proc/self/fdinfo"
    ),
    "store-dir-sysfs-new": Broken(
        _nothing, (f"/sys{GONE} is on a sysfs file system",), where=f"/sys{GONE}"
    ),
    "store-dir-sysfs-existing": Broken(
        _nothing, ("/sys/kernel is on a sysfs file system",), where="/sys/kernel"
    ),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_a_broken_state_directory_is_refused_by_every_command(
    world: World, tmp_path: Path, case: str
) -> None:
    broken = BROKEN[case]
    state = tmp_path / "state"
    populate(state, world.target)
    broken.make(state, tmp_path)
    where = broken.where.format(state=state, tmp=tmp_path)
    model = f"m-{case}"
    specs = world.specs(tmp_path / "specs", "broken", model)
    before, outside = tree(state), tree(tmp_path / "x")
    flag = ["--registry", world.registry] + ([] if broken.via_env else ["--state-dir", where])
    env = {"AIOS_STATE_DIR": where} if broken.via_env else {}
    for args in (
        ["status", *flag],
        ["history", *flag],
        ["apply", "-f", str(specs), "--registry", world.registry, "--yes", *flag],
    ):
        refused(world.aios(*args, env=env), *broken.needles)
    assert tree(state) == before, "the state directory was changed"
    assert tree(tmp_path / "x") == outside and not (tmp_path / "host-new.db").exists()
    assert not world.fetched(model) and not world.placed(model).exists(), "the target changed"
    assert not os.path.lexists(f"/proc{GONE}") and not os.path.lexists(f"/sys{GONE}")


# --- the writer lock is not a lock file: apply refuses before the target --------------------


def _link_to_sentinel(relative: bool, name: str = "passwd") -> Callable[[Path, World], None]:
    def plant(lock: Path, world: World) -> None:
        target = world.sentinel / name
        lock.symlink_to(os.path.relpath(target, lock.parent) if relative else target)

    return plant


LOCKS: dict[str, tuple[Callable[[Path, World], None], str]] = {
    "store-lock-directory": (
        lambda lock, world: lock.mkdir(),
        "writer.lock is a directory, not a file; aios changed nothing",
    ),
    "store-lock-absolute-link": (_link_to_sentinel(False), "writer.lock is a symbolic link (to /"),
    "store-lock-relative-link": (_link_to_sentinel(True), "writer.lock is a symbolic link (to ../"),
    "store-lock-dangling-link": (
        _link_to_sentinel(False, "new-file"),
        "and wrote nothing through it",
    ),
}


@pytest.mark.parametrize("case", list(LOCKS), ids=list(LOCKS))
def test_a_lock_path_that_is_no_lock_file_is_refused(
    world: World, tmp_path: Path, case: str
) -> None:
    plant, needle = LOCKS[case]
    state = tmp_path / "state"
    populate(state, world.target)
    plant(state / "writer.lock", world)
    model = f"m-{case}"
    before = history_files(state)
    refused(world.apply(world.specs(tmp_path / "specs", "lock", model), state), needle)
    assert ok(world.read("status", state))
    assert history_files(state) == before
    assert not world.fetched(model) and not world.placed(model).exists()
    assert not (world.sentinel / "new-file").exists()


def test_a_damaged_page_no_read_touches_is_found_before_an_apply(
    world: World, tmp_path: Path
) -> None:
    """store-damaged-unread-page: the journal's root page is garbage; status and history
    (which never read it) work, and apply's integrity check refuses before the target."""
    state = tmp_path / "state"
    populate(state, world.target)
    db = state / "reconciler.db"
    conn = sqlite3.connect(db)
    (root,) = conn.execute("select rootpage from sqlite_master where name = 'journal'").fetchone()
    conn.close()
    data = db.read_bytes()
    db.write_bytes(data[: (root - 1) * 4096] + b"\xff" * 4096 + data[root * 4096 :])
    assert "Models/kept" in ok(world.read("status", state))
    assert "Models/kept" in ok(world.read("history", state))
    before = history_files(state, unread=("journal",))
    page = db.read_bytes()[(root - 1) * 4096 : root * 4096]
    model = "m-store-damaged-unread-page"
    refused(
        world.apply(world.specs(tmp_path / "specs", "damaged", model), state),
        f"state database {db} is corrupt (database disk image is malformed); aios changed "
        "nothing. Restore it from a backup",
    )
    assert not world.fetched(model) and not world.placed(model).exists()
    after = history_files(state, unread=("journal",))
    # refused before the writer lock's file is even made (the directory is as it was)
    assert after.get("writer.lock") is None and before.get("writer.lock") is None
    assert after == before, "what the database records was changed"
    assert db.read_bytes()[(root - 1) * 4096 : root * 4096] == page  # nor was the damage


# --- a busy database --------------------------------------------------------------------------


def test_a_busy_database_is_a_retryable_refusal(world: World, tmp_path: Path) -> None:
    """store-busy: another process holds the database exclusively for longer than 5 s."""
    state = tmp_path / "state"
    populate(state, world.target)
    before = history_files(state)
    holder = sqlite3.connect(state / "reconciler.db")
    holder.execute("pragma locking_mode=exclusive")
    holder.execute("begin exclusive")
    model = "m-store-busy"
    try:
        line = refused(
            world.apply(world.specs(tmp_path / "specs", "busy", model), state),
            "reconciler.db is busy: another process held it locked for more than 5 s",
        )
        assert line.endswith("(temporary; retrying may help)")
    finally:
        holder.rollback()
        holder.close()
    assert not world.fetched(model)
    status = ok(world.read("status", state))
    assert "Models/kept" in status
    assert history_files(state) == before


# --- eight first runs at once ----------------------------------------------------------------


def test_concurrent_first_runs_all_succeed(world: World, tmp_path: Path) -> None:
    """store-race-first-runs: 8 CLI runs on one fresh state directory, 4 rounds (the old
    check-then-create lost about one round in two: 'table [generations] already exists')."""
    for round_ in range(4):
        state = tmp_path / f"state{round_}"
        argv = [sys.executable, "-m", "reconciler.cli.main"]
        commands = [
            [*argv, ("status", "history")[i % 2], "--state-dir", str(state)] for i in range(8)
        ]
        pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
        procs = [subprocess.Popen(c, cwd=REPO, env=world.env, **pipes) for c in commands]
        outputs = [p.communicate(timeout=120) for p in procs]
        results = [(p.returncode, err) for p, (_, err) in zip(procs, outputs, strict=True)]
        assert results == [(0, "")] * 8, f"round {round_}: {results}"
        conn = sqlite3.connect(state / "reconciler.db")
        tables = {n for (n,) in conn.execute("select name from sqlite_master where type='table'")}
        conn.close()
        assert tables == set(TABLES) and (state / MARKER_NAME).is_file()


# --- read-only and full file systems, in a private mount namespace --------------------------


@pytest.fixture
def holder() -> Iterator[int]:
    """The pid of a `sleep` in a private mount namespace; every mount made there dies with it."""
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "infinity"])
    try:
        host = os.readlink("/proc/self/ns/mnt")
        deadline = time.monotonic() + 10
        while Path(f"/proc/{proc.pid}/comm").read_text().strip() != "sleep":
            assert time.monotonic() < deadline, "the holder never reached its namespace"
            time.sleep(0.01)
        assert os.readlink(f"/proc/{proc.pid}/ns/mnt") != host
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def in_ns(pid: int, *argv: str) -> None:
    subprocess.run(["nsenter", "-t", str(pid), "-m", *argv], check=True, capture_output=True)


def seen_by(pid: int, path: Path) -> Path:
    """`path` as the holder's mount namespace sees it."""
    return Path(f"/proc/{pid}/root{path}")


def fill(directory: Path) -> Path:
    """Write zeros into `directory` until its file system has not a byte left."""
    filler = directory / "filler"
    with filler.open("ab", buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)
    with pytest.raises(OSError) as full, (directory / "probe").open("ab", buffering=0) as f:
        f.write(b"\0")
    assert full.value.errno == errno.ENOSPC
    (directory / "probe").unlink()
    assert os.statvfs(directory).f_bavail == 0
    return filler


@pytest.mark.parametrize("what", ["store-readonly-dir", "store-readonly-db-file"])
def test_a_read_only_state_directory_reads_and_refuses_to_apply(
    world: World, tmp_path: Path, holder: int, what: str
) -> None:
    state = tmp_path / "state"
    first, second = f"m-{what}-1", f"m-{what}-2"
    ok(world.apply(world.specs(tmp_path / "a", "ro", first), state))
    before = history_files(state)
    bound = state if what == "store-readonly-dir" else state / "reconciler.db"
    in_ns(holder, "mount", "--bind", str(bound), str(bound))
    in_ns(holder, "mount", "-o", "remount,bind,ro", str(bound))
    status = ok(world.read("status", state, ns=holder))
    assert "Models/ro" in status and "Ready" in status
    assert "Models/ro" in ok(world.read("history", state, ns=holder))
    line = refused(
        world.apply(world.specs(tmp_path / "b", "ro", first, second), state, ns=holder),
        "cannot record this apply in ",
        "(Read-only file system). aios changed nothing on the target. Make ",
    )
    assert "temporary" not in line
    assert not world.fetched(second) and not world.placed(second).exists()
    assert world.placed(first).exists()
    assert history_files(state) == before


def test_a_full_disk_still_reads_and_an_apply_refuses_before_the_target(
    world: World, tmp_path: Path, holder: int
) -> None:
    """store-full-before-apply: status and history read a full state directory; an apply
    is refused before any step (nothing fetched); after space is freed it converges."""
    state = tmp_path / "state"
    state.mkdir()
    in_ns(holder, "mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(state))
    first, second = "m-full-before-1", "m-full-before-2"
    ok(world.apply(world.specs(tmp_path / "a", "full", first), state, ns=holder))
    inside = seen_by(holder, state)
    filler = fill(inside)
    before = history_files(inside)
    status = ok(world.read("status", state, ns=holder))
    assert "Models/full" in status and "Ready" in status
    assert "Models/full" in ok(world.read("history", state, ns=holder))
    specs = world.specs(tmp_path / "b", "full", first, second)
    line = refused(
        world.apply(specs, state, ns=holder),
        f"cannot record this apply in {state}/reconciler.db: the file system holding {state} "
        "is full (0 bytes free). aios changed nothing on the target. Free space there, then run "
        "the command again",
    )
    assert line.endswith("(temporary; retrying may help)")
    assert not world.fetched(second) and not world.placed(second).exists()
    assert history_files(inside) == before
    filler.unlink()
    assert "all resources Ready" in ok(world.apply(specs, state, ns=holder))
    assert world.placed(second).exists()
    assert not list(tmp_path.joinpath("state").iterdir()), "the tmpfs leaked to the host"


def test_a_disk_that_fills_during_an_apply_says_what_changed_and_what_was_lost(
    world: World, tmp_path: Path, holder: int
) -> None:
    """store-full-during-apply: the disk fills while model.fetch runs. The message says
    the target was changed and what was not recorded; history is kept; once space is
    freed the next apply re-observes (nothing fetched again) and every resource is Ready."""
    state = tmp_path / "state"
    state.mkdir()
    in_ns(holder, "mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(state))
    first, second = "m-full-during-1", "m-full-during-2"
    ok(world.apply(world.specs(tmp_path / "a", "during", first), state, ns=holder))
    inside = seen_by(holder, state)
    fillers: list[Path] = []
    specs = world.specs(tmp_path / "b", "during", first, second)
    HookHandler.hooks[f"/{second}.gguf"] = lambda: fillers.append(fill(inside))
    try:
        line = refused(
            world.apply(specs, state, ns=holder),
            "is full (0 bytes free). The target WAS changed: model.fetch (call 0 of models, "
            "execution ",
            "Not recorded: the journal entry 'done' of model.fetch (call 0 of models, ",
            "the inventory of objects it created, the resources' status, the run's outcome",
            "Free space there, then run the same `aios apply` again: it observes the target "
            "afresh and changes only what still differs",
        )
    finally:
        HookHandler.hooks.clear()
    assert line.endswith("(temporary; retrying may help)")
    assert fillers and world.placed(second).exists()  # the target was changed indeed
    fetches = HookHandler.requests.count(f"/{second}.gguf")
    for filler in fillers:
        filler.unlink(missing_ok=True)
    kept = history_files(inside)
    assert [g[1] for g in kept["generations"]][:1] == ["1"]
    assert ("started" in str(kept["journal"])) and kept["inventory"], "history was lost"
    assert "all resources Ready" in ok(world.apply(specs, state, ns=holder))
    after = history_files(inside)
    for table in ("generations", "inventory", "journal", "runs"):  # nothing deleted
        assert set(kept[table]) <= set(after[table]), table
    assert HookHandler.requests.count(f"/{second}.gguf") == fetches, "re-fetched, not re-observed"
    status = ok(world.read("status", state, ns=holder))
    assert "Models/during" in status and "NotReady" not in status
