"""The CLI against a daemon, and without one: real `python -m reconciler` processes.

With a daemon: FakeDaemon (tests/daemon_double, a test double of the daemon, not the
daemon) served by reconciler.daemon.api in a child process on `--api unix://…`; plans,
approve (stale: exit 3), reject, suspend, resume, events, reconcile, and apply, plan,
rollback and status routed through it (its output printed, its errors on stderr, its
exit code). Without one: the daemon-only commands say "no daemon answers at …" (exit
1), and apply, status run one-shot. Two CLIs without a daemon never run at once: the
second waits for the first's writer lock (saying whose), is bounded by
--lock-timeout, and goes on once the first dies (kill -9: the lock dies with it).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = """\
apiVersion: aios.dev/v1
kind: Firewall
metadata:
  name: host
spec:
  tables:
    - family: inet
      name: filter
      chains:
        - name: input
          type: filter
          hook: input
          priority: filter
          policy: accept
          rules:
            - iif lo accept
"""


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOS_")}
    env["AIOS_CONFIG"] = str(tmp / "no-config.yaml")  # never the host's /etc/aios
    return env


def aios(
    tmp: Path, *args: str, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        env=_env(tmp),
        cwd=REPO,
        timeout=timeout,
        input=stdin,
        check=False,
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    return directory


@pytest.fixture
def daemon(tmp_path: Path, run_dir: Path) -> Iterator[str]:
    """unix://… of a FakeDaemon served in a child process."""
    address = f"unix://{run_dir}/daemon.sock"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.daemon_double", address],
        cwd=REPO,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "serving"
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    directory = tmp_path / "specs"
    directory.mkdir()
    (directory / "firewall.yaml").write_text(SPEC)
    return directory


def test_daemon_only_commands(tmp_path: Path, daemon: str) -> None:
    api = ("--api", daemon)
    out = aios(tmp_path, "plans", *api)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("p-1  firewall  generation 7")
    assert "+ firewall.apply table inet f1" in out.stdout
    (row,) = json.loads(aios(tmp_path, "plans", "-o", "json", *api).stdout)
    assert (row["id"], row["resources"], row["plan"]) == ("p-1", ["Firewall/f1"], {"plan": 1})

    done = aios(tmp_path, "approve", "p-1", *api)
    assert (done.returncode, done.stdout) == (0, "approved p-1\n")
    stale = aios(tmp_path, "approve", "stale", *api)
    assert (stale.returncode, stale.stderr) == (3, "plan stale is stale\n")
    unknown = aios(tmp_path, "approve", "nope", *api)
    assert (unknown.returncode, unknown.stderr) == (1, "aios: no pending plan nope\n")
    assert aios(tmp_path, "reject", "p-1", *api).stdout == "rejected p-1\n"

    assert aios(tmp_path, "suspend", "Firewall/host", *api).stdout == "suspended Firewall/host\n"
    assert aios(tmp_path, "resume", "Firewall/host", *api).stdout == "resumed Firewall/host\n"
    again = aios(tmp_path, "resume", "Firewall/host", *api)
    assert (again.returncode, again.stderr) == (1, "aios: Firewall/host is not suspended\n")

    assert aios(tmp_path, "reconcile", *api).stdout == "reconciled all\n"
    assert aios(tmp_path, "reconcile", "firewall", *api).stdout == "reconciled firewall\n"

    lines = aios(tmp_path, "events", *api).stdout.splitlines()
    assert [line.split()[1:4] for line in lines] == [
        ["1", "Normal", "Healed"],
        ["2", "Warning", "Healed"],
        ["3", "Normal", "Healed"],
    ]
    recent = aios(tmp_path, "events", "-o", "json", "--since", "2", *api).stdout.splitlines()
    assert [json.loads(x)["seq"] for x in recent] == [3]


def test_events_follow(tmp_path: Path, daemon: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "events", "-f", "--api", daemon],
        cwd=REPO,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert [proc.stdout.readline().split()[1] for _ in range(3)] == ["1", "2", "3"]
        time.sleep(0.3)
        assert proc.poll() is None, "events -f ended instead of following"
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0


