"""One deleted rule in an N-rule table, healed end to end by the firewall controller.

For each N: a sandbox, the peers' Firewall spec (bench/peers/gen_spec.py: table
inet filter, chain input policy drop, 2 fixed rules + N generated ones),
applied once. Then, per run: raw `nft delete rule … handle H` of the rule in
the middle of the chain (inside the sandbox's namespace, not timed), and the
heal, timed phase by phase in this process as `aios apply` runs it:

  plan     reconciler.engine.planning.plan_domain: observe (one firewall.ruleset
           listing with handles + the cached canonical form), diff, the rules
           planner and the verifier (schemas, the effect model's simulation)
  execute  the calls controller.transactions() makes, through RegistryClient
           (one firewall.apply: one nft transaction)
  verify   observe + diff again (what reconciler.engine.apply.verify_after does);
           the diff must be empty
  total    the three together (the end-to-end heal)

After each run the live table must be byte-equal to the canonical text
(raw `nft list table`, not timed). Prints medians (min-max) in ms, what the
plan did (patch or whole-table replace) and the registry calls each phase
made. Not a test; needs root. Run: `.venv/bin/python bench/bench_firewall_heal.py
[--sizes 1000 10000] [--runs 7]`.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

import gen_spec

from controllers.firewall import CONTROLLER
from reconciler.client import RegistryClient
from reconciler.engine.planning import plan_domain
from reconciler.engine.reader import ReadOnlyReader
from reconciler.engine.store import Store
from reconciler.sdk.controller import Desired
from sandbox import lifecycle as sandbox
from specs.loader import load_documents


def spec(n: int) -> str:
    doc = {
        "apiVersion": "aios.dev/v1",
        "kind": "Firewall",
        "metadata": {"name": "peers"},
        "spec": {
            "tables": [
                {
                    "family": gen_spec.TABLE_FAMILY,
                    "name": gen_spec.TABLE_NAME,
                    "force": True,  # input policy drop without tcp 22: the lockout guard
                    "chains": [
                        {
                            "name": gen_spec.CHAIN,
                            "type": "filter",
                            "hook": "input",
                            "priority": "filter",
                            "policy": "drop",
                            "rules": gen_spec.rules(n),
                        }
                    ],
                }
            ]
        },
    }
    return json.dumps(doc)  # JSON is YAML


def nft(pid: int, *args: str) -> str:
    argv = ["nsenter", "-t", str(pid), "-n", "nft", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def delete_middle_rule(pid: int) -> str:
    listing = nft(pid, "-a", "list", "chain", "inet", "filter", "input")
    rules = [
        line.strip()
        for line in listing.splitlines()
        if "# handle" in line and not line.strip().startswith(("table ", "chain "))
    ]
    victim = rules[len(rules) // 2]
    text, handle = victim.rsplit(" # handle ", 1)
    nft(pid, "delete", "rule", "inet", "filter", "input", "handle", handle)
    return text


def ms(values: list[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"{statistics.median(values) * 1000:7.1f} ({low:.1f}-{high:.1f})"


async def one_size(n: int, runs: int, base: Path) -> None:
    name = f"fwh{n}"
    box = await sandbox.up(name, base=base)
    store = Store(base / f"state-{n}")
    client = RegistryClient(f"unix://{box.socket}", agent_id="aios-reconciler")
    want = gen_spec.ruleset_text(n)
    try:
        catalogue = dict(await client.list_tools())
        specset = load_documents([("bench.yaml", spec(n).encode())])
        desired = Desired("firewall", tuple(specset.resources))
        reader = ReadOnlyReader(client, catalogue, reason="bench", cache=store)
        work = await plan_domain(CONTROLLER, desired, reader, catalogue)
        for call in CONTROLLER.transactions(work.steps):
            await client.call(call.tool, call.input, reason="bench")
        phases: dict[str, list[float]] = {"plan": [], "execute": [], "verify": [], "total": []}
        kinds: list[str] = []
        calls: dict[str, list[str]] = {}
        for _ in range(runs):
            delete_middle_rule(box.pid)
            t0 = time.perf_counter()
            reader = ReadOnlyReader(client, catalogue, reason="bench: observe", cache=store)
            work = await plan_domain(CONTROLLER, desired, reader, catalogue)
            t1 = time.perf_counter()
            assert not work.verdict.findings and work.error is None, (work.verdict, work.error)
            transactions = CONTROLLER.transactions(work.steps)
            for call in transactions:
                await client.call(call.tool, call.input, reason="bench: heal")
            t2 = time.perf_counter()
            after = ReadOnlyReader(client, catalogue, reason="bench: verify", cache=store)
            state = await CONTROLLER.observe(after, desired)
            left = CONTROLLER.diff(desired, state)
            t3 = time.perf_counter()
            assert not left.changes, left.changes
            live = nft(box.pid, "list", "table", "inet", "filter")
            assert live == want, "the live table differs from the spec after the heal"
            for key, value in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
                phases[key].append(value)
            kinds.append(_kind(work.steps[0].input) if work.steps else "none")
            calls = {
                "plan": list(reader.calls),
                "execute": [c.tool for c in transactions],
                "verify": list(after.calls),
            }
        print(f"N={n:>6}: " + "  ".join(f"{k} {ms(v)}" for k, v in phases.items()))
        print(f"          plan kind: {', '.join(sorted(set(kinds)))}; registry calls: {calls}")
    finally:
        await client.close()
        store.close()
        await sandbox.down(name, base=base)


def _kind(step_input: dict[str, Any]) -> str:
    if step_input.get("patch"):
        ops = sum(len(p.get("ops", ())) for p in step_input["patch"])
        return f"patch ({ops} op{'s' if ops != 1 else ''})"
    return "whole-table replace" if step_input.get("tables") else "delete"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_firewall_heal.py needs root (sandboxes are network namespaces)")
    print(
        f"load average {os.getloadavg()[0]:.2f}; times in ms, median (min-max) of {args.runs} "
        "runs; one rule in the middle of the chain deleted before each run"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            asyncio.run(one_size(n, args.runs, Path(tmp)))


if __name__ == "__main__":
    main()
