"""The `aios` console script and its warm helper (reconciler.cli.launch / warm).

A run through the helper must be indistinguishable from a cold run: same
stdout, stderr and exit status, the caller's working directory and
environment, signals passed through. The helper must refuse when it would
run other code or in other namespaces (the client then runs cold), and it
must never outlive a test: every test starts its own on a private socket and
kills it at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.cli.launch import signature

REPO = Path(__file__).resolve().parents[2]
AIOS = [sys.executable, "-c", "from reconciler.cli.launch import main; main()"]


@dataclass
class Helper:
    socket: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def aios(self, *args: str, cwd: Path = REPO, extra: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        env = {**self.env, **(extra or {})}
        return subprocess.run([*AIOS, *args], capture_output=True, text=True, env=env, cwd=cwd,
                              timeout=120, check=False)  # fmt: skip

    def start(self, sig: str | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli.warm", str(self.socket), sig or signature()],
            env=self.env,
            cwd="/",
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            assert self.process.poll() is None, "the helper exited at start"
            assert time.monotonic() < deadline, "the helper did not start"
            time.sleep(0.05)


def helpers_serving(sock: Path) -> list[int]:
    """Pids of warm helpers started for `sock` (by their command line: the socket is
    bound under a staging name and renamed, so fuser cannot find it by path)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"reconciler.cli.warm" in argv and str(sock).encode() in argv:
            pids.append(int(cmdline.parent.name))
    return pids


def wait_gone(sock: Path) -> bool:
    deadline = time.monotonic() + 10
    while helpers_serving(sock):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def helper(tmp_path: Path) -> Iterator[Helper]:
    directory = tmp_path / "warm"
    directory.mkdir(mode=0o700)
    env = {**os.environ, "AIOS_WARM": "1", "AIOS_WARM_SOCKET": str(directory / "cli.sock"),
           "AIOS_WARM_DEBUG": "1", "NO_COLOR": "1"}  # fmt: skip
    h = Helper(directory / "cli.sock", env)
    try:
        yield h
    finally:
        if h.process is not None:
            os.killpg(h.process.pid, signal.SIGKILL)
            h.process.wait()


def test_first_run_starts_the_helper_and_later_runs_are_served_by_it(helper: Helper) -> None:
    first = helper.aios("--version")
    assert first.returncode == 0 and "warm helper" not in first.stderr
    deadline = time.monotonic() + 30
    while not helper.socket.exists():
        assert time.monotonic() < deadline, "the first run did not start a helper"
        time.sleep(0.05)
    try:
        second = helper.aios("--version")
        assert second.returncode == 0 and second.stdout == first.stdout
        assert "served by the warm helper" in second.stderr
    finally:
        for pid in helpers_serving(helper.socket):
            os.kill(pid, signal.SIGKILL)
    assert wait_gone(helper.socket), "the helper the first run started survived"


def test_warm_runs_match_cold_runs(helper: Helper, tmp_path: Path) -> None:
    helper.start()
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: aios.dev/v1\nkind: Network\nmetadata: {name: Bad_Name}\nspec: {}\n")
    for args in (("validate", "-f", "examples/"), ("validate", "-f", str(bad)),
                 ("schema", "Network"), ("nosuchcommand",)):  # fmt: skip
        cold = helper.aios(*args, extra={"AIOS_WARM": "0"})
        warm = helper.aios(*args)
        assert "served by the warm helper" in warm.stderr, warm.stderr
        assert warm.returncode == cold.returncode, args
        assert warm.stdout == cold.stdout, args
        assert warm.stderr.replace(warm.stderr.splitlines()[0] + "\n", "", 1) == cold.stderr


def test_working_directory_and_environment_are_the_callers(helper: Helper, tmp_path: Path) -> None:
    helper.start()
    relative = helper.aios("validate", "-f", "quickstart", cwd=REPO / "examples")
    assert relative.returncode == 0 and "served by" in relative.stderr, relative.stderr
    boxes = tmp_path / "boxes"
    listed = helper.aios("sandbox", "list", extra={"AIOS_SANDBOX_DIR": str(boxes)})
    assert listed.returncode == 0 and "served by" in listed.stderr
    assert "no sandboxes" in listed.stdout.lower() or listed.stdout.strip() == "", listed.stdout


def test_other_code_is_refused_and_runs_cold(helper: Helper) -> None:
    helper.start(sig="0000000")
    result = helper.aios("--version")
    assert result.returncode == 0 and "refused" in result.stderr and "other code" in result.stderr


def test_another_network_namespace_is_refused_and_runs_cold(helper: Helper) -> None:
    helper.start()
    argv = ["unshare", "--net", *AIOS, "--version"]
    result = subprocess.run(argv, capture_output=True, text=True, env=helper.env, cwd=REPO,
                            timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "other namespaces" in result.stderr


def test_signals_reach_the_command_and_its_status_comes_back(
    helper: Helper, tmp_path: Path
) -> None:
    helper.start()
    sock = tmp_path / "registry.sock"
    client = subprocess.Popen(
        [*AIOS, "registry", "serve", "--listen", f"unix://{sock}", "--state-dir",
         str(tmp_path / "state"), "--root", str(tmp_path / "root")],
        env=helper.env, cwd=REPO, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:  # until the registry, run by the helper's child, accepts connections
            assert client.poll() is None, "the registry exited early"
            assert time.monotonic() < deadline, "the registry never accepted a connection"
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(sock))
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    pass  # not bound yet, or bound and not yet listening
            time.sleep(0.05)
        client.send_signal(signal.SIGTERM)
        _, err = client.communicate(timeout=30)
        assert client.returncode in (0, 143), err
        assert "served by the warm helper" in err
        assert not sock.exists(), "the registry did not shut down"
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()


def test_a_malformed_request_does_not_take_the_helper_down(helper: Helper) -> None:
    helper.start()
    frames = (b"\x00\x00\x00\x05abc", b"\x00\x00\x00\x03\xff\xfe\xfd", b"\x00\x00\x00\x01s")
    for garbage in frames:  # truncated, unknown type code, marshal data too short
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(helper.socket))
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(100)  # the helper closes the connection
    assert helper.process is not None and helper.process.poll() is None
    after = helper.aios("--version")
    assert after.returncode == 0 and "served by the warm helper" in after.stderr
