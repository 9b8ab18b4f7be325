"""The AI runtime's gRPC server: aios.runtime.AIRuntime and RuntimeDetails over a Supervisor.

`RuntimeServer(options)` serves, on one grpc.aio server:

- `aios.runtime.AIRuntime` (contract/_gen/runtime_pb2*, aiOS's messages exactly,
  docs/aios-contract.md §1.4, §4.5). LoadModel applies aiOS's defaults (`load_params`:
  context ≤0 → 2048, threads ≤0 → 4, port ≤0 → a free one, empty model_path →
  `<model_dir>/<model_name>`) and answers the status once the model is ready (or failed its
  health check: gRPC OK with `error: …`, as aiOS); the supervisor re-applies changed
  parameters. A refused file or a failed start is INTERNAL `Failed to load model: <reason>`,
  a model that does not fit in memory FAILED_PRECONDITION. UnloadModel of an unknown name is
  INTERNAL `Failed to unload model: Model '<n>' not found`; else `Status{success: true,
  message: "Model '<n>' unloaded"}`. ListModels lists every model the supervisor knows, with
  `restarting: …` while it restarts a crashed llama-server.
  Infer and StreamInfer route as runtime.routing says (a named model not known to the
  supervisor whose `<model_dir>/<name>.gguf` exists is loaded first, on demand, with
  aiOS's start-up settings by file size, `on_demand_settings`; concurrent first requests
  share that one load). Infer asks llama-server for a JSON object (512 tokens and
  temperature 0.7 when the request gives ≤0, as aiOS); StreamInfer sends each token delta
  as llama-server sends it and a last chunk `done=true`. HealthCheck is aiOS's shape:
  healthy, service `aios-runtime`, `<ready>/<total> models loaded, uptime <n>s`, details
  `loaded_models`, `total_models` and `model:<name>` → `status=<s> port=<p>`.
- `aios.reconciler.runtime.RuntimeDetails.Describe` (ours): every known model with its
  path, sha256, parameters, pid, restarts, last error and whether it was loaded on demand.

No RPC holds a lock across a load: the supervisor keeps per-model state, so ListModels and
other models' Infer answer while one loads. `serve(options)` runs until SIGTERM/SIGINT, then
stops accepting, gives in-flight calls a grace period and closes the supervisor, which kills
every llama-server's process group. Listening rules: runtime.listen.

Called by `aios runtime serve` (reconciler.cli.runtime), tests and bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import grpc

from contract._gen import (
    common_pb2,
    runtime_details_pb2,
    runtime_details_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from contract.sockets import unix_path
from runtime import llama
from runtime.listen import DEFAULT_LISTEN, bind
from runtime.routing import RoutingError, route
from runtime.supervisor import LoadError, LoadParams, ModelInfo, Supervisor

log = logging.getLogger(__name__)

SERVICE = "aios-runtime"
DEFAULT_MODEL_DIR = Path("/var/lib/aios/models")
DEFAULT_STATE_DIR = Path("/var/lib/aios/runtime")
DEFAULT_CONTEXT = 2048
DEFAULT_THREADS = 4
DEFAULT_MAX_TOKENS = 512
DEFAULT_TEMPERATURE = 0.7
GRACE_S = 5.0
READY = "ready"
Context = grpc.aio.ServicerContext[Any, Any]

STATUS = {
    "internal": grpc.StatusCode.INTERNAL,
    "failed_precondition": grpc.StatusCode.FAILED_PRECONDITION,
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
}


def find_llama_server() -> str:
    """LLAMA_SERVER_PATH (as given), else /usr/local/bin, /usr/bin, else the venv's binary.

    aiOS's order, plus the binary scripts/install.sh puts beside this interpreter; when none
    exists, aiOS's default path (a LoadModel then fails saying the binary is missing).
    """
    named = os.environ.get("LLAMA_SERVER_PATH")
    if named:
        return named
    candidates = [
        Path("/usr/local/bin/llama-server"),
        Path("/usr/bin/llama-server"),
        Path(sys.executable).parent / "llama-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("llama-server")
    return found or str(candidates[0])


@dataclass(frozen=True)
class RuntimeOptions:
    listen: str = DEFAULT_LISTEN
    model_dir: Path = DEFAULT_MODEL_DIR
    state_dir: Path = DEFAULT_STATE_DIR
    llama_server: str = field(default_factory=find_llama_server)
    idle_unload_s: float = 300.0
    health_interval: float = 2.0


def load_params(request: runtime_pb2.LoadModelRequest, model_dir: Path) -> LoadParams:
    """aiOS's LoadModel defaults (docs/aios-contract.md §4.5); ValueError for a bad request."""
    name = request.model_name
    if not name:
        raise ValueError("model_name is required")
    if request.port > 65535:
        raise ValueError(f"port {request.port} is out of range")
    return LoadParams(
        name=name,
        path=request.model_path or str(model_dir / name),
        context_length=request.context_length if request.context_length > 0 else DEFAULT_CONTEXT,
        threads=request.threads if request.threads > 0 else DEFAULT_THREADS,
        gpu_layers=request.gpu_layers,
        port=max(request.port, 0),
    )


