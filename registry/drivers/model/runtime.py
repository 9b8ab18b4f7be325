"""The AI runtime as the model tools see it: an async gRPC client and the registry's record.

`RuntimeClient(address)` talks to an `aios.runtime.AIRuntime` (aiOS's runtime or
ours, `aios runtime serve`) at `unix:///abs/path` or `HOST:PORT`, one grpc.aio
channel per tool call, every RPC under a deadline. `describe()` asks our
`aios.reconciler.runtime.RuntimeDetails.Describe` and answers None when the
runtime does not implement it (aiOS's); `list_models`, `load` and `unload` are
aiOS's RPCs. gRPC failures become ToolErrors: UNAVAILABLE is "model runtime at
ADDR unreachable: …", a deadline says which RPC did not answer in time, and any
other status keeps the runtime's own message verbatim (aiOS's shapes such as
`Failed to unload model: Model 'x' not found`), with its code on `.code`.

`LoadRecord` is what model.load loaded into which runtime (`<state_dir>/
model-runtime-loads.json`, keyed by runtime address, then model name; atomic
writes with registry.core.atomicfile): aiOS's ModelStatus carries no path,
context length, threads or GPU layers, so against a runtime without Describe
`loaded()` fills them from the record (null when the registry did not load the
model). `address(options)` is the runtime the registry was told about: the
`runtime` option (`aios registry serve --runtime`), else $AIOS_RUNTIME_ADDR, else
aiOS's localhost:50055.

Used by registry.handlers.model_runtime.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from contract._gen import (
    common_pb2,
    runtime_details_pb2,
    runtime_details_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from registry.core.atomicfile import write_atomic
from registry.core.errors import ToolError

DEFAULT_ADDRESS = "localhost:50055"  # aiOS's runtime (docs/aios-contract.md §1.4)
ADDRESS_ENV = "AIOS_RUNTIME_ADDR"
RECORD_FILE = "model-runtime-loads.json"
CALL_TIMEOUT_S = 10.0  # Describe, ListModels
UNLOAD_TIMEOUT_S = 30.0  # SIGTERM, ≤10 s, SIGKILL on the runtime's side
LOAD_TIMEOUT_S = 240.0  # a load waits for llama-server's /health (60 s; 120 s > 2 GB)
POLL_S = 0.2
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-]*):[0-9]{1,5}$")


class Unreachable(ToolError):
    """The runtime did not answer at all (nothing listens, or the connection broke)."""


class RuntimeRefused(ToolError):
    """The runtime answered with a gRPC error; the message is the runtime's own."""

    def __init__(self, message: str, code: grpc.StatusCode) -> None:
        super().__init__(message)
        self.code = code


def address(options: Mapping[str, Any]) -> str:
    """The runtime address for a tool call (module docstring), checked."""
    value = options.get("runtime") or os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS
    return check_address(str(value))


def check_address(value: str) -> str:
    """`unix:///abs/path` (or `unix:/abs/path`) or HOST:PORT; ToolError otherwise."""
    if value.startswith("unix:"):
        path = value[len("unix:") :]
        path = "/" + path.lstrip("/") if path.startswith("//") else path
        if path.startswith("/") and "\x00" not in path and "\n" not in path:
            return value
    elif _HOST_PORT.match(value) and 0 < int(value.rsplit(":", 1)[1]) < 65536:
        return value
    raise ToolError(
        f"model runtime address {value!r} is neither unix:///ABS/PATH nor HOST:PORT "
        f"(set it with `aios registry serve --runtime` or ${ADDRESS_ENV})"
    )


@dataclass(frozen=True)
class Params:
    """What a model is loaded with; `path` is the host path the runtime opens."""

    path: str
    context_length: int
    threads: int
    gpu_layers: int


@dataclass(frozen=True)
class Loaded:
    """One model the runtime knows; None where it does not say (aiOS's ModelStatus)."""

    name: str
    status: str
    port: int | None
    path: str | None = None  # host path
    context_length: int | None = None
    threads: int | None = None
    gpu_layers: int | None = None
    sha256: str | None = None
    restarts: int | None = None
    last_error: str | None = None
    on_demand: bool | None = None

    def params(self) -> Params | None:
        """The parameters it is loaded with, None when any of them is unknown."""
        if (
            self.path is None
            or self.context_length is None
            or self.threads is None
            or self.gpu_layers is None
        ):
            return None
        return Params(self.path, self.context_length, self.threads, self.gpu_layers)

    @property
    def ready(self) -> bool:
        return self.status == "ready"

    @property
    def failed(self) -> bool:
        return self.status.startswith("error")


def _from_details(d: runtime_details_pb2.ModelDetails) -> Loaded:
    return Loaded(
        name=d.model_name,
        status=d.status,
        port=d.port or None,
        path=d.model_path or None,
        context_length=d.context_length,
        threads=d.threads,
        gpu_layers=d.gpu_layers,
        sha256=d.sha256 or None,
        restarts=d.restarts,
        last_error=d.last_error or None,
        on_demand=d.on_demand,
    )


def _from_status(s: runtime_pb2.ModelStatus) -> Loaded:
    return Loaded(name=s.model_name, status=s.status, port=s.port or None)


