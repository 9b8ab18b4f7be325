"""aiOS-style plugins: `<name>.py` + `<name>.meta.json` become tool `plugin.<name>`.

The extension point aiOS has (docs/aios-contract.md §2.9), and how timeouts are
tested with real subprocesses. A plugin runs as
`prlimit --as=256MiB --nofile=64 --nproc=16 -- env -i PATH=/usr/bin:/bin
HOME=/tmp/aios-sandbox LANG=C.UTF-8 python3 <file>` with the input JSON on
stdin, in its own process group (ProcessRunner), killed as a group on
timeout. (python3 starts fine under these limits; RLIMIT_NPROC is not
enforced for root, as on aiOS.) stdout must be one JSON object; exit status
non-zero means failure, with the object's "error" as the message.

Tool: namespace `plugin`, risk medium, not idempotent, not reversible,
timeout from the meta file (the aios profile uses aiOS's fixed 30 s),
capability `plugin_execute`; plugins count as writes (their effects are
unknown). Scanned at start-up and on Register of a `plugin.<name>`
definition. Called by registry.server.toolset.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, ClassVar

from contract.tooldef import JSON, ToolSpec
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
META_KEYS: dict[str, type | tuple[type, ...]] = {
    "tool_name": str,
    "description": str,
    "capabilities": list,
    "dependencies": list,
    "author": str,
    "created_at": str,
    "timeout_ms": int,
}
ADDRESS_SPACE = 256 << 20
PLUGIN_HOME = "/tmp/aios-sandbox"  # noqa: S108 - aiOS's value; the plugin's HOME, never created
PLUGIN_CAPABILITY = "plugin_execute"


class PluginFailed(ToolError):
    """Exit status non-zero; `stdout` is what the plugin printed (aiOS returns it)."""

    def __init__(self, message: str, stdout: bytes) -> None:
        super().__init__(message)
        self.stdout = stdout


class PluginTool(Tool):
    """Base of the classes `load` makes; `script` is the plugin's .py file."""

    script: ClassVar[Path]

    def argv(self) -> list[str]:
        return [
            "prlimit",
            f"--as={ADDRESS_SPACE}",
            "--nofile=64",
            "--nproc=16",
            "--",
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            f"HOME={PLUGIN_HOME}",
            "LANG=C.UTF-8",
            "python3",
            str(self.script),
        ]

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        stdin = json.dumps(args, separators=(",", ":")).encode()
        result = await ctx.runner.run(self.argv(), stdin=stdin, check=False)
        name = self.spec.name
        try:
            output = json.loads(result.stdout)
        except (ValueError, UnicodeDecodeError):
            output = None
        if result.returncode != 0:
            error = output.get("error") if isinstance(output, dict) else None
            message = str(error) if error else f"{name} exited {result.returncode}"
            if result.err:
                log.info("%s stderr: %s", name, result.err[:2000])
            raise PluginFailed(message, result.stdout)
        if not isinstance(output, dict):
            raise ToolError(f"{name}: stdout is not one JSON object: {result.text[:200]!r}")
        return output


def read_meta(path: Path) -> dict[str, Any] | None:
    """The meta file, or None (with a warning) when it lacks a key or has a wrong type."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("plugins: skipping %s: %s", path, exc)
        return None
    if not isinstance(meta, dict):
        log.warning("plugins: skipping %s: not a JSON object", path)
        return None
    for key, kind in META_KEYS.items():
        if not isinstance(meta.get(key), kind):
            log.warning("plugins: skipping %s: key %r missing or not %s", path, key, kind)
            return None
    return meta


def load(directory: Path, name: str, *, timeout_ms: int | None) -> type[PluginTool] | None:
    """The tool class of plugin `name` in `directory`, or None if it is not there."""
    if not NAME_RE.match(name):
        return None
    script = directory / f"{name}.py"
    meta = read_meta(directory / f"{name}.meta.json")
    if meta is None or not script.is_file():
        return None
    spec = ToolSpec(
        name=f"plugin.{name}",
        description=meta["description"],
        input_schema={},
        output_schema={},
        risk="medium",
        idempotent=False,
        reversible=False,
        timeout_ms=timeout_ms or meta["timeout_ms"],
        capabilities=(PLUGIN_CAPABILITY,),
    )
    return type(f"Plugin_{name}", (PluginTool,), {"spec": spec, "script": script})


def scan(directory: Path, *, timeout_ms: int | None) -> dict[str, type[PluginTool]]:
    """Every loadable plugin in `directory`, by tool name."""
    found: dict[str, type[PluginTool]] = {}
    if not directory.is_dir():
        return found
    for meta in sorted(directory.glob("*.meta.json")):
        cls = load(directory, meta.name.removesuffix(".meta.json"), timeout_ms=timeout_ms)
        if cls is not None:
            found[cls.spec.name] = cls
    return found
