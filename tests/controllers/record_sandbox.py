"""Record observe cases with the real registry tools in a throwaway sandbox (needs root).

For controllers whose tools need the sandbox's private mount namespace or its
model server (storage, models). An observe case may carry `setup:` — the
machine it starts from, as operations run in order in a fresh sandbox:
  {tool: NAME, input: {...}}   a real registry call (a write tool, through the
                               sandbox's registry)
  {sh: [ARGV...]}              a command inside the sandbox's namespaces; the
                               string `{root}` stands for the sandbox's root
For each case given, this script brings a sandbox up under a temporary
AIOS_SANDBOX_DIR, runs the setup, then the controller's observe with the
case's specs, owned and pruned objects against the sandbox's registry, and
writes back `reads` (every read with its args and output) and `expect` (the
parsed state) — review the diff before committing. The sandbox is torn down
afterwards (its loop devices detached).
Run: `.venv/bin/python -m tests.controllers.record_sandbox DOMAIN CASE.yaml …`.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from reconciler.client import RegistryClient
from sandbox import lifecycle as sandbox
from tests.controllers.harness import desired_from, load_case

AGENT = "aios-reconciler"


class RecordingReader:
    """A StateReader over a real registry client that remembers every read."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.reads: list[dict[str, Any]] = []

    def cache_get(self, key: str) -> str | None:
        return None

    def cache_put(self, key: str, value: str) -> None:
        pass

    def has_tool(self, tool: str) -> bool:
        return True

    async def read(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        result = await self.client.call(tool, dict(args), reason="record an observe case")
        output = dict(result.output)
        self.reads.append({"tool": tool, "args": dict(args), "output": output})
        return output


def _sh(box: sandbox.Sandbox, argv: list[str]) -> None:
    argv = [a.replace("{root}", str(box.root)) for a in argv]
    assert box.pid is not None
    subprocess.run(["nsenter", "-t", str(box.pid), "-n", "-m", "--", *argv], check=True)


async def record(domain: str, path: Path) -> None:
    controller = importlib.import_module(f"controllers.{domain}").CONTROLLER
    case = load_case(path)
    name = f"rec{os.getpid() % 100000}"
    with tempfile.TemporaryDirectory() as base:
        box = await sandbox.up(name, base=Path(base))
        try:
            client = RegistryClient(box.address, agent_id=AGENT)
            try:
                for op in case.get("setup") or []:
                    if "sh" in op:
                        _sh(box, list(op["sh"]))
                    else:
                        await client.call(op["tool"], op["input"], reason="record setup")
                reader = RecordingReader(client)
                state = await controller.observe(reader, desired_from(case, controller))
            finally:
                await client.close()
        finally:
            await sandbox.down(name, base=Path(base))
    if case.get("description"):
        case["description"] = " ".join(case["description"].split())
    if case.get("specs"):
        case["specs"] = LiteralScalarString(case["specs"])
    case["reads"] = reader.reads
    case["expect"] = state.model_dump(mode="json")
    yaml = YAML()
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(case, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("domain")
    parser.add_argument("cases", nargs="+", type=Path)
    args = parser.parse_args()
    for path in args.cases:
        asyncio.run(record(args.domain, path))
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