def on_demand_settings(size: int) -> tuple[int, int]:
    """(context, threads) aiOS's start-up load picks by file size (decimal GB)."""
    if size > 8_000_000_000:
        return 8192, 4
    if size > 4_000_000_000:
        return 4096, 4
    if size > 2_000_000_000:
        return 4096, 3
    return 2048, 2


def model_status(info: ModelInfo) -> runtime_pb2.ModelStatus:
    return runtime_pb2.ModelStatus(
        model_name=info.name,
        status=info.status,
        port=info.port,
        loaded_at=info.loaded_at_ms,
        last_used=info.last_used_ms,
        request_count=info.request_count,
    )


def model_details(info: ModelInfo) -> runtime_details_pb2.ModelDetails:
    return runtime_details_pb2.ModelDetails(
        model_name=info.name,
        model_path=info.path,
        sha256=info.sha256,
        context_length=info.context_length,
        threads=info.threads,
        gpu_layers=info.gpu_layers,
        status=info.status,
        port=info.port,
        pid=info.pid,
        restarts=info.restarts,
        last_error=info.last_error,
        loaded_at=info.loaded_at_ms,
        on_demand=info.on_demand,
    )


async def _abort(context: Context, kind: str, message: str) -> NoReturn:
    await context.abort(STATUS.get(kind, grpc.StatusCode.INTERNAL), message)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


def _load_message(exc: LoadError) -> str:
    """aiOS's `Failed to load model: <reason>` for INTERNAL; other codes say the reason."""
    return f"Failed to load model: {exc.message}" if exc.code == "internal" else exc.message


