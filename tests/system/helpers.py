"""Plain helpers for system tests: run commands, read state back from namespaces, and
`host_state`, what the session-wide host snapshot (tests/conftest.py) compares."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path


def run(argv: list[str], *, check: bool = True, input: str | None = None) -> str:
    """Run a command, return stdout; raise with stderr on failure."""
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def in_netns(ns: str, argv: list[str]) -> list[str]:
    """argv that runs a command inside network namespace `ns` (for reading state back)."""
    return ["ip", "netns", "exec", ns, *argv]


# Host files a path escaping the scratch root would reach first (issue #8, escape 2).
_WATCHED_FILES = ("passwd", "shadow", "group", "resolv.conf", "fstab", "hosts")
_WATCHED_DIRS = (Path("/etc/apt/sources.list.d"), Path("/root"))


def _file_state(path: Path) -> str:
    """lstat (type, mode, owner), link text and content digest of one host file."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return "missing"
    text = os.readlink(path) if path.is_symlink() else ""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        digest = f"unreadable: {exc.strerror}"
    return f"{st.st_mode:o} {st.st_uid}:{st.st_gid} {text!r} {digest}"


def _listing(directory: Path) -> str:
    """The entries of a directory with their modes (lstat), not their content."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return "missing"
    return "\n".join(f"{e.name} {e.stat(follow_symlinks=False).st_mode:o}" for e in entries)


def host_state() -> dict[str, str]:
    """Everything a system test must leave exactly as it found it."""
    dpkg_status = Path("/var/lib/dpkg/status")
    state = {
        "links": run(["ip", "-j", "link", "show"]),
        "addresses": run(["ip", "-j", "addr", "show"]),
        "routes4": run(["ip", "-j", "route", "show", "table", "all"]),
        "routes6": run(["ip", "-j", "-6", "route", "show", "table", "all"]),
        "rules": run(["ip", "-j", "rule", "show"]),
        "netns": run(["ip", "netns", "list"]),
        "mounts": Path("/proc/self/mountinfo").read_text(),
        "loops": run(["losetup", "-J"]) or "{}",
        "dpkg": hashlib.sha256(dpkg_status.read_bytes()).hexdigest()
        if dpkg_status.exists()
        else "",
    }
    nft = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False)
    state["nft"] = nft.stdout if nft.returncode == 0 else f"nft unavailable: {nft.stderr}"
    # Interface statistics change all the time; compare links without them.
    links = json.loads(state["links"])
    for link in links:
        link.pop("stats", None)
        link.pop("stats64", None)
    state["links"] = json.dumps(links, sort_keys=True)
    for name in _WATCHED_FILES:
        state[f"/etc/{name}"] = _file_state(Path("/etc") / name)
    for directory in _WATCHED_DIRS:
        state[f"{directory}/"] = _listing(directory)
    return state
