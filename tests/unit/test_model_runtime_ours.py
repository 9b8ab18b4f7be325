"""model.fetch → model.load → model.unload through a real registry and our own runtime.

The registry (registry.server.grpc, `runtime=` the runtime's socket) forwards to
runtime.server.RuntimeServer with the llama-server double
(tests/fixtures/fake_llama_server.py) as its binary; the model directory is the
registry root's /var/lib/aios/models, as in the sandbox. One test, few loads: the
sidecar model.fetch writes is what the runtime checks (a file changed under it is
refused with the runtime's own message), a load is ready with the context length
llama-server reports in /props, a changed contextLength is re-applied (a new
llama-server, read back from /props), and unload → Rollback loads it again.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from registry_support import running_registry

from reconciler.client import RegistryClient
from reconciler.sdk.errors import ToolFailed
from runtime.server import RuntimeOptions, RuntimeServer
from tests.fixtures.fake_llama_server import launcher

DIR = "/var/lib/aios/models"
GGUF = b"GGUF" + struct.pack("<I", 3) + bytes(8184)
SHA = hashlib.sha256(GGUF).hexdigest()


@pytest.fixture
async def ours(tmp_path: Path) -> AsyncIterator[tuple[RegistryClient, Path]]:
    root = tmp_path / "root"
    models = root / DIR.lstrip("/")
    models.mkdir(parents=True)
    (root / "srv").mkdir()
    (root / "srv/smol.gguf").write_bytes(GGUF)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    with tempfile.TemporaryDirectory(prefix="aios-rt-") as short:
        options = RuntimeOptions(
            listen=f"unix://{short}/runtime.sock",
            model_dir=models,
            state_dir=tmp_path / "runtime-state",
            llama_server=str(launcher(bin_dir)),
            health_interval=0.2,
        )
        server = RuntimeServer(options)
        address = await server.start()
        try:
            async with (
                running_registry(tmp_path, root=root, runtime=address) as (_s, registry),
                RegistryClient(registry, attempts=1) as client,
            ):
                yield client, root
        finally:
            await server.stop(grace=1)


async def n_ctx(port: int) -> int:
    async with httpx.AsyncClient() as http:
        props = (await http.get(f"http://127.0.0.1:{port}/props")).json()
    return int(props["default_generation_settings"]["n_ctx"])


async def test_fetch_load_reapply_unload_rollback(ours: tuple[RegistryClient, Path]) -> None:
    client, root = ours

    async def call(tool: str, **args: Any) -> Any:
        return await client.call(tool, args, reason="test")

    path = f"{DIR}/smol.gguf"
    await call("model.fetch", url="file:///srv/smol.gguf", sha256=SHA, path=path)
    load = {"name": "smol", "path": path, "threads": 1, "gpuLayers": 0, "sha256": SHA}
    first = (await call("model.load", **load, contextLength=512)).output
    assert (first["status"], first["path"], first["sha256"]) == ("ready", path, SHA)
    assert first["contextLength"] == 512 and await n_ctx(first["port"]) == 512

    changed = await call("model.load", **load, contextLength=1024)
    assert changed.output["contextLength"] == 1024
    assert await n_ctx(changed.output["port"]) == 1024  # a new llama-server, as asked

    gone = await call("model.unload", name="smol")
    assert (await call("model.loaded")).output["models"] == []
    await client.rollback(gone.execution_id, "load it again")
    [back] = (await call("model.loaded")).output["models"]
    assert (back["status"], back["contextLength"]) == ("ready", 1024)
    await call("model.unload", name="smol")

    # the file replaced behind the registry's back: the sidecar no longer matches
    (root / path.lstrip("/")).write_bytes(GGUF[:-1] + b"\x01")
    with pytest.raises(ToolFailed) as refused:
        await call("model.load", name="smol", path=path, contextLength=512, threads=1, gpuLayers=0)
    assert refused.value.message.startswith("Failed to load model: sha256 of ")
    assert f"expects {SHA}" in refused.value.message