class AIRuntime(runtime_pb2_grpc.AIRuntimeServicer):
    """aios.runtime.AIRuntime over a Supervisor (see the module docstring)."""

    def __init__(self, supervisor: Supervisor, model_dir: Path) -> None:
        self.supervisor = supervisor
        self.model_dir = model_dir
        self.started = time.monotonic()
        self._on_demand: dict[str, asyncio.Task[ModelInfo]] = {}

    async def LoadModel(
        self, request: runtime_pb2.LoadModelRequest, context: Context
    ) -> runtime_pb2.ModelStatus:
        try:
            params = load_params(request, self.model_dir)
        except ValueError as exc:
            await _abort(context, "invalid_argument", str(exc))
        try:
            info = await self.supervisor.load(params)
        except LoadError as exc:
            await _abort(context, exc.code, _load_message(exc))
        return model_status(info)

    async def UnloadModel(
        self, request: runtime_pb2.UnloadModelRequest, context: Context
    ) -> common_pb2.Status:
        name = request.model_name
        try:
            await self.supervisor.unload(name)
        except LoadError as exc:
            if exc.code == "not_found":
                missing = f"Failed to unload model: Model '{name}' not found"
                await _abort(context, "internal", missing)
            await _abort(context, exc.code, f"Failed to unload model: {exc.message}")
        return common_pb2.Status(success=True, message=f"Model '{name}' unloaded")

    async def ListModels(
        self, request: common_pb2.Empty, context: Context
    ) -> runtime_pb2.ModelList:
        return runtime_pb2.ModelList(models=[model_status(m) for m in self.supervisor.models()])

    async def HealthCheck(
        self, request: common_pb2.Empty, context: Context
    ) -> common_pb2.HealthStatus:
        models = self.supervisor.models()
        ready = sum(1 for m in models if m.status == READY)
        uptime = int(time.monotonic() - self.started)
        details = {"loaded_models": str(ready), "total_models": str(len(models))}
        details |= {f"model:{m.name}": f"status={m.status} port={m.port}" for m in models}
        return common_pb2.HealthStatus(
            healthy=True,
            service=SERVICE,
            message=f"{ready}/{len(models)} models loaded, uptime {uptime}s",
            uptime_seconds=uptime,
            details=details,
        )

    async def _load_on_demand(self, name: str) -> None:
        """Load `<model_dir>/<name>.gguf` for the first request naming it (LoadError)."""
        task = self._on_demand.get(name)
        if task is None:
            path = self.supervisor.on_demand_path(name)
            if path is None:
                return
            context, threads = on_demand_settings(path.stat().st_size)
            params = LoadParams(name, str(path), context, threads, 0)
            task = asyncio.ensure_future(self.supervisor.load(params, on_demand=True))
            self._on_demand[name] = task
            task.add_done_callback(lambda done: self._on_demand_done(name, done))
        await asyncio.shield(task)

    def _on_demand_done(self, name: str, task: asyncio.Task[ModelInfo]) -> None:
        self._on_demand.pop(name, None)
        if not task.cancelled():
            task.exception()  # retrieved here too: every waiter may have gone

    async def _pick(self, request: runtime_pb2.InferRequest, context: Context) -> ModelInfo:
        """Route the request (loading a named on-demand model first); abort when none fits."""
        name = request.model
        if name and (name in self._on_demand or self.supervisor.get(name) is None):
            try:
                await self._load_on_demand(name)
            except LoadError as exc:
                await _abort(context, exc.code, _load_message(exc))
        ready = [m.name for m in self.supervisor.models() if m.status == READY]
        try:
            chosen = route(name, request.intelligence_level, ready)
        except RoutingError as exc:
            await _abort(context, exc.kind, exc.message)
        info = self.supervisor.get(chosen)
        if info is None or info.status != READY:  # unloaded between the two reads
            await _abort(context, "unavailable", f"Model '{chosen}' is no longer ready")
        self.supervisor.used(chosen)
        return info

    async def Infer(
        self, request: runtime_pb2.InferRequest, context: Context
    ) -> runtime_pb2.InferResponse:
        started = time.monotonic()
        info = await self._pick(request, context)
        try:
            text, tokens = await llama.chat(
                info.port,
                system=request.system_prompt,
                prompt=request.prompt,
                max_tokens=request.max_tokens if request.max_tokens > 0 else DEFAULT_MAX_TOKENS,
                temperature=(
                    request.temperature if request.temperature > 0 else DEFAULT_TEMPERATURE
                ),
                json_object=True,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await _abort(context, "internal", f"Inference failed: {_reason(exc)}")
        return runtime_pb2.InferResponse(
            text=text,
            tokens_used=tokens,
            latency_ms=int((time.monotonic() - started) * 1000),
            model_used=info.name,
        )

    async def StreamInfer(
        self, request: runtime_pb2.InferRequest, context: Context
    ) -> AsyncIterator[runtime_pb2.InferChunk]:
        info = await self._pick(request, context)
        deltas = llama.stream_chat(
            info.port,
            system=request.system_prompt,
            prompt=request.prompt,
            max_tokens=request.max_tokens if request.max_tokens > 0 else DEFAULT_MAX_TOKENS,
            temperature=request.temperature if request.temperature > 0 else DEFAULT_TEMPERATURE,
        )
        try:
            async for delta in deltas:
                yield runtime_pb2.InferChunk(text=delta, done=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await _abort(context, "internal", f"Inference failed: {_reason(exc)}")
        finally:
            aclose = getattr(deltas, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        yield runtime_pb2.InferChunk(text="", done=True)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class RuntimeDetails(runtime_details_pb2_grpc.RuntimeDetailsServicer):
    """aios.reconciler.runtime.RuntimeDetails: what ModelStatus does not say."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    async def Describe(
        self, request: common_pb2.Empty, context: Context
    ) -> runtime_details_pb2.ModelDetailsList:
        return runtime_details_pb2.ModelDetailsList(
            models=[model_details(m) for m in self.supervisor.models()]
        )


class RuntimeServer:
    """One running runtime; `start` returns the address clients dial."""

    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.supervisor = Supervisor(
            model_dir=options.model_dir,
            state_dir=options.state_dir,
            llama_server=options.llama_server,
            health_interval=options.health_interval,
            idle_unload_s=options.idle_unload_s,
        )
        self.server = grpc.aio.server()
        runtime_pb2_grpc.add_AIRuntimeServicer_to_server(
            AIRuntime(self.supervisor, options.model_dir), self.server
        )
        runtime_details_pb2_grpc.add_RuntimeDetailsServicer_to_server(
            RuntimeDetails(self.supervisor), self.server
        )
        self.address = ""

    async def start(self) -> str:
        state = self.options.state_dir
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o700)
        self.address = bind(self.server, self.options.listen)
        if unix_path(self.options.listen) is None:
            log.warning(
                "listening on TCP %s: every local user can load, unload and query models; "
                "prefer the default unix socket (mode 0600)",
                self.address,
            )
        await self.supervisor.start()
        await self.server.start()
        log.info(
            "runtime serving on %s (models %s, llama-server %s, state %s)",
            self.address,
            self.options.model_dir,
            self.options.llama_server,
            state,
        )
        return self.address

    async def stop(self, grace: float | None = GRACE_S) -> None:
        try:
            await self.server.stop(grace)
        finally:
            await self.supervisor.close()
            path = unix_path(self.options.listen)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


async def serve(options: RuntimeOptions) -> None:
    """Run a runtime until SIGTERM/SIGINT; no llama-server outlives it."""
    server = RuntimeServer(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        await stop.wait()
        log.info("runtime shutting down")
    finally:
        await server.stop()
