"""pkg.ensure vs raw apt-get, and model.fetch vs raw httpx streaming (not a test).

(a) `pkg.ensure` of 20 aios-demo bulk packages into a fresh scratch root
(the before-image the pipeline takes, then run) vs the raw
`apt-get install -y <the same 20>` with the same generated APT_CONFIG on
another fresh root. Both roots get the same local `file:` repository and an
`apt-get update` that is not timed. Prints median seconds and the ratio.

(b) `model.fetch` of a 200 MB generated GGUF (sandbox.demo.gguf_chunks)
from sandbox.fileserver (its own process) over loopback vs raw httpx
streaming of the same URL into a file (no hashing, no checks). Prints median
MB/s and the ratio (target >= 0.8).

Run: `.venv/bin/python bench/bench_pkg_model.py [runs]` (root; default 5 runs).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.drivers.pkg.apt import apt_config_path, ensure_dpkg_root
from registry.handlers.index import tool_classes
from sandbox import debrepo, demo

BULK = [f"aios-demo-bulk{i:02d}" for i in range(20)]
MODEL_SIZE = 200 * 1000 * 1000
MB = 1e6


def context(root: Path, state: Path, work: Path) -> ToolContext:
    work.mkdir(parents=True, exist_ok=True)
    return ToolContext(
        runner=ProcessRunner(), root=root, state_dir=state, work=work, execution_id=work.name
    )


def fresh_root(base: Path, repo: Path) -> tuple[Path, Path, dict[str, str]]:
    """A scratch root with the demo repository and a refreshed index (untimed)."""
    root, state = Path(tempfile.mkdtemp(dir=base)), Path(tempfile.mkdtemp(dir=base))
    ensure_dpkg_root(root)
    sources = root / "etc/apt/sources.list.d/demo.list"
    sources.write_text(f"deb [trusted=yes] file:{repo} ./\n")
    env = {"APT_CONFIG": str(apt_config_path(root, state)), "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
    return root, state, env


async def tool_ensure(base: Path, repo: Path) -> tuple[float, float]:
    """(seconds for before-image + run, seconds for run alone)."""
    root, state, _env = fresh_root(base, repo)
    tool = tool_classes()["pkg.ensure"]()
    args = {"install": [{"name": n} for n in BULK]}
    start = time.perf_counter()
    ctx = context(root, state, state / "work")
    await tool.snapshot(ctx, args)
    ran = time.perf_counter()
    output = await tool.run(ctx, args)
    end = time.perf_counter()
    assert len(output["installed"]) == 20, output
    return end - start, end - ran


def raw_apt(base: Path, repo: Path) -> float:
    _root, _state, env = fresh_root(base, repo)
    start = time.perf_counter()
    subprocess.run(
        ["apt-get", "install", "-y", "-q", *BULK], env=env, check=True, capture_output=True
    )
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def generate_model(directory: Path) -> str:
    path = directory / "bench-200mb.gguf"
    with path.open("wb") as f:
        for piece in demo.gguf_chunks("bench-200mb", MODEL_SIZE):
            f.write(piece)
    return demo.gguf_sha256("bench-200mb", MODEL_SIZE)


async def tool_fetch(url: str, sha: str, base: Path) -> float:
    root, state = Path(tempfile.mkdtemp(dir=base)), Path(tempfile.mkdtemp(dir=base))
    tool = tool_classes()["model.fetch"]()
    args = {"url": url, "sha256": sha, "path": "/var/lib/aios/models/bench.gguf"}
    start = time.perf_counter()
    ctx = context(root, state, state / "work")
    await tool.snapshot(ctx, args)
    out = await tool.run(ctx, args)
    elapsed = time.perf_counter() - start
    assert out["size"] == MODEL_SIZE and out["downloaded"], out
    shutil.rmtree(root)
    return MODEL_SIZE / MB / elapsed


def raw_fetch_sync(url: str, base: Path, *, durable: bool = False) -> float:
    """The floor: httpx's synchronous client streaming into a file, nothing else;
    `durable` adds the fsync a download that must survive a crash needs."""
    target = base / "raw.gguf"
    start = time.perf_counter()
    with (
        httpx.Client() as client,
        client.stream("GET", url) as response,
        target.open("wb") as f,
    ):
        for chunk in response.iter_raw():
            f.write(chunk)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    elapsed = time.perf_counter() - start
    assert target.stat().st_size == MODEL_SIZE
    target.unlink()
    return MODEL_SIZE / MB / elapsed


async def raw_fetch_async(url: str, base: Path) -> float:
    """httpx's asyncio client streaming into a file (slower than the sync one here)."""
    target = base / "raw.gguf"
    start = time.perf_counter()
    async with httpx.AsyncClient() as client, client.stream("GET", url) as response:
        with target.open("wb") as f:
            async for chunk in response.aiter_raw():
                f.write(chunk)
    elapsed = time.perf_counter() - start
    assert target.stat().st_size == MODEL_SIZE
    target.unlink()
    return MODEL_SIZE / MB / elapsed


def start_server(www: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "sandbox.fileserver", "--dir", str(www), "--port", str(port)]
    server = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("file server did not start")


async def bench_fetch(base: Path, runs: int) -> None:
    www = base / "www"
    www.mkdir()
    sha = generate_model(www)
    port = free_port()
    server = start_server(www, port)
    url = f"http://127.0.0.1:{port}/bench-200mb.gguf"
    tool_mb: list[float] = []
    sync_mb: list[float] = []
    async_mb: list[float] = []
    durable_mb: list[float] = []
    try:
        raw_fetch_sync(url, base)  # warm-up
        for _ in range(runs):  # interleaved so load changes hit all alike
            tool_mb.append(await tool_fetch(url, sha, base))
            sync_mb.append(raw_fetch_sync(url, base))
            durable_mb.append(raw_fetch_sync(url, base, durable=True))
            async_mb.append(await raw_fetch_async(url, base))
    finally:
        server.terminate()
        server.wait()
    tm, sm, dm, am = (statistics.median(x) for x in (tool_mb, sync_mb, durable_mb, async_mb))
    print(
        f"(b) model.fetch of 200 MB over loopback: tool {tm:.0f} MB/s (download, sha256, GGUF "
        f"check, fsync, rename); target >= 0.8 of raw httpx streaming:\n"
        f"    raw httpx sync, no fsync   {sm:.0f} MB/s -> ratio {tm / sm:.2f}\n"
        f"    raw httpx sync + fsync     {dm:.0f} MB/s -> ratio {tm / dm:.2f} "
        "(the same durability the tool gives)\n"
        f"    raw httpx async, no fsync  {am:.0f} MB/s -> ratio {tm / am:.2f}"
    )


async def main(runs: int) -> None:
    repo = debrepo.cached()
    with tempfile.TemporaryDirectory(prefix="aios-bench-") as tmp:
        base = Path(tmp)
        await tool_ensure(base, repo)  # warm-up (page cache, imports)
        tool_s: list[float] = []
        run_s: list[float] = []
        raw_s: list[float] = []
        for _ in range(runs):
            both, alone = await tool_ensure(base, repo)
            tool_s.append(both)
            run_s.append(alone)
            raw_s.append(raw_apt(base, repo))
        t, u, r = (statistics.median(x) for x in (tool_s, run_s, raw_s))
        print(
            f"(a) pkg.ensure of 20 packages: tool {t:.3f} s with the pipeline's before-image "
            f"(run alone {u:.3f} s), raw apt-get {r:.3f} s; ratio {t / r:.2f} ({u / r:.2f})"
        )
        await bench_fetch(base, runs)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
