"""The firewall controller's no-op path (observe + diff) against a sandbox, N = 100 … 10,000.

For each N: a sandbox, one Firewall spec of the peers' shape (table inet
filter, chain input policy drop, N x `ip saddr 10.a.b.0/24 tcp dport P
accept` plus the management accepts), applied once; then, with the store's
canonical-form cache warm, repeated in-process `observe` + `diff` (the
no-op path: ONE firewall.ruleset call + cache hits), against the raw floor
measured in the same sandbox namespace (`nft list table inet filter`,
subprocess). Prints medians (and min) in ms and the ratio to the floor.
Not a test; needs root. Run: `.venv/bin/python bench/bench_firewall_observe.py
[--sizes 100 1000 10000] [--runs 9]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import gen_spec

from controllers.firewall import CONTROLLER
from reconciler.client import RegistryClient
from reconciler.engine.reader import ReadOnlyReader
from reconciler.engine.store import Store
from reconciler.sdk.controller import Desired
from sandbox import lifecycle as sandbox
from specs.loader import load_documents


def spec(n: int) -> str:
    rules = ["tcp dport { 22, 9090 } accept", *gen_spec.rules(n)]  # management first
    doc = {
        "apiVersion": "aios.dev/v1",
        "kind": "Firewall",
        "metadata": {"name": "peers"},
        "spec": {
            "tables": [
                {
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
            ]
        },
    }
    return json.dumps(doc)  # JSON is YAML


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.1f} (min {min(values) * 1000:6.1f})"


async def one_size(n: int, runs: int, base: Path) -> None:
    name = f"fwb{n}"
    box = await sandbox.up(name, base=base)
    store = Store(base / f"state-{n}")
    client = RegistryClient(f"unix://{box.socket}", agent_id="aios-reconciler")
    try:
        catalogue = dict(await client.list_tools())
        specset = load_documents([("bench.yaml", spec(n).encode())])
        desired = Desired("firewall", tuple(specset.resources))
        reader = ReadOnlyReader(client, catalogue, reason="bench", cache=store)
        state = await CONTROLLER.observe(reader, desired)
        diff = CONTROLLER.diff(desired, state)
        for call in CONTROLLER.transactions(CONTROLLER.plan(diff, desired, state)):
            await client.call(call.tool, call.input, reason="bench")
        observe, compare, floor = [], [], []
        for _ in range(runs):
            reader = ReadOnlyReader(client, catalogue, reason="bench", cache=store)
            t0 = time.perf_counter()
            state = await CONTROLLER.observe(reader, desired)
            t1 = time.perf_counter()
            diff = CONTROLLER.diff(desired, state)
            t2 = time.perf_counter()
            assert not diff.changes and reader.calls == ["firewall.ruleset"], reader.calls
            observe.append(t1 - t0)
            compare.append(t2 - t1)
            t3 = time.perf_counter()
            subprocess.run(  # noqa: ASYNC221 - the floor is a plain blocking call
                ["nsenter", "-t", str(box.pid), "-n", "nft", "list", "table", "inet", "filter"],
                capture_output=True,
                check=True,
            )
            floor.append(time.perf_counter() - t3)
        total = [a + b for a, b in zip(observe, compare, strict=True)]
        ratio = statistics.median(total) / statistics.median(floor)
        print(
            f"N={n:>6}  observe {ms(observe)}  diff {ms(compare)}  observe+diff {ms(total)}  "
            f"raw nft list {ms(floor)}  ratio {ratio:.2f}"
        )
    finally:
        await client.close()
        store.close()
        await sandbox.down(name, base=base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; times in ms, median (min) of {args.runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            asyncio.run(one_size(n, args.runs, Path(tmp)))


if __name__ == "__main__":
    main()