class RuntimeClient:
    """An async client of one runtime address (`async with RuntimeClient(addr) as rt`)."""

    def __init__(self, address: str) -> None:
        self.address = check_address(address)
        self._channel: grpc.aio.Channel | None = None

    async def __aenter__(self) -> RuntimeClient:
        self._channel = grpc.aio.insecure_channel(self.address)
        self._runtime = runtime_pb2_grpc.AIRuntimeStub(self._channel)
        self._details = runtime_details_pb2_grpc.RuntimeDetailsStub(self._channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    def _error(self, exc: grpc.aio.AioRpcError, what: str, timeout: float) -> ToolError:
        code, details = exc.code(), exc.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            return Unreachable(f"model runtime at {self.address} unreachable: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ToolError(
                f"model runtime at {self.address}: {what} did not answer within {timeout:g} s"
            )
        message = details or f"model runtime at {self.address}: {what}: {code.name}"
        return RuntimeRefused(message, code)

    async def describe(self) -> list[Loaded] | None:
        """Every model from RuntimeDetails.Describe; None when it is UNIMPLEMENTED."""
        try:
            answer = await self._details.Describe(common_pb2.Empty(), timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return None
            raise self._error(exc, "Describe", CALL_TIMEOUT_S) from None
        return [_from_details(d) for d in answer.models]

    async def list_models(self) -> list[Loaded]:
        try:
            answer = await self._runtime.ListModels(common_pb2.Empty(), timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "ListModels", CALL_TIMEOUT_S) from None
        return [_from_status(s) for s in answer.models]

    async def load(self, name: str, params: Params, *, within_s: float = LOAD_TIMEOUT_S) -> Loaded:
        """LoadModel (port 0: the runtime picks one); the status it answers with."""
        request = runtime_pb2.LoadModelRequest(
            model_name=name,
            model_path=params.path,
            context_length=params.context_length,
            gpu_layers=params.gpu_layers,
            threads=params.threads,
            port=0,
        )
        try:
            answer = await self._runtime.LoadModel(request, timeout=within_s)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, f"LoadModel {name}", within_s) from None
        return _from_status(answer)

    async def unload(self, name: str) -> str:
        """UnloadModel; the runtime's message (`Model 'x' unloaded`)."""
        request = runtime_pb2.UnloadModelRequest(model_name=name)
        try:
            answer = await self._runtime.UnloadModel(request, timeout=UNLOAD_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, f"UnloadModel {name}", UNLOAD_TIMEOUT_S) from None
        if not answer.success:
            message = answer.message or f"UnloadModel {name} failed"
            raise RuntimeRefused(message, grpc.StatusCode.UNKNOWN)
        return answer.message


class LoadRecord:
    """What model.load loaded into the runtime at `address` (module docstring)."""

    _lock = threading.Lock()

    def __init__(self, state_dir: Path, address: str) -> None:
        self.file = state_dir / RECORD_FILE
        self.address = address

    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The record; {} when there is none. An unreadable or malformed one is a ToolError
        naming it (never read as empty: the next write would destroy the other entries)."""
        try:
            text = self.file.read_text()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            why = exc.strerror
            raise ToolError(f"cannot read the model-load record {self.file}: {why}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ToolError(
                f"the model-load record {self.file} is not JSON ({exc}); move it aside to start "
                "a new one (the runtime's own ListModels is unaffected)"
            ) from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ToolError(f"the model-load record {self.file} is not a map of runtime addresses")
        return data

    def models(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            mine = self._load().get(self.address, {})
        return mine if isinstance(mine, dict) else {}

    def put(self, name: str, params: Params, sha256: str | None) -> None:
        entry = {
            "path": params.path,
            "contextLength": params.context_length,
            "threads": params.threads,
            "gpuLayers": params.gpu_layers,
            "sha256": sha256,
        }
        self._change(name, entry)

    def drop(self, name: str) -> None:
        self._change(name, None)

    def _change(self, name: str, entry: dict[str, Any] | None) -> None:
        with self._lock:
            data = self._load()
            mine = data.setdefault(self.address, {})
            if entry is None:
                if mine.pop(name, None) is None:
                    return
            else:
                mine[name] = entry
            if not mine:
                del data[self.address]
            self.file.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.file, json.dumps(data, sort_keys=True).encode(), mode=0o600)

    def fill(self, model: Loaded) -> Loaded:
        """`model` (from ListModels) with what the record says about it."""
        entry = self.models().get(model.name)
        if not isinstance(entry, dict):
            return model
        return replace(
            model,
            path=entry.get("path"),
            context_length=entry.get("contextLength"),
            threads=entry.get("threads"),
            gpu_layers=entry.get("gpuLayers"),
            sha256=entry.get("sha256"),
        )


async def loaded(client: RuntimeClient, record: LoadRecord) -> tuple[list[Loaded], bool]:
    """Every model the runtime knows, and whether they came from Describe (else from
    ListModels filled from the record)."""
    described = await client.describe()
    if described is not None:
        return described, True
    return [record.fill(m) for m in await client.list_models()], False


async def find(client: RuntimeClient, record: LoadRecord, name: str) -> tuple[Loaded | None, bool]:
    models, described = await loaded(client, record)
    return next((m for m in models if m.name == name), None), described


async def wait_ready(
    client: RuntimeClient, record: LoadRecord, name: str, *, within_s: float = LOAD_TIMEOUT_S
) -> Loaded:
    """Poll until `name` is ready; ToolError when it failed, vanished or took too long."""
    deadline = time.monotonic() + within_s
    while True:
        model, _ = await find(client, record, name)
        if model is None:
            raise ToolError(f"model {name} is no longer known to the runtime at {client.address}")
        if model.ready:
            return model
        if model.failed:
            raise ToolError(f"model {name}: the runtime says {model.status}")
        if time.monotonic() >= deadline:
            raise ToolError(f"model {name} not ready after {within_s:g} s (status {model.status})")
        await asyncio.sleep(POLL_S)
