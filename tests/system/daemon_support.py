"""Running the real `aios daemon` against a test sandbox, and waiting on what it does.

`DaemonProc` starts `python -m reconciler daemon --sandbox NAME --specs DIR…`
as a child (JSON-line logs to a file), waits until its API says ready, reads
its events back through the API (`aios events -o json`) and stops it with
SIGTERM (or kill -9). `eventually` polls a condition with a deadline and says
what it last saw. `module_box` is a sandbox shared by one test module (a
sandbox takes seconds to start); tests sharing it use resources of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.system.engine_support import REPO, Box, sandbox_box

T = TypeVar("T")


def eventually(
    check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> T:
    """`check()` once it is truthy; AssertionError naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or check}; last: {last!r}")
        time.sleep(interval)


class DaemonProc:
    """One `aios daemon` child on `box` watching `specs` directories."""

    def __init__(
        self, box: Box, specs: list[Path], log: Path, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.box = box
        self.specs = specs
        self.log = log
        self.extra = extra
        self.env = env or box.env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"unix://{self.box.record.state_dir / 'daemon.sock'}"

    def start(self, *, wait: bool = True) -> DaemonProc:
        argv = [sys.executable, "-m", "reconciler", "daemon", "--sandbox", self.box.name]
        for directory in self.specs:
            argv += ["--specs", str(directory)]
        argv += ["--log-format", "json", "--poll-interval", "1h", *self.extra]
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            argv, stdout=out, stderr=out, env=self.env, cwd=REPO, start_new_session=True
        )
        out.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.tail()}")
            return bool(self.health().get("ready"))

        eventually(ready, timeout=timeout, interval=0.1, what="daemon ready")

    def health(self) -> dict[str, Any]:
        code = (
            "import asyncio, json, sys\n"
            "from reconciler.daemon_client import DaemonClient\n"
            "async def main():\n"
            "    async with DaemonClient(sys.argv[1], timeout=5) as c:\n"
            "        h = await c.health()\n"
            "    print(json.dumps(h.__dict__))\n"
            "asyncio.run(main())\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, self.address],
            capture_output=True, text=True, env=self.env, cwd=REPO, timeout=30, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            return {}
        return dict(json.loads(proc.stdout))

    def events(
        self, reason: str | None = None, resource: str | None = None
    ) -> list[dict[str, Any]]:
        """Every event in the daemon's log (the log carries each event with its fields)."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "seq" not in record:
                continue
            if reason is not None and record.get("reason") != reason:
                continue
            if resource is not None and record.get("resource") != resource:
                continue
            found.append(record)
        return found

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def terminate(self, timeout: float = 10.0) -> float:
        """SIGTERM; the seconds until it exited."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"daemon did not exit within {timeout:g} s:\n{self.tail()}"
            ) from None
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def aios(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.box.aios(*args, "--sandbox", self.box.name, timeout=timeout)


def nft_rules(box: Box, table: str, chain: str = "input") -> list[str]:
    """The rule lines of `chain` in `inet <table>` inside the sandbox ([] when absent)."""
    text = box.sh("nft", "list", "chain", "inet", table, chain, check=False)
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith(("table", "chain", "type", "}"))
    ]


def firewall(name: str, table: str, rules: list[str], mode: str = "enforce") -> str:
    lines = "\n".join(f"            - {r}" for r in rules)
    return f"""apiVersion: aios.dev/v1
kind: Firewall
metadata:
  name: {name}
spec:
  mode: {mode}
  tables:
    - family: inet
      name: {table}
      force: true
      chains:
        - name: input
          type: filter
          hook: input
          priority: filter
          policy: accept
          rules:
{lines}
"""


@pytest.fixture(scope="module")
def module_box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    with sandbox_box(tmp_path_factory.mktemp("sandboxes"), "d") as created:
        yield created
