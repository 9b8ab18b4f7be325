"""firewall.apply and net.state against their raw floors, in throwaway namespaces.

(a) firewall.apply of `table inet filter` with N = 1,000 and 10,000 rules of the
peers' shape (`ip saddr 10.a.b.0/24 tcp dport P accept`, reference/peers.md),
replacing an existing table of the same size: the Tool class in-process
(ToolContext + ProcessRunner; snapshot = `nft list table`, render + rule
checks, `nft -f`) vs raw `nft list table` + `nft -f` of the same script run
with subprocess. Optionally also through registry.server.grpc (schema validation
of the input, audit, backup on disk, gRPC).
(b) net.state of 200 ifb links with an address each vs the same set of raw
commands the tool runs (`ip -j -d addr`, routes and rules of both families,
and the sysctl read) with subprocess + json.loads, run one after the other
and, as the tool does, all at once; with the default sysctl set and with
`sysctls: []`.

Each figure is the median (and min) of several runs; ratios = tool / raw.
Targets: firewall.apply <= 2x, net.state <= 3x. Not a test; needs root.
Run: `.venv/bin/python bench/bench_net_firewall.py [--runs 7] [--no-server]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import gen_spec

from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.drivers.net.system import SYSCTL_DIRS
from registry.drivers.nft import ruleset as nft
from registry.handlers.firewall import FirewallApply
from registry.handlers.net import NetState


@contextmanager
def namespace() -> Iterator[str]:
    name = f"aiosbench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def ctx_for(ns: str, tmp: Path) -> ToolContext:
    return ToolContext(
        runner=ProcessRunner(), root=tmp, state_dir=tmp, work=tmp, execution_id="bench", netns=ns
    )


def table(n: int) -> dict[str, Any]:
    rules = gen_spec.rules(n)
    return {
        "family": "inet",
        "name": "filter",
        "chains": [
            {
                "name": "input",
                "type": "filter",
                "hook": "input",
                "priority": "filter",
                "policy": "drop",
                "rules": rules,
            }
        ],
    }


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def line(label: str, tool: list[float], raw: list[float], target: float) -> str:
    ratio = statistics.median(tool) / statistics.median(raw)
    verdict = "ok" if ratio <= target else "OVER TARGET"
    return (
        f"{label:<58} tool {statistics.median(tool):8.1f} ms (min {min(tool):7.1f})   "
        f"raw {statistics.median(raw):8.1f} ms (min {min(raw):7.1f})   "
        f"ratio {ratio:4.2f}x (target <= {target:g}x, {verdict})"
    )


def bench_firewall(n: int, runs: int, tmp: Path, server: bool) -> list[str]:
    args = {"tables": [table(n)]}
    script = nft.render(args["tables"]).text
    out = []
    with namespace() as ns:
        raw_file = tmp / f"apply-{n}.nft"
        raw_file.write_text(script)
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(raw_file)], check=True)
        tool = FirewallApply()

        async def via_tool() -> None:
            ctx = ctx_for(ns, tmp)
            await tool.snapshot(ctx, args)
            await tool.run(ctx, args)

        def raw() -> None:
            listed = subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "list", "table", "inet", "filter"],
                capture_output=True,
                check=True,
            )
            assert listed.stdout
            subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(raw_file)], check=True)

        tool_times, raw_times = [], []
        for _ in range(runs):  # interleaved, so drift hits both alike
            tool_times += timed(lambda: asyncio.run(via_tool()), 1)
            raw_times += timed(raw, 1)
        out.append(line(f"firewall.apply {n:>6} rules (in-process)", tool_times, raw_times, 2))
        if server:
            out.append(
                line(
                    f"firewall.apply {n:>6} rules (registry server)",
                    asyncio.run(via_server(ns, tmp, args, runs)),
                    raw_times,
                    2,
                )
            )
    return out


async def via_server(ns: str, tmp: Path, args: dict[str, Any], runs: int) -> list[float]:
    from registry_support import running_registry

    from reconciler.client import RegistryClient

    times = []
    async with (
        running_registry(tmp / "server", netns=ns) as (_s, address),
        RegistryClient(address) as client,
    ):
        await client.call("firewall.apply", args, reason="warm-up", timeout=60)
        for _ in range(runs):
            start = time.perf_counter()
            await client.call("firewall.apply", args, reason="bench", timeout=60)
            times.append((time.perf_counter() - start) * 1000)
    return times


def raw_state_commands(ns: str, *, sysctls: bool) -> list[list[str]]:
    cmds = [
        ["ip", "-n", ns, "-j", "-d", "addr", "show"],
        ["ip", "-n", ns, "-j", "-4", "route", "show", "table", "all"],
        ["ip", "-n", ns, "-j", "-6", "route", "show", "table", "all"],
        ["ip", "-n", ns, "-j", "-4", "rule", "show"],
        ["ip", "-n", ns, "-j", "-6", "rule", "show"],
    ]
    if sysctls:
        globs = " ".join(f"/proc/sys/net/{d}/*" for d in SYSCTL_DIRS)
        cmds.append(["ip", "netns", "exec", ns, "sh", "-c", f"exec grep -s -H '' {globs}"])
    return cmds


def bench_state(links: int, runs: int, tmp: Path) -> list[str]:
    out = []
    with namespace() as ns:
        batch = "".join(
            f"link add dev b{i} type ifb\naddr add 10.{i // 250}.{i % 250}.1/24 dev b{i}\n"
            f"link set dev b{i} up mtu {1400 + i % 100}\n"
            for i in range(links)
        )
        subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch.encode(), check=True)
        tool = NetState()
        for label, args, with_sysctls in (
            ("net.state 200 links, default sysctls", {}, True),
            ("net.state 200 links, sysctls: []", {"sysctls": []}, False),
        ):
            cmds = raw_state_commands(ns, sysctls=with_sysctls)

            def raw(cmds: list[list[str]] = cmds) -> None:
                for argv in cmds:
                    text = subprocess.run(argv, capture_output=True, check=False).stdout
                    if "-j" in argv:  # the ip dumps are JSON; the sysctl grep is text
                        json.loads(text or b"[]")

            def raw_concurrent(cmds: list[list[str]] = cmds) -> None:
                procs = [subprocess.Popen(a, stdout=subprocess.PIPE) for a in cmds]
                for argv, proc in zip(cmds, procs, strict=True):
                    text, _ = proc.communicate()
                    if "-j" in argv:
                        json.loads(text or b"[]")

            async def via_tool(args: dict[str, Any] = args) -> None:
                state = await tool.run(ctx_for(ns, tmp), args)
                assert len(state["links"]) == links + 1

            tool_times, raw_times, par_times = [], [], []
            for _ in range(runs):
                tool_times += timed(lambda: asyncio.run(via_tool()), 1)
                raw_times += timed(raw, 1)
                par_times += timed(raw_concurrent, 1)
            out.append(line(label, tool_times, raw_times, 3))
            out.append(line(label + " (raw concurrent)", tool_times, par_times, 3))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-server", action="store_true", help="skip the registry server runs")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aios-bench-") as tmp_name:
        tmp = Path(tmp_name)
        lines = []
        for n in (1000, 10000):
            lines += bench_firewall(n, opts.runs, tmp, server=not opts.no_server)
        lines += bench_state(200, opts.runs, tmp)
    print(f"bench_net_firewall: median of {opts.runs} runs each")
    for text in lines:
        print(text)


if __name__ == "__main__":
    main()
