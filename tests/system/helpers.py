"""Plain helpers for system tests: run commands, read state back from namespaces."""

from __future__ import annotations

import subprocess


def run(argv: list[str], *, check: bool = True, input: str | None = None) -> str:
    """Run a command, return stdout; raise with stderr on failure."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def in_netns(ns: str, argv: list[str]) -> list[str]:
    """argv that runs a command inside network namespace `ns` (for reading state back)."""
    return ["ip", "netns", "exec", ns, *argv]
