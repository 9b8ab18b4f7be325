"""Where a sandbox lives and what is recorded about it: names, directories, meta.json.

A sandbox `NAME` lives in `<base>/<NAME>/` (base: $AIOS_SANDBOX_DIR, default
/var/lib/aios/sandboxes); `layout` says where each of its parts is, `read`/`load`
return what `meta.json` records (the registry's and the AI runtime's pids,
profile, times), `is_running` / `runtime_running` whether the recorded registry /
runtime is alive, `list_sandboxes` every recorded one. Nothing here starts,
stops or provisions anything (sandbox.lifecycle does, sandbox.content adds the
repository and model server), so both import this module and not each other.
sandbox.lifecycle re-exports these names: callers use sandbox.lifecycle.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

BASE_ENV = "AIOS_SANDBOX_DIR"
DEFAULT_BASE = Path("/var/lib/aios/sandboxes")
NAME_RE = re.compile(r"^[a-z0-9](?:[-a-z0-9]{0,18}[a-z0-9])?$")


class SandboxError(Exception):
    """A sandbox could not be created, found or removed; the message says why."""


def base_dir() -> Path:
    return Path(os.environ.get(BASE_ENV) or DEFAULT_BASE)


@dataclass(frozen=True)
class Sandbox:
    """Where a sandbox lives; `pid` is its registry's, `runtime_pid` its AI runtime's
    (None before they start)."""

    name: str
    dir: Path
    netns: str
    root: Path
    registry_state: Path  # the registry's --state-dir
    state: Path  # reserved for the reconciler's own state (engine)
    socket: Path
    log: Path
    pid: int | None = None
    created: str = ""
    profile: str = "full"
    restarted: str = ""  # when `up` last restarted it after its registry died
    runtime_pid: int | None = None

    @property
    def address(self) -> str:
        return f"unix://{self.socket}"

    @property
    def runtime_socket(self) -> Path:
        """The AI runtime's socket (`aios runtime serve --listen unix://…`)."""
        return self.dir / "runtime.sock"

    @property
    def runtime_address(self) -> str:
        return f"unix://{self.runtime_socket}"

    @property
    def runtime_state(self) -> Path:
        """The runtime's --state-dir (one llama-server log per model)."""
        return self.dir / "runtime"

    @property
    def runtime_log(self) -> Path:
        return self.dir / "runtime.log"

    @property
    def model_dir(self) -> Path:
        """The scratch root's /var/lib/aios/models as a host path (the runtime's --model-dir)."""
        return self.root / "var/lib/aios/models"

    @property
    def meta_path(self) -> Path:
        return self.dir / "meta.json"

    @property
    def state_dir(self) -> Path:
        """The reconciler's state dir for this sandbox (alias of `state`)."""
        return self.state

    def running(self) -> bool:
        return is_running(self)

    def to_json(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise SandboxError(
            f"invalid sandbox name {name!r}: use a DNS label of at most 20 characters "
            "(lowercase letters, digits, '-', not starting or ending with '-')"
        )


def layout(name: str, base: Path | None = None) -> Sandbox:
    check_name(name)
    d = (base or base_dir()) / name
    return Sandbox(
        name=name,
        dir=d,
        netns=f"aios-{name}",
        root=d / "root",
        registry_state=d / "registry",
        state=d / "state",
        socket=d / "registry.sock",
        log=d / "registry.log",
    )


def load(name: str, base: Path | None = None) -> Sandbox | None:
    """The recorded sandbox `name`, or None when there is none."""
    try:
        return read(name, base)
    except SandboxError:
        return None


def read(name: str, base: Path | None = None) -> Sandbox:
    """The recorded sandbox `name`; SandboxError when there is none."""
    box = layout(name, base)
    try:
        data = json.loads(box.meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SandboxError(f"no sandbox {name} (no {box.meta_path})") from None
    pid = data.get("pid")
    runtime_pid = data.get("runtime_pid")
    return Sandbox(
        name=name,
        dir=box.dir,
        netns=str(data.get("netns", box.netns)),
        root=Path(data.get("root", box.root)),
        registry_state=Path(data.get("registry_state", box.registry_state)),
        state=Path(data.get("state", box.state)),
        socket=Path(data.get("socket", box.socket)),
        log=Path(data.get("log", box.log)),
        pid=int(pid) if pid else None,
        created=str(data.get("created", "")),
        profile=str(data.get("profile", "full")),
        restarted=str(data.get("restarted", "")),
        runtime_pid=int(runtime_pid) if runtime_pid else None,
    )


def is_running(box: Sandbox) -> bool:
    """The recorded pid is alive and is this sandbox's registry (not a reused pid)."""
    if box.pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{box.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return str(box.socket).encode() in b" ".join(cmdline)


def runtime_running(box: Sandbox) -> bool:
    """The recorded runtime pid is alive and serves this sandbox's runtime socket."""
    if box.runtime_pid is None:
        return False
    try:
        argv = Path(f"/proc/{box.runtime_pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    listen = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == b"--listen"]
    return b"runtime" in argv and box.runtime_address.encode() in listen


def list_sandboxes(base: Path | None = None) -> list[tuple[Sandbox, bool]]:
    root = base or base_dir()
    if not root.is_dir():
        return []
    found = []
    for meta in sorted(root.glob("*/meta.json")):
        with contextlib.suppress(SandboxError, ValueError):
            box = read(meta.parent.name, root)
            found.append((box, is_running(box)))
    return found
