"""Record packages observe cases with the real pkg tools on a scratch root (needs root).

An observe case may carry `setup:` — the machine it starts from, as a list
of operations run in order on a fresh scratch root:
  {tool: pkg.repos | pkg.ensure, input: {...}}   a real registry tool call
  {conffiles: NAME}   build NAME 1.0-1 with a conffile, `dpkg -i` it, then
                      `dpkg -r` it: a dpkg 'rc' (config-files) entry
  {dpkg: [ARGS]}      raw `dpkg --root=ROOT --force-script-chrootless ARGS`
The string `{demo}` in setup inputs and specs stands for the demo repository
(sandbox.debrepo, cached) as a `file:` URL; the specs are written back with
it substituted (the recorded reads carry that URL). For each case given (default:
every case under observe/), this script runs the setup, then the packages
controller's observe with the case's specs, owned and pruned objects against
the REAL registry tool handlers, and writes back `reads` (every tool call
with its args and output) and `expect` (the state), unless `expect` exists
and `--keep-expect` is given.
Run: `.venv/bin/python -m tests.controllers.packages.record [CASE.yaml …]`.
Everything happens under a temporary directory; the host's dpkg is never
touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from controllers.packages import CONTROLLER
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.drivers.pkg.apt import ensure_dpkg_root
from registry.handlers.index import tool_classes
from sandbox import debrepo
from tests.controllers.harness import desired_from

HERE = Path(__file__).resolve().parent


class LocalReader:
    """A StateReader running the registry's tool handlers in-process, recording them."""

    def __init__(self, make_ctx: Any) -> None:
        self.make_ctx = make_ctx
        self.reads: list[dict[str, Any]] = []

    def cache_get(self, key: str) -> str | None:
        return None

    def cache_put(self, key: str, value: str) -> None:
        pass

    def has_tool(self, tool: str) -> bool:
        return tool in tool_classes()

    async def read(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        output = await tool_classes()[tool]().run(self.make_ctx(), dict(args))
        self.reads.append({"tool": tool, "args": json.loads(json.dumps(args)), "output": output})
        return dict(output)


def demo_url() -> str:
    return f"file:{debrepo.cached()}"


def substitute(value: Any) -> Any:
    return json.loads(json.dumps(value).replace("{demo}", demo_url()))


def conffile_deb(work: Path, name: str) -> Path:
    tree = work / name
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "etc" / f"{name}.conf").write_text("setting = 1\n")
    (tree / "DEBIAN/conffiles").write_text(f"/etc/{name}.conf\n")
    (tree / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: all\n"
        f"Maintainer: {debrepo.MAINTAINER}\nDescription: a package with a conffile\n"
    )
    deb = work / f"{name}.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def dpkg(root: Path, *args: str) -> None:
    subprocess.run(
        ["dpkg", f"--root={root}", "--force-script-chrootless", *args],
        check=True,
        capture_output=True,
    )


def _yaml() -> YAML:
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    return yaml


async def record(case: Any, keep_expect: bool) -> None:
    """Run the case's setup and observe; fill in `reads` and `expect`."""
    with tempfile.TemporaryDirectory(prefix="pkg-record-") as tmp:
        base = Path(tmp)
        root, state = base / "root", base / "state"
        root.mkdir()
        state.mkdir()
        ensure_dpkg_root(root)
        counter = iter(range(1_000_000))

        def make_ctx() -> ToolContext:
            work = base / "work" / str(next(counter))
            work.mkdir(parents=True)
            return ToolContext(
                runner=ProcessRunner(), root=root, state_dir=state, work=work, execution_id="rec"
            )

        for op in case.get("setup") or []:
            if "tool" in op:
                await tool_classes()[op["tool"]]().run(make_ctx(), substitute(op["input"]))
            elif "conffiles" in op:
                dpkg(root, "-i", str(conffile_deb(base, op["conffiles"])))
                dpkg(root, "-r", op["conffiles"])
            else:
                dpkg(root, *op["dpkg"])
        if case.get("specs"):
            case["specs"] = LiteralScalarString(str(case["specs"]).replace("{demo}", demo_url()))
        reader = LocalReader(make_ctx)
        observed = await CONTROLLER.observe(reader, desired_from(case, CONTROLLER))
    case["reads"] = reader.reads
    if not (keep_expect and "expect" in case):
        case["expect"] = observed.model_dump(mode="json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", type=Path)
    parser.add_argument("--keep-expect", action="store_true")
    args = parser.parse_args()
    for path in args.cases or sorted((HERE / "observe").glob("*.yaml")):
        yaml = _yaml()
        case = yaml.load(path.read_text())
        asyncio.run(record(case, args.keep_expect))
        with path.open("w") as f:
            yaml.dump(case, f)
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