def test_apply_plan_rollback_status_go_through_the_daemon(
    tmp_path: Path, daemon: str, spec: Path
) -> None:
    api = ("--api", daemon)
    applied = aios(tmp_path, "apply", "-f", str(spec), "--yes", "--prune", *api)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == (
        f"apply via daemon: {spec}/firewall.yaml assume_yes=True dry_run=False plan=False "
        "prune=True replace=False\n"
    )
    (spec / "bad.yaml").write_text(SPEC.replace("name: host", "name: h2") + "# exit: 4\n")
    refused = aios(tmp_path, "apply", "-f", str(spec), "--yes", *api)
    assert refused.returncode == 4
    assert refused.stderr == f"{spec}/bad.yaml,{spec}/firewall.yaml: failed with 4\n"
    (spec / "bad.yaml").write_text("# raise: SpecError\n")
    broken = aios(tmp_path, "apply", "-f", str(spec), "--yes", *api)
    assert (broken.returncode, broken.stderr) == (
        1, f"{spec}/bad.yaml:1:1: Firewall/x: spec: broken\n")  # fmt: skip
    (spec / "bad.yaml").unlink()

    no_tty = aios(tmp_path, "apply", "-f", str(spec), *api)  # no --yes, no terminal
    assert no_tty.returncode == 1
    assert "refusing to apply without confirmation" in no_tty.stderr

    out_file = tmp_path / "plan.json"
    planned = aios(tmp_path, "plan", "-f", str(spec), "--out", str(out_file), *api)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.startswith("plan via daemon:")
    assert out_file.read_text() == '{"plan": true}'
    as_json = aios(tmp_path, "plan", "-f", str(spec), "-o", "json", *api)
    assert as_json.stdout == '{"plan": true}'
    missing = aios(tmp_path, "plan", "-f", str(tmp_path / "nothere.yaml"), *api)
    assert (missing.returncode, missing.stderr) == (
        1, f"{tmp_path}/nothere.yaml: no such file or directory\n")  # fmt: skip

    shown = aios(tmp_path, "status", "--state-dir", str(tmp_path / "state"), *api)
    assert shown.returncode == 0, shown.stderr
    assert f"generation 7 (daemon at {daemon})" in shown.stdout
    assert "Firewall/f1" in shown.stdout and "daemon SpecsValid=True Loaded" in shown.stdout
    data = json.loads(aios(tmp_path, "status", "-o", "json", *api).stdout)
    assert data["daemon"] == daemon and data["resources"][0]["resource"] == "Firewall/f1"
    assert data["sources"] == ["/etc/aios/specs"]

    nothing = aios(tmp_path, "rollback", "1", "--yes", "--state-dir", str(tmp_path / "s"), *api)
    assert nothing.returncode == 1
    assert "has no generation 1" in nothing.stderr


def test_without_a_daemon(tmp_path: Path, run_dir: Path) -> None:
    address = f"unix://{run_dir}/daemon.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(run_dir / "daemon.sock"))
    stale.close()  # a daemon that died left its socket: still no daemon
    for where in (address, f"unix://{run_dir}/none.sock"):
        for command in (
            ["plans"],
            ["approve", "p-1"],
            ["reject", "p-1"],
            ["suspend", "firewall"],
            ["resume", "firewall"],
            ["events", "-f"],
            ["reconcile"],
        ):
            out = aios(tmp_path, *command, "--api", where)
            assert out.returncode == 1, (command, out.stdout, out.stderr)
            assert out.stderr.startswith(f"aios: no daemon answers at {where}"), out.stderr
    # status runs one-shot: the store (empty here), no daemon
    shown = aios(tmp_path, "status", "--state-dir", str(tmp_path / "state"), "--api", address)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (
        "target registry:localhost:50052, generation 0\nno resources are managed yet\n"
    )


