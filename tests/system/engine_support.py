"""Support for end-to-end engine tests: a throwaway sandbox and the `aios` CLI.

`box` (a pytest fixture, import it into a test module or conftest) starts a
sandbox named uniquely under a temporary AIOS_SANDBOX_DIR and tears it down
afterwards, whatever happens. `Box.aios(...)` runs the real CLI in a
subprocess against that sandbox; `Box.sh(...)` runs a command inside the
sandbox's network and mount namespaces (to make drift or read state back
independently of the registry); `Box.write_calls()` counts the write calls
recorded in the sandbox registry's audit log, recognising writes from the
tool definitions.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.catalogue import catalogue
from sandbox import lifecycle as sandbox

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Box:
    name: str
    base: Path
    env: dict[str, str]

    @property
    def record(self) -> sandbox.Sandbox:
        return sandbox.read(self.name, self.base)

    @property
    def root(self) -> Path:
        return self.record.root

    def aios(
        self, *args: str, check: bool = False, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run the real `aios ARGS` CLI in a subprocess (pass `--sandbox box.name` yourself)."""
        argv = [sys.executable, "-m", "reconciler", *args]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
            cwd=REPO,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"aios {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc

    def sh(self, *argv: str, check: bool = True) -> str:
        """Run a command inside the sandbox's network and mount namespaces."""
        pid = self.record.pid
        assert pid is not None, "sandbox is not running"
        proc = subprocess.run(
            ["nsenter", "-t", str(pid), "-n", "-m", "--", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def write_calls(self) -> int:
        """Write calls in the registry's audit log (writes known from the tool definitions)."""
        writers = {name for name, spec in catalogue().items() if spec.writes}
        db = sqlite3.connect(self.record.registry_state / "audit.db")
        try:
            rows = db.execute("select tool from audit_log").fetchall()
        finally:
            db.close()
        return sum(1 for (tool,) in rows if tool in writers)


@contextlib.contextmanager
def sandbox_box(base: Path, prefix: str = "e") -> Iterator[Box]:
    """A sandbox under `base`, named uniquely, torn down afterwards whatever happens."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    env = {**os.environ, sandbox.BASE_ENV: str(base), "NO_COLOR": "1"}
    created = Box(name, base, env)
    try:
        up = created.aios("sandbox", "up", name)
        assert up.returncode == 0, up.stderr
        yield created
    finally:
        created.aios("sandbox", "down", name)
        subprocess.run(["ip", "netns", "del", f"aios-{name}"], capture_output=True, check=False)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    with sandbox_box(tmp_path / "sandboxes") as created:
        yield created
