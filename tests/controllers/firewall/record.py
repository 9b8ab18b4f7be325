"""Record the observed state of firewall fixture cases with the real tools (needs root).

A plan or observe case may carry `live:` — an nft script (canonical text or
any nft input) that makes the live ruleset the case starts from. For each
case given (default: every case under plan/ and observe/), this script
creates a throwaway network namespace, loads `live` there with `nft -f`,
runs the firewall controller's observe with the case's specs, owned and
pruned objects against the REAL registry tool handlers (firewall.ruleset
lists the namespace, firewall.canonicalize loads the desired tables in a
namespace of its own), and writes back into the case file:
  plan cases:    `state` (the observed FirewallState as JSON);
  observe cases: `reads` (every tool call with its args and output) and
                 `expect` (the state), unless `expect` exists and `--keep-expect`.
An observe case with a `cache:` key (any value) is observed twice: once
to fill the canonical-form cache, then for real with it (the reads show the
no-op path: no canonicalize call); the cache is written to `cache`.
Run: `.venv/bin/python -m tests.controllers.firewall.record [CASE.yaml …]`.
Never touches the host ruleset: every nft call runs in the namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from controllers.firewall import CONTROLLER
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.handlers.index import tool_classes
from tests.controllers.harness import desired_from

HERE = Path(__file__).resolve().parent


class LocalReader:
    """A StateReader that runs the registry's tool handlers in-process, recording them."""

    def __init__(self, ctx: ToolContext, cache: Mapping[str, str] | None = None) -> None:
        self.ctx = ctx
        self.cache: dict[str, str] = dict(cache or {})
        self.reads: list[dict[str, Any]] = []

    def cache_get(self, key: str) -> str | None:
        return self.cache.get(key)

    def cache_put(self, key: str, value: str) -> None:
        self.cache[key] = value

    def has_tool(self, tool: str) -> bool:
        return tool in tool_classes()

    async def read(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        handler = tool_classes()[tool]()
        assert not handler.spec.writes, f"{tool} is a write tool"
        output = await handler.run(self.ctx, dict(args))
        self.reads.append({"tool": tool, "args": dict(args), "output": output})
        return output


def literal(value: Any) -> Any:
    """Multi-line strings as YAML literal blocks, recursively."""
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def observe_in(
    namespace: str, case: Any, cache: Mapping[str, str] | None
) -> tuple[Any, LocalReader]:
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ToolContext(
            runner=ProcessRunner(),
            root=Path(tmp),
            state_dir=Path(tmp),
            work=Path(tmp),
            execution_id="record",
            netns=namespace,
        )
        reader = LocalReader(ctx, cache)
        state = asyncio.run(CONTROLLER.observe(reader, desired_from(case, CONTROLLER)))
    return state, reader


def record(path: Path, *, keep_expect: bool) -> None:
    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=2, offset=0)
    case = yaml.load(path.read_text(encoding="utf-8"))
    namespace = f"fwrec-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        if case.get("live"):
            subprocess.run(
                ["ip", "netns", "exec", namespace, "nft", "-f", "-"],
                input=str(case["live"]).encode(),
                check=True,
            )
        cache: Mapping[str, str] | None = None
        if case.get("cache") is not None:  # a warm cache: observe once to fill it
            cache = observe_in(namespace, case, None)[1].cache
        state, reader = observe_in(namespace, case, cache)
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)
    observed = literal(state.model_dump(mode="json"))
    if path.parent.name == "observe":
        case["reads"] = literal(reader.reads)
        if cache is not None:
            case["cache"] = literal(dict(cache))
        if not (keep_expect and "expect" in case):
            case["expect"] = observed
    else:
        case["state"] = observed
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(case, out)
    print(f"recorded {path.relative_to(HERE)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", type=Path)
    parser.add_argument("--keep-expect", action="store_true")
    args = parser.parse_args(argv)
    cases = args.cases or sorted([*HERE.glob("plan/*.yaml"), *HERE.glob("observe/*.yaml")])
    for path in cases:
        record(path.resolve(), keep_expect=args.keep_expect)
    return 0


if __name__ == "__main__":
    sys.exit(main())
