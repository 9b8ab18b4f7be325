"""Run one registry tool (snapshot + run, or restore) from a JSON request on stdin.

The storage system tests start it inside a private mount namespace with
`nsenter -t <holder pid> -m <python> -m tests.system.tooldriver`, so every
mount the tool makes lands in that namespace and never in the host's.
Request: {"tool", "args", "root", "state_dir", "work", "mode": "run"|"restore",
"snapshot"?, "host_mnt_ns"}. Reply on stdout: {"output", "error", "snapshot"}.
`host_mnt_ns` is the test process's mount namespace (`readlink
/proc/self/ns/mnt` there): the driver refuses to run in that namespace, so
a holder that is not yet (or no longer) in its own namespace fails the test
instead of mounting on the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from registry.core.errors import ToolError
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.handlers.index import tool_classes


async def handle(request: dict[str, Any], work: Path) -> dict[str, Any]:
    tool = tool_classes()[request["tool"]]()
    ctx = ToolContext(
        runner=ProcessRunner(),
        root=Path(request["root"]),
        state_dir=Path(request["state_dir"]),
        work=work,
        execution_id=work.name,
    )
    reply: dict[str, Any] = {"output": None, "error": None, "snapshot": None}
    try:
        if request.get("mode") == "restore":
            await tool.restore(ctx, request["snapshot"])
            return reply
        if tool.spec.reversible:
            reply["snapshot"] = await tool.snapshot(ctx, request["args"])
        reply["output"] = await tool.run(ctx, request["args"])
    except ToolError as exc:
        reply["error"] = str(exc)
    return reply


def main() -> None:
    request = json.load(sys.stdin)
    here = os.readlink("/proc/self/ns/mnt")
    if not request.get("host_mnt_ns") or here == request["host_mnt_ns"]:
        sys.exit(f"tooldriver: refusing to run in the host's mount namespace ({here})")
    work = Path(request["work"])
    work.mkdir(parents=True, exist_ok=True)
    reply = asyncio.run(handle(request, work))
    json.dump(reply, sys.stdout)


if __name__ == "__main__":
    main()