def test_the_sandbox_daemon_address_and_the_environment(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.cli.common import daemon_address, routed_to_daemon
    from sandbox import lifecycle

    monkeypatch.setenv(lifecycle.BASE_ENV, str(tmp_path / "sandboxes"))
    monkeypatch.delenv("AIOS_DAEMON_API", raising=False)
    # a sandbox that does not exist yet has no daemon: apply brings it up one-shot
    assert routed_to_daemon(None, None, "no-such-box", None) is None
    assert routed_to_daemon(None, "localhost:1", None, None) is None  # another target

    assert daemon_address("unix:///x.sock", "box", None) == "unix:///x.sock"
    assert daemon_address(None, "box", tmp_path) == f"unix://{tmp_path}/daemon.sock"
    env = os.environ.get("AIOS_DAEMON_API")
    os.environ["AIOS_DAEMON_API"] = "unix:///from/env.sock"
    try:
        assert daemon_address(None, "box", tmp_path) == "unix:///from/env.sock"
        assert daemon_address("unix:///flag.sock", None, None) == "unix:///flag.sock"
    finally:
        if env is None:
            os.environ.pop("AIOS_DAEMON_API")
        else:
            os.environ["AIOS_DAEMON_API"] = env


# --- two CLIs without a daemon never run at once -----------------------------------------


@pytest.fixture
def mute_registry(run_dir: Path) -> Iterator[str]:
    """A unix socket that takes connections and never answers: an apply against it
    stays in its plan (holding the writer lock) until killed."""
    path = run_dir / "mute.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(64)
    try:
        yield f"unix://{path}"
    finally:
        server.close()


def _start_apply(
    tmp: Path, spec: Path, registry: str, state: Path, *extra: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "-f", str(spec), "--yes",
         "--registry", registry, "--state-dir", str(state), *extra],
        cwd=REPO,
        env=_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _wait_for(predicate: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _holder(state: Path) -> str:
    try:
        return (state / "writer.lock").read_text()
    except FileNotFoundError:
        return ""


def test_two_clis_without_a_daemon_are_serialized(
    tmp_path: Path, spec: Path, mute_registry: str
) -> None:
    state = tmp_path / "state"
    first = _start_apply(tmp_path, spec, mute_registry, state)
    second: subprocess.Popen[str] | None = None
    try:
        _wait_for(lambda: _holder(state) == f"pid {first.pid}", "the first apply's lock")
        bounded = aios(tmp_path, "apply", "-f", str(spec), "--yes", "--registry", mute_registry,
                       "--state-dir", str(state), "--lock-timeout", "0.5")  # fmt: skip
        assert bounded.returncode == 1
        assert f"waiting for the state lock held by pid {first.pid}" in bounded.stderr
        assert "for more than 0.5 s" in bounded.stderr
        assert first.poll() is None

        second = _start_apply(tmp_path, spec, mute_registry, state)
        assert second.stderr is not None
        line = second.stderr.readline()
        assert line.startswith(f"aios: waiting for the state lock held by pid {first.pid} ("), line
        time.sleep(0.5)
        assert second.poll() is None and _holder(state) == f"pid {first.pid}"  # still waiting
        first.send_signal(signal.SIGKILL)  # the lock dies with its holder
        first.wait(10)
        _wait_for(lambda: _holder(state) == f"pid {second.pid}", "the second apply's lock")
    finally:
        for proc in (first, second):
            if proc is None:
                continue
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


def test_the_writer_lock_is_reentrant_and_waits_bounded(tmp_path: Path) -> None:
    from reconciler.engine.store import Store
    from reconciler.sdk.errors import StateStoreError

    first, second = Store(tmp_path / "state"), Store(tmp_path / "state")
    told: list[str] = []
    try:
        with first.writer(), first.writer(wait=None):  # the engine's apply inside the CLI's
            assert _holder(tmp_path / "state") == f"pid {os.getpid()}"
            with pytest.raises(StateStoreError, match="another writer holds") as at_once:
                second.writer().__enter__()
            assert at_once.value.retryable
            started = time.monotonic()
            with pytest.raises(StateStoreError, match=r"for more than 0\.3 s"):
                second.writer(wait=0.3, on_wait=told.append).__enter__()
            assert time.monotonic() - started >= 0.3
        assert told == [
            f"waiting for the state lock held by pid {os.getpid()} "
            f"({tmp_path / 'state' / 'writer.lock'})"
        ]
        with second.writer(wait=0.3):  # free again once the outer one ended
            pass
    finally:
        first.close()
        second.close()


def test_apply_through_the_daemon_confirms_its_plan_on_a_terminal(
    tmp_path: Path, daemon: str, spec: Path
) -> None:
    import pty

    (spec / "firewall.yaml").write_text(SPEC + "# exit: 2\n")  # the plan says: changes

    def answer(reply: bytes) -> tuple[int, str]:
        pid, fd = pty.fork()
        if pid == 0:  # the child: aios on a terminal
            os.chdir(REPO)
            os.execve(sys.executable, [sys.executable, "-m", "reconciler", "apply", "-f",
                      str(spec), "--api", daemon], _env(tmp_path))  # fmt: skip
        seen = b""
        while b"Apply these changes?" not in seen:
            chunk = os.read(fd, 4096)
            assert chunk, seen
            seen += chunk
        os.write(fd, reply)
        with contextlib.suppress(OSError):
            while chunk := os.read(fd, 4096):
                seen += chunk
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return os.waitstatus_to_exitcode(status), seen.decode()

    code, text = answer(b"n\n")
    assert code == 1 and "nothing applied" in text
    assert "plan via daemon:" in text and "apply via daemon" not in text
    code, text = answer(b"y\n")
    assert "apply via daemon:" in text and "plan=True" in text  # only the plan shown runs
    assert code == 2  # the double's exit code for this document
