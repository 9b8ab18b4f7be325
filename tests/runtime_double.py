"""A double of the AI runtime: a small grpc.aio AIRuntime (+ RuntimeDetails) in memory.

`serving_runtime(describe=True)` serves `aios.runtime.AIRuntime` on a unix socket in
a short temporary directory and yields a `RuntimeDouble` (its `address`, its
`models`, every RPC it got in `calls`). With `describe=True` it behaves as aios's
own runtime (runtime/server.py) does: LoadModel with the
same parameters leaves the model as it is, with other ones re-applies them
(counted in `loads`), and `aios.reconciler.runtime.RuntimeDetails.Describe` is
served. With `describe=False` it is aiOS's runtime as docs/aios-contract.md §4.5
describes it: no Describe (UNIMPLEMENTED), and LoadModel of a name already loaded
answers its current status whatever the parameters. Unknown UnloadModel is
INTERNAL `Failed to unload model: Model '<n>' not found` on both. `loading_polls`
makes a fresh load report `loading` to that many ListModels/Describe calls before
it is `ready`. No llama-server runs. Used by tests/unit/test_model_runtime_tools.py.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from contract._gen import (
    common_pb2,
    runtime_details_pb2,
    runtime_details_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)

Context = grpc.aio.ServicerContext[Any, Any]


@dataclass
class DoubleModel:
    name: str
    path: str
    context_length: int
    threads: int
    gpu_layers: int
    port: int
    status: str = "ready"
    pending_polls: int = 0

    def params(self) -> tuple[str, int, int, int]:
        return (self.path, self.context_length, self.threads, self.gpu_layers)


@dataclass
class RuntimeDouble(
    runtime_pb2_grpc.AIRuntimeServicer, runtime_details_pb2_grpc.RuntimeDetailsServicer
):
    describe: bool = True
    loading_polls: int = 0
    address: str = ""
    models: dict[str, DoubleModel] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    loads: int = 0
    _ports: Any = field(default_factory=lambda: itertools.count(41000))

    def _poll(self) -> None:
        for m in self.models.values():
            if m.pending_polls:
                m.pending_polls -= 1
                m.status = "loading" if m.pending_polls else "ready"

    def _status(self, m: DoubleModel) -> runtime_pb2.ModelStatus:
        return runtime_pb2.ModelStatus(model_name=m.name, status=m.status, port=m.port)

    async def LoadModel(
        self, request: runtime_pb2.LoadModelRequest, context: Context
    ) -> runtime_pb2.ModelStatus:
        self.calls.append(("LoadModel", request.model_name))
        new = DoubleModel(
            request.model_name,
            request.model_path,
            request.context_length,
            request.threads,
            request.gpu_layers,
            port=next(self._ports),
        )
        old = self.models.get(request.model_name)
        if old is not None and (not self.describe or old.params() == new.params()):
            return self._status(old)
        if self.loading_polls:
            new.status, new.pending_polls = "loading", self.loading_polls
        self.models[new.name] = new
        self.loads += 1
        return self._status(new)

    async def UnloadModel(
        self, request: runtime_pb2.UnloadModelRequest, context: Context
    ) -> common_pb2.Status:
        self.calls.append(("UnloadModel", request.model_name))
        if self.models.pop(request.model_name, None) is None:
            await context.abort(
                grpc.StatusCode.INTERNAL,
                f"Failed to unload model: Model '{request.model_name}' not found",
            )
        return common_pb2.Status(success=True, message=f"Model '{request.model_name}' unloaded")

    async def ListModels(
        self, request: common_pb2.Empty, context: Context
    ) -> runtime_pb2.ModelList:
        self.calls.append(("ListModels", ""))
        self._poll()
        return runtime_pb2.ModelList(models=[self._status(m) for m in self.models.values()])

    async def Describe(
        self, request: common_pb2.Empty, context: Context
    ) -> runtime_details_pb2.ModelDetailsList:
        self.calls.append(("Describe", ""))
        self._poll()
        return runtime_details_pb2.ModelDetailsList(
            models=[
                runtime_details_pb2.ModelDetails(
                    model_name=m.name,
                    model_path=m.path,
                    sha256="",
                    context_length=m.context_length,
                    threads=m.threads,
                    gpu_layers=m.gpu_layers,
                    status=m.status,
                    port=m.port,
                    pid=4242,
                    restarts=0,
                    on_demand=False,
                )
                for m in self.models.values()
            ]
        )

    def rpcs(self, name: str) -> list[str]:
        """The model names of every call of one RPC."""
        return [model for rpc, model in self.calls if rpc == name]


@contextlib.asynccontextmanager
async def serving_runtime(
    *, describe: bool = True, loading_polls: int = 0
) -> AsyncIterator[RuntimeDouble]:
    double = RuntimeDouble(describe=describe, loading_polls=loading_polls)
    server = grpc.aio.server()
    runtime_pb2_grpc.add_AIRuntimeServicer_to_server(double, server)
    if describe:
        runtime_details_pb2_grpc.add_RuntimeDetailsServicer_to_server(double, server)
    with tempfile.TemporaryDirectory(prefix="aios-rt-") as short:
        server.add_insecure_port(f"unix:{short}/runtime.sock")
        double.address = f"unix://{short}/runtime.sock"
        await server.start()
        try:
            yield double
        finally:
            await server.stop(grace=0.5)
