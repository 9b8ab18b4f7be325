"""CLI helpers the storage and models controller system tests share.

Spec trees written to a temporary directory, `aios` commands against the
test's sandbox (`box`), status as a {resource: (outcome, reason, message)}
map read from `aios status -o json`, and the engine (Python API) opened on
the sandbox for predicted-versus-observed checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from reconciler.cli.common import open_engine, resolve_target
from reconciler.engine.reconcile import Engine
from sandbox import lifecycle as sandbox
from tests.system.engine_support import Box


def write_tree(tmp: Path, tag: str, **files: str) -> Path:
    """A spec directory `tmp/tag` holding `files` (name -> YAML text)."""
    directory = tmp / tag
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def aios(box: Box, *args: str) -> subprocess.CompletedProcess[str]:
    return box.aios(*args, "--sandbox", box.name)


def apply(box: Box, spec: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return aios(box, "apply", "-f", str(spec), "--yes", *extra)


def ok(proc: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert proc.returncode == code, (
        f"exit {proc.returncode} (wanted {code})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc.stdout + proc.stderr


def statuses(box: Box) -> dict[str, tuple[bool, str, str]]:
    """resource -> (ready, reason of the failing/true condition, its message)."""
    data = json.loads(aios(box, "status", "-o", "json").stdout)
    out = {}
    for resource in data["resources"]:
        conditions = {c["type"]: c for c in resource["conditions"]}
        shown = next(
            (c for t in ("Degraded", "Stalled", "Ready") if (c := conditions.get(t))
             and c["status"] == "True"),
            conditions.get("Ready", {}),
        )  # fmt: skip
        out[resource["resource"]] = (
            resource["ready"],
            f"{shown.get('type', '')}/{shown.get('reason', '')}",
            shown.get("message", ""),
        )
    return out


@contextlib.asynccontextmanager
async def engine_on(box: Box, domains: tuple[str, ...]) -> AsyncIterator[Engine]:
    """The engine the CLI would build for `--sandbox box.name`, in this process."""
    before = os.environ.get(sandbox.BASE_ENV)
    os.environ[sandbox.BASE_ENV] = str(box.base)
    try:
        target = resolve_target(None, box.name, None)
        async with open_engine(target, domains) as engine:
            yield engine
    finally:
        if before is None:
            os.environ.pop(sandbox.BASE_ENV, None)
        else:
            os.environ[sandbox.BASE_ENV] = before
