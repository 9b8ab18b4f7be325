"""Registry round trip: 1,000 sequential Execute calls of a cheap read over a unix socket.

Starts registry.server.grpc on a unix socket with a scratch root and state dir,
then times `fs.stat {"path": "/"}` 1,000 times through RegistryClient and
1,000 times through the raw generated stub (one warm-up round each, not
counted), and prints p50/p99 in ms and the client/raw ratios. Every call goes
through the whole pipeline (schema, capabilities, audit append with fsync),
so the raw figure is the registry's own floor and the ratio is the client's
overhead. Run: `.venv/bin/python bench/bench_registry.py [N]`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

from contract._gen import tools_pb2, tools_pb2_grpc
from reconciler.client import RegistryClient
from registry.server.grpc import RegistryServer, ServeOptions

TOOL, ARGS = "fs.stat", b'{"path":"/"}'


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def via_client(address: str, n: int) -> list[float]:
    times = []
    async with RegistryClient(address) as client:
        await client.call(TOOL, {"path": "/"}, reason="warm-up")
        for _ in range(n):
            start = time.perf_counter()
            await client.call(TOOL, {"path": "/"}, reason="bench")
            times.append((time.perf_counter() - start) * 1000)
    return times


async def via_stub(address: str, n: int) -> list[float]:
    times = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = tools_pb2_grpc.ToolRegistryStub(channel)
        request = tools_pb2.ExecuteRequest(
            tool_name=TOOL, agent_id="aios-reconciler", input_json=ARGS, reason="bench"
        )
        await stub.Execute(request)
        for _ in range(n):
            start = time.perf_counter()
            response = await stub.Execute(request, timeout=30)
            times.append((time.perf_counter() - start) * 1000)
            assert response.success, response.error
    return times


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="aios-bench-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        options = ServeOptions(
            listen=f"unix://{tmp}/registry.sock", root=root, state_dir=Path(tmp) / "state"
        )
        server = RegistryServer(options)
        address = await server.start()
        try:
            raw = await via_stub(address, n)
            client = await via_client(address, n)
        finally:
            await server.stop(grace=1)
    print(f"registry Execute {TOOL}, {n} sequential calls over a unix socket")
    print(f"{'':10} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for label, samples in (("raw stub", raw), ("client", client)):
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        print(f"{label:10} {p50:8.3f} {p99:8.3f} {statistics.fmean(samples):8.3f}")
    ratio50 = percentile(client, 0.5) / percentile(raw, 0.5)
    ratio99 = percentile(client, 0.99) / percentile(raw, 0.99)
    print(f"ratio client/raw: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
