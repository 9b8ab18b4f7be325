"""The llama-server supervisor: one child per loaded model, each with its own state.

`Supervisor` keeps a `_Model` per name: its parameters, its child process, its status
(`loading`, `ready`, `restarting: <why>`, `error: <why>`), its port and its counters.
A per-name asyncio lock serialises load, unload and restart of ONE model; nothing is
held across models, so `models()` / `get()` (plain reads) and other models' loads and
requests go on while a model loads.

- `load(params)`: a model already `ready` or `loading` with the same (path, context,
  threads, gpu_layers) is returned unchanged (a caller arriving during its load waits
  for that load, as aiOS's callers wait on its lock); any other state or parameters
  re-apply: the file is checked first (runtime.files: exists, GGUF 2/3, the sidecar
  sha256, the memory estimate against MemAvailable — the old child's own estimate
  counts as free), then the old child is stopped and a new one started. The child:
  `llama-server --model P --ctx-size C --n-gpu-layers G --threads T --port N --host
  127.0.0.1 --no-webui`, in a session (process group) of its own, stdout and stderr
  appended to `<state_dir>/logs/<name>.log`; `/health` is polled until 200 (load
  timeout: 60 s, 120 s for files over 2 GB, or the constructor's). An early exit is
  LoadError("internal", "llama-server exited early with status N: <log tail>"); no
  health in time leaves status `error: llama-server did not become healthy within Ns`
  (returned, as aiOS; the child is killed). Port 0 takes a free loopback port that no
  live model of ours holds; an explicit port held by another model is refused.
- `unload(name)`: SIGTERM to the child's group, up to 10 s, then SIGKILL (status
  `unloading` meanwhile), then the model is forgotten; a load in progress is aborted.
  Unknown: LoadError("not_found", "Model 'x' not found").
- The background loop (`start`): a child that exits is noticed at once (a waiter per
  child), a `/health` that fails twice in a row (every `health_interval` s) kills it;
  both set `restarting: <why>` and restart it on the same port after a backoff of 0.25,
  0.5, 1, 2 … s (at most 30 s; back to 0.25 s after 60 s healthy), counting `restarts`;
  a model loaded on demand and unused for `idle_unload_s` is unloaded.
- `close()`: stops the loop and every child's group; no llama-server outlives it. Each
  child's pid and argv are also written to `<state_dir>/children/<pid>.json`, so a
  supervisor started after a crash of the previous one kills leftovers it recognises
  (same pid and command line).

LoadError carries a code for the gRPC status (internal, failed_precondition,
invalid_argument, not_found) and the reason without the RPC's prefix: runtime.server
adds aiOS's `Failed to load model: ` / `Failed to unload model: `. Callers: runtime.server
(the AIRuntime servicer), tests and bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from contract.vocab.gguf import (
    CONTEXT_LENGTH,
    GPU_LAYERS,
    RUNTIME_NAME_MAX_BYTES,
    THREADS,
    is_runtime_name,
)
from runtime import files, llama

log = logging.getLogger(__name__)

READY, LOADING, UNLOADING = "ready", "loading", "unloading"
BIG_FILE = 2 << 30
LOAD_TIMEOUT_S, BIG_LOAD_TIMEOUT_S = 60.0, 120.0
STOP_GRACE_S = 10.0
BACKOFF_FIRST_S, BACKOFF_MAX_S, BACKOFF_RESET_S = 0.25, 30.0, 60.0
HEALTH_FAILURES = 2  # consecutive failed /health checks before a restart
POLL_S = 0.01  # /health poll while a child loads (a loopback GET; llama-server is up in ~0.2 s)
LOG_ROTATE_BYTES = 1 << 20  # a log over 1 MiB moves to <name>.log.1 at the next start

LoadCode = Literal["internal", "failed_precondition", "invalid_argument", "not_found"]


class LoadError(Exception):
    """A load or unload refused; `code` names the gRPC status, `message` the reason."""

    def __init__(self, code: LoadCode, message: str) -> None:
        super().__init__(message)
        self.code: LoadCode = code
        self.message = message


@dataclass(frozen=True)
class LoadParams:
    """What LoadModel asks for (aiOS's defaults already applied by the caller)."""

    name: str
    path: str
    context_length: int
    threads: int
    gpu_layers: int
    port: int = 0

    def same(self, other: LoadParams) -> bool:
        """The same model as `other` in everything a re-load would change (not the port)."""
        return (
            os.path.normpath(self.path),
            self.context_length,
            self.threads,
            self.gpu_layers,
        ) == (
            os.path.normpath(other.path),
            other.context_length,
            other.threads,
            other.gpu_layers,
        )


@dataclass(frozen=True)
class ModelInfo:
    """One model as the supervisor knows it (ListModels and Describe are made of these)."""

    name: str
    path: str
    sha256: str
    context_length: int
    threads: int
    gpu_layers: int
    status: str
    port: int
    pid: int
    restarts: int
    last_error: str
    loaded_at_ms: int
    last_used_ms: int
    request_count: int
    on_demand: bool


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class _Model:
    params: LoadParams
    on_demand: bool
    log: Path
    sha256: str = ""
    estimate: int = 0
    size: int = 0
    status: str = LOADING
    port: int = 0
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    last_error: str = ""
    loaded_at_ms: int = 0
    last_used_ms: int = 0
    request_count: int = 0
    used_at: float = field(default_factory=time.monotonic)
    healthy_since: float = 0.0
    backoff: float = BACKOFF_FIRST_S
    health_failures: int = 0
    auto_port: bool = True
    aborted: bool = False
    checking: bool = False
    restart_task: asyncio.Task[None] | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def info(self) -> ModelInfo:
        p = self.params
        running = self.proc is not None and self.proc.returncode is None
        return ModelInfo(
            name=p.name,
            path=p.path,
            sha256=self.sha256,
            context_length=p.context_length,
            threads=p.threads,
            gpu_layers=p.gpu_layers,
            status=self.status,
            port=self.port,
            pid=self.proc.pid if self.proc is not None and running else 0,
            restarts=self.restarts,
            last_error=self.last_error,
            loaded_at_ms=self.loaded_at_ms,
            last_used_ms=self.last_used_ms,
            request_count=self.request_count,
            on_demand=self.on_demand,
        )


def _run_output(log_file: Path, limit: int) -> str:
    """The tail of what the last child wrote (after its `--- <time> <argv>` header)."""
    text = files.tail(log_file, limit + 4096)
    at = text.rfind("\n--- ")
    if at < 0 and text.startswith("--- "):
        at = 0
    if at >= 0:
        text = text[at:].lstrip("\n").partition("\n")[2]
    return text[-limit:].strip()


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"status {code}"


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((llama.HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((llama.HOST, 0))
        return int(probe.getsockname()[1])


class Supervisor:
    """llama-server children by model name; see the module docstring."""

    def __init__(
        self,
        *,
        model_dir: Path,
        state_dir: Path,
        llama_server: str,
        health_interval: float = 2.0,
        idle_unload_s: float = 300.0,
        load_timeout_s: float | None = None,
        mem_available: Callable[[], int] = files.mem_available,
    ) -> None:
        self.model_dir = model_dir
        self.state_dir = state_dir
        self.llama_server = llama_server
        self.health_interval = health_interval
        self.idle_unload_s = idle_unload_s
        self.load_timeout_s = load_timeout_s
        self.mem_available = mem_available
        self.facts = files.FileFacts()
        self._models: dict[str, _Model] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- reading ---------------------------------------------------------------------------

    def models(self) -> list[ModelInfo]:
        return [m.info() for m in list(self._models.values())]

    def get(self, name: str) -> ModelInfo | None:
        model = self._models.get(name)
        return model.info() if model is not None else None

    def on_demand_path(self, name: str) -> Path | None:
        """`<model_dir>/<name>.gguf` when it is a file (and `name` a model name)."""
        if not is_runtime_name(name):
            return None
        path = self.model_dir / f"{name}.gguf"
        try:
            return path if path.is_file() else None
        except OSError:
            return None

    def used(self, name: str) -> None:
        """Count one request for `name` (ListModels' last_used and request_count, idling)."""
        model = self._models.get(name)
        if model is not None:
            model.last_used_ms = _now_ms()
            model.request_count += 1
            model.used_at = time.monotonic()

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Kill leftovers of a previous supervisor, start the health and idle loop."""
        await asyncio.to_thread(self._kill_leftovers)
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._run(), name="aios-runtime-health")

    async def close(self) -> None:
        """Stop the loop, every restart and every child (group); close the HTTP client."""
        self._closed = True
        models = list(self._models.values())
        for model in models:
            model.aborted = True  # a load in progress gives up at its next poll
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for model in models:
            tasks += [t for t in (model.restart_task, *model.tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._models.clear()
        await asyncio.gather(*(self._stop(m) for m in models), return_exceptions=True)
        await llama.aclose()

    # -- load / unload ---------------------------------------------------------------------

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def load(self, params: LoadParams, *, on_demand: bool = False) -> ModelInfo:
        """Load `params.name` (or return it unchanged); LoadError when refused."""
        self._validate(params)
        if self._closed:
            raise LoadError("internal", "the runtime is shutting down")
        async with self._lock(params.name):
            current = self._models.get(params.name)
            if (
                current is not None
                and current.status in (READY, LOADING)
                and current.params.same(params)
            ):
                current.on_demand = current.on_demand and on_demand
                return current.info()
            path = Path(params.path)
            try:
                facts = await asyncio.to_thread(self.facts.check, path)
            except files.FileRefused as exc:
                raise LoadError("internal", str(exc)) from None
            estimate = files.estimate_bytes(facts.size, facts.shape, params.context_length)
            self._check_memory(params.name, estimate, current)
            port = self._pick_port(params)
            if current is not None:
                await self._retire(current)
            model = _Model(
                params=replace(params, port=port),
                on_demand=on_demand,
                log=self._log_path(params.name),
                sha256=facts.sha256,
                estimate=estimate,
                size=facts.size,
                port=port,
                auto_port=params.port == 0,
            )
            self._models[params.name] = model
            try:
                try:
                    await self._spawn_until_healthy(model)
                except OSError as exc:  # the log, the state dir, the binary: never left "loading"
                    model.aborted = True
                    raise LoadError("internal", f"cannot start llama-server: {exc}") from exc
            except LoadError as exc:
                model.status = f"error: {exc.message.split(': ', 1)[0]}"
                model.last_error = exc.message
                if self._models.get(params.name) is model and model.aborted:
                    del self._models[params.name]
                raise
            return model.info()

    def _validate(self, params: LoadParams) -> None:
        """Refuse what must not reach llama-server's argv or a file name (invalid_argument)."""
        if not params.name:
            raise LoadError("invalid_argument", "model_name is required")
        if not is_runtime_name(params.name):
            # it becomes <model_dir>/<name>.gguf and logs/<name>.log: one plain path part
            raise LoadError(
                "invalid_argument",
                "model_name must be one printable file name part (no '/', no leading '.' "
                f"or '-', at most {RUNTIME_NAME_MAX_BYTES} bytes), not {params.name[:160]!r}",
            )
        for what, value, (low, high) in (
            ("context_length", params.context_length, CONTEXT_LENGTH),
            ("threads", params.threads, THREADS),
            ("gpu_layers", params.gpu_layers, GPU_LAYERS),
        ):
            if not low <= value <= high:
                raise LoadError("invalid_argument", f"{what} must be {low}..{high}, not {value}")
        if not 0 <= params.port <= 65535:
            raise LoadError("invalid_argument", f"port {params.port} is out of range")
        if not params.path:
            raise LoadError("invalid_argument", "model_path is required")
        if not params.path.startswith("/") or not params.path.isprintable():
            # it becomes llama-server's --model argument
            raise LoadError(
                "invalid_argument",
                f"model_path must be an absolute path of printable characters, "
                f"not {params.path[:200]!r}",
            )

    def _check_memory(self, name: str, estimate: int, current: _Model | None) -> None:
        try:
            available = self.mem_available()
        except (OSError, ValueError) as exc:
            log.warning("cannot read MemAvailable (%s): memory not checked", exc)
            return
        if current is not None and current.proc is not None:
            available += current.estimate  # stopped before the new child starts
        # Memory other children are about to take (loading: not resident yet).
        available -= sum(
            m.estimate for m in self._models.values() if m.status == LOADING and m is not current
        )
        try:
            files.check_memory(name, estimate, max(available, 0))
        except MemoryError as exc:
            raise LoadError("failed_precondition", str(exc)) from None

    def _held_ports(self, besides: str = "") -> dict[int, str]:
        return {m.port: n for n, m in self._models.items() if n != besides and m.port}

    def _pick_port(self, params: LoadParams) -> int:
        held = self._held_ports(besides=params.name)
        if params.port:
            if params.port in held:
                raise LoadError(
                    "invalid_argument",
                    f"port {params.port} is already used by model '{held[params.port]}'",
                )
            return params.port
        for _ in range(100):
            port = _free_port()
            if port not in held:
                return port
        raise LoadError("internal", "no free port on 127.0.0.1")

    def _log_path(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"  # a model name: one plain path part

    async def unload(self, name: str) -> None:
        """Stop `name`'s child (group) and forget it; LoadError("not_found") when unknown."""
        model = self._models.get(name)
        if model is None:
            raise LoadError("not_found", f"Model '{name}' not found")
        model.aborted = True  # a load in progress gives up at its next poll
        if model.status != READY:
            self._signal(model, signal.SIGKILL)  # nothing to shut down gracefully yet
        async with self._lock(name):
            if model.status == READY:
                model.status = UNLOADING
            await self._retire(model)
            if self._models.get(name) is model:
                del self._models[name]

    async def _retire(self, model: _Model) -> None:
        """Stop a model's restarts and its child (the caller holds its lock)."""
        model.aborted = True
        tasks = [t for t in (model.restart_task, *model.tasks) if t is not None]
        tasks = [t for t in tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stop(model)

    # -- children --------------------------------------------------------------------------

    def _argv(self, p: LoadParams, port: int) -> list[str]:
        return [
            self.llama_server,
            "--model", p.path,
            "--ctx-size", str(p.context_length),
            "--n-gpu-layers", str(p.gpu_layers),
            "--threads", str(p.threads),
            "--port", str(port),
            "--host", llama.HOST,
            "--no-webui",
        ]  # fmt: skip

    async def _spawn(self, model: _Model) -> tuple[asyncio.subprocess.Process, asyncio.Task[None]]:
        argv = self._argv(model.params, model.port)
        model.log.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if model.log.stat().st_size > LOG_ROTATE_BYTES:
                model.log.replace(model.log.with_name(model.log.name + ".1"))
        with model.log.open("ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} {' '.join(argv)}\n".encode())
            out.flush()
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LoadError(
                    "internal", f"cannot start llama-server {self.llama_server}: {exc.strerror}"
                ) from None
        model.proc = proc
        model.health_failures = 0
        self._remember_child(model.params.name, proc.pid, argv)
        waiter = asyncio.create_task(self._watch(model, proc), name=f"aios-wait-{proc.pid}")
        model.tasks.add(waiter)
        waiter.add_done_callback(model.tasks.discard)
        return proc, waiter

    def _timeout(self, model: _Model) -> float:
        if self.load_timeout_s is not None:
            return self.load_timeout_s
        return BIG_LOAD_TIMEOUT_S if model.size > BIG_FILE else LOAD_TIMEOUT_S

    async def _spawn_until_healthy(self, model: _Model) -> None:
        """Start the child and poll /health until 200; status ready, or LoadError / error."""
        for attempt in range(3):
            proc, waiter = await self._spawn(model)
            limit = self._timeout(model)
            deadline = time.monotonic() + limit
            while True:
                if model.aborted:
                    await self._stop(model)
                    raise LoadError("internal", "unloaded while loading")
                if proc.returncode is not None:
                    break
                if await llama.health(model.port, wait_s=1.0):
                    model.status = READY
                    model.loaded_at_ms = model.loaded_at_ms or _now_ms()
                    model.healthy_since = time.monotonic()
                    model.used_at = time.monotonic()
                    return
                if time.monotonic() > deadline:
                    await self._stop(model)
                    why = f"llama-server did not become healthy within {limit:g}s"
                    model.status = f"error: {why}"
                    model.last_error = f"{why}: {_run_output(model.log, 500)}"
                    return
                if waiter.done():  # cancelled (closing): the next turn sees `aborted`
                    await asyncio.sleep(POLL_S)
                else:
                    await asyncio.wait({waiter}, timeout=POLL_S)
            code = proc.returncode
            assert code is not None
            self._kill_group(proc)
            output = _run_output(model.log, 1500)
            if model.auto_port and attempt < 2 and "bind" in output:
                model.port = self._pick_port(replace(model.params, port=0))
                model.params = replace(model.params, port=model.port)
                continue  # someone took the free port between our probe and its bind
            raise LoadError(
                "internal", f"llama-server exited early with {_exit_reason(code)}: {output}"
            )

    async def _watch(self, model: _Model, proc: asyncio.subprocess.Process) -> None:
        """Notice a child's exit at once: a ready model becomes `restarting: …`."""
        code = await proc.wait()
        self._kill_group(proc)
        self._forget_child(model.params.name, proc.pid)
        if model.aborted or model.proc is not proc or model.status != READY:
            return
        self._failed(model, f"llama-server exited with {_exit_reason(code)}")

    def _failed(self, model: _Model, why: str) -> None:
        tail = _run_output(model.log, 500)
        model.status = f"restarting: {why}"
        model.last_error = f"{why}: {tail}" if tail else why
        log.warning("model %s: %s; restarting", model.params.name, why)
        self._signal(model, signal.SIGKILL)
        self._wake.set()

    def _signal(self, model: _Model, sig: signal.Signals) -> None:
        if model.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(model.proc.pid, sig)

    def _kill_group(self, proc: asyncio.subprocess.Process) -> None:
        """SIGKILL what is left of a reaped leader's group (a grandchild, if any)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    async def _stop(self, model: _Model) -> None:
        """SIGTERM the child's group, wait up to 10 s, SIGKILL; reap it."""
        proc = model.proc
        if proc is None:
            return
        if proc.returncode is None:
            self._signal(model, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except TimeoutError:
                self._signal(model, signal.SIGKILL)
                await proc.wait()
        self._kill_group(proc)
        self._forget_child(model.params.name, proc.pid)

    # -- the background loop ---------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.health_interval)
            self._wake.clear()
            try:
                await self._tick()
            except Exception:  # the loop must survive whatever one model does
                log.exception("runtime health loop")

    async def _tick(self) -> None:
        now = time.monotonic()
        for name, model in list(self._models.items()):
            if model.aborted:
                continue
            if model.status == READY:
                if model.on_demand and now - model.used_at >= self.idle_unload_s:
                    log.info("model %s: idle for %.0f s, unloading", name, now - model.used_at)
                    model.aborted = True  # no second unload from the next tick
                    self._background(self._idle_unload(name, model))
                elif not model.checking and not self._lock(name).locked():
                    model.checking = True
                    self._background(self._check(model))
            elif model.status.startswith("restarting") and model.restart_task is None:
                model.restart_task = asyncio.create_task(
                    self._restart(model), name=f"aios-restart-{name}"
                )

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _idle_unload(self, name: str, model: _Model) -> None:
        if self._models.get(name) is model:
            with contextlib.suppress(LoadError):
                await self.unload(name)

    async def _check(self, model: _Model) -> None:
        try:
            ok = await llama.health(model.port, wait_s=max(1.0, self.health_interval))
        finally:
            model.checking = False
        if model.status != READY or model.aborted:
            return
        if ok:
            model.health_failures = 0
            return
        model.health_failures += 1
        if model.health_failures >= HEALTH_FAILURES:
            self._failed(model, f"/health failed {model.health_failures} times")

    async def _restart(self, model: _Model) -> None:
        name = model.params.name
        try:
            if time.monotonic() - model.healthy_since >= BACKOFF_RESET_S:
                model.backoff = BACKOFF_FIRST_S
            delay, model.backoff = model.backoff, min(model.backoff * 2, BACKOFF_MAX_S)
            await asyncio.sleep(delay)
            async with self._lock(name):
                if self._models.get(name) is not model or model.aborted:
                    return
                await self._stop(model)
                try:
                    facts = await asyncio.to_thread(self.facts.check, Path(model.params.path))
                except files.FileRefused as exc:
                    model.status = f"error: {exc}"
                    model.last_error = str(exc)
                    return  # the file changed under us: only a new load may start it
                model.sha256 = facts.sha256
                if model.auto_port and not _bindable(model.port):
                    model.port = self._pick_port(replace(model.params, port=0))
                    model.params = replace(model.params, port=model.port)
                model.restarts += 1
                try:
                    await self._spawn_until_healthy(model)
                except LoadError as exc:
                    model.status = f"restarting: {exc.message.split(': ', 1)[0]}"
                    model.last_error = exc.message
                else:
                    if model.status.startswith("error: "):
                        model.status = "restarting: " + model.status.removeprefix("error: ")
        finally:
            model.restart_task = None
            self._wake.set()

    # -- children of a previous supervisor -------------------------------------------------

    def _children_dir(self) -> Path:
        return self.state_dir / "children"

    def _remember_child(self, name: str, pid: int, argv: list[str]) -> None:
        try:
            d = self._children_dir()
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{pid}.json").write_text(json.dumps({"name": name, "pid": pid, "argv": argv}))
        except OSError as exc:
            log.warning("cannot record child %d: %s", pid, exc)

    def _forget_child(self, name: str, pid: int) -> None:
        with contextlib.suppress(OSError):
            (self._children_dir() / f"{pid}.json").unlink()

    def _kill_leftovers(self) -> None:
        d = self._children_dir()
        if not d.is_dir():
            return
        for record in d.glob("*.json"):
            try:
                child = json.loads(record.read_text())
                pid, argv = int(child["pid"]), [str(a) for a in child["argv"]]
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
            except (OSError, ValueError, KeyError, TypeError):
                cmdline, pid, argv = [], 0, []
            flags = [c.decode(errors="replace") for c in cmdline][-len(argv) + 1 :]
            if pid and len(argv) > 1 and flags == argv[1:]:  # a wrapper may have exec'd
                log.warning("killing llama-server %d left by a previous runtime", pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                record.unlink()
