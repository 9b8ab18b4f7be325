"""Helpers for registry tests: a real server on a unix socket, plugins, raw stubs.

`running_registry(tmp, ...)` starts registry.server.grpc.RegistryServer on a unix
socket in a short temporary directory (sun_path holds 108 bytes) with its
state under `tmp`, and stops it afterwards whatever happens. `write_plugin`
drops an aiOS-style plugin into a plugin directory. `audit_entry(i)` is row i
of a test audit log. `ScriptedRunner` is the
base of the named command doubles (a Runner that records every argv and
answers from a script instead of running anything). Used by the registry
tests in tests/unit and tests/system and by bench/.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import textwrap
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from registry.core.tool import CommandResult, Runner
from registry.server.audit import AuditEntry
from registry.server.grpc import RegistryServer, ServeOptions


class ScriptedRunner(Runner):
    """A double of the command runner: records argv and stdin, answers via `answer`."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.stdins: list[bytes | None] = []

    def answer(self, argv: list[str], stdin: bytes | None) -> tuple[int, bytes, bytes]:
        """(exit status, stdout, stderr) for `argv`; success with no output by default."""
        return 0, b"", b""

    async def run(
        self,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> CommandResult:
        self.calls.append(argv)
        self.stdins.append(stdin)
        code, out, err = self.answer(argv, stdin)
        return CommandResult(tuple(argv), code, out, err)

    def pairs(self) -> list[tuple[list[str], bytes | None]]:
        """Every command run, with what it was given on stdin."""
        return list(zip(self.calls, self.stdins, strict=True))


@contextlib.asynccontextmanager
async def running_registry(
    tmp: Path, *, root: Path | None = None, **options: Any
) -> AsyncIterator[tuple[RegistryServer, str]]:
    root = root or tmp / "root"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aios-reg-") as short:
        base = ServeOptions(
            listen=f"unix://{short}/registry.sock",
            root=root,
            state_dir=tmp / "state",
            plugin_dir=tmp / "plugins",
        )
        server = RegistryServer(replace(base, **options))
        address = await server.start()
        try:
            yield server, address
        finally:
            await server.stop(grace=1.0)


def write_plugin(directory: Path, name: str, code: str, *, timeout_ms: int = 30000) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(textwrap.dedent(code))
    meta = {
        "tool_name": f"plugin.{name}",
        "description": f"test plugin {name}",
        "capabilities": [],
        "dependencies": [],
        "author": "tests",
        "created_at": "2026-01-01T00:00:00Z",
        "timeout_ms": timeout_ms,
    }
    (directory / f"{name}.meta.json").write_text(json.dumps(meta))


def audit_entry(i: int, *, success: bool = True) -> AuditEntry:
    """Row `i` of a test audit log: an fs.write by aios-reconciler, distinct per i."""
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
