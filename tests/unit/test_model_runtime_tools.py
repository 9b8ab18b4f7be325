"""model.load / model.unload / model.loaded through a real registry against a runtime double.

The registry (registry.server.grpc on a unix socket, `runtime=` the double's
address, as `aios registry serve --runtime` sets it) forwards to
tests/runtime_double.py: an in-memory AIRuntime that behaves as ours (Describe,
changed parameters re-applied) or as aiOS's (no Describe, LoadModel keeps a
loaded model). Checked: entries with target paths, same parameters unchanged and
changed ones re-applied (on both), Rollback of load (unloaded, or the previous
parameters back) and of unload (loaded again), wrong sha256 and non-GGUF files
refused before LoadModel, an unreachable runtime and an unknown unload with
precise errors, the registry's record standing in for Describe, the `full`/`aios`
profiles and the `--runtime` option.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from registry_support import running_registry
from runtime_double import RuntimeDouble, serving_runtime

from reconciler.client import RegistryClient
from reconciler.sdk.errors import ToolFailed
from registry.core.errors import ToolError
from registry.drivers.model import runtime
from registry.server.profiles import get_profile

DIR = "/var/lib/aios/models"
PATH = f"{DIR}/smol.gguf"
GGUF = b"GGUF" + (3).to_bytes(4, "little") + bytes(4096)
SHA = hashlib.sha256(GGUF).hexdigest()


def load_args(**change: Any) -> dict[str, Any]:
    return {"name": "smol", "path": PATH, "contextLength": 512, "threads": 1, "gpuLayers": 0,
            **change}  # fmt: skip


@pytest.fixture
def root(tmp_path: Path) -> Path:
    models = tmp_path / "root" / DIR.lstrip("/")
    models.mkdir(parents=True)
    (models / "smol.gguf").write_bytes(GGUF)
    (models / "other.gguf").write_bytes(GGUF)
    (models / "not.gguf").write_bytes(b"GGML" + bytes(64))
    return tmp_path / "root"


class Rig:
    def __init__(self, client: RegistryClient, double: RuntimeDouble, root: Path) -> None:
        self.client, self.double, self.root = client, double, root

    async def call(self, tool: str, args: dict[str, Any]) -> Any:
        return await self.client.call(tool, args, reason="test")

    async def loaded(self) -> list[dict[str, Any]]:
        out = (await self.call("model.loaded", {})).output
        assert out["runtime"] == self.double.address
        return list(out["models"])


async def _rig(tmp_path: Path, root: Path, *, describe: bool, polls: int = 0) -> AsyncIterator[Rig]:
    async with (
        serving_runtime(describe=describe, loading_polls=polls) as double,
        running_registry(tmp_path, root=root, runtime=double.address) as (_s, address),
        RegistryClient(address, attempts=1) as client,
    ):
        yield Rig(client, double, root)


@pytest.fixture
async def ours(tmp_path: Path, root: Path) -> AsyncIterator[Rig]:
    async for rig in _rig(tmp_path, root, describe=True, polls=2):
        yield rig


@pytest.fixture
async def aios(tmp_path: Path, root: Path) -> AsyncIterator[Rig]:
    async for rig in _rig(tmp_path, root, describe=False):
        yield rig


async def test_load_waits_for_ready_and_lists_target_paths(ours: Rig) -> None:
    assert await ours.loaded() == []
    done = await ours.call("model.load", load_args(sha256=SHA))
    model = ours.double.models["smol"]
    assert model.path == str(ours.root / PATH.lstrip("/"))  # the host path goes to the runtime
    assert model.status == "ready"  # two polls said `loading`: the tool waited
    assert done.output == {
        "name": "smol", "status": "ready", "port": model.port, "path": PATH,
        "contextLength": 512, "threads": 1, "gpuLayers": 0, "sha256": None, "restarts": 0,
        "lastError": None, "onDemand": False,
    }  # fmt: skip
    assert await ours.loaded() == [done.output]


async def test_same_parameters_unchanged_changed_ones_reapplied(ours: Rig) -> None:
    await ours.call("model.load", load_args())
    again = await ours.call("model.load", load_args())
    assert ours.double.loads == 1 and again.output["contextLength"] == 512
    changed = await ours.call("model.load", load_args(contextLength=1024))
    assert ours.double.loads == 2 and changed.output["contextLength"] == 1024
    assert ours.double.rpcs("UnloadModel") == []  # our runtime re-applies in LoadModel


async def test_rollback_of_a_load_unloads_or_puts_the_old_parameters_back(ours: Rig) -> None:
    first = await ours.call("model.load", load_args())
    second = await ours.call("model.load", load_args(contextLength=2048, threads=2))
    assert first.backup_id and second.backup_id
    await ours.client.rollback(second.execution_id, "undo the change")
    [back] = await ours.loaded()
    assert (back["contextLength"], back["threads"], back["status"]) == (512, 1, "ready")
    await ours.client.rollback(first.execution_id, "undo the load")
    assert await ours.loaded() == [] and ours.double.rpcs("UnloadModel") == ["smol"]


async def test_unload_and_its_rollback(ours: Rig) -> None:
    await ours.call("model.load", load_args(contextLength=1024, gpuLayers=-1))
    gone = await ours.call("model.unload", {"name": "smol"})
    assert gone.output == {"name": "smol", "message": "Model 'smol' unloaded"}
    assert await ours.loaded() == []
    await ours.client.rollback(gone.execution_id, "put it back")
    [back] = await ours.loaded()
    assert (back["name"], back["contextLength"], back["gpuLayers"]) == ("smol", 1024, -1)
    assert back["path"] == PATH and back["status"] == "ready"


async def test_unknown_unload_gives_the_runtimes_message(ours: Rig) -> None:
    with pytest.raises(ToolFailed) as failed:
        await ours.call("model.unload", {"name": "nope"})
    assert failed.value.message == "Failed to unload model: Model 'nope' not found"


async def test_wrong_sha256_and_non_gguf_refused_before_the_runtime_loads(ours: Rig) -> None:
    with pytest.raises(ToolFailed) as wrong:
        await ours.call("model.load", load_args(sha256="0" * 64))
    assert wrong.value.message == (
        f"model.load smol: {PATH}: sha256 mismatch: expected {'0' * 64}, the file has {SHA}; "
        "not loaded"
    )
    with pytest.raises(ToolFailed) as bad:
        await ours.call("model.load", load_args(path=f"{DIR}/not.gguf"))
    assert bad.value.message == (
        f"model.load smol: {DIR}/not.gguf: not a GGUF file: magic b'GGML', expected b'GGUF'; "
        "not loaded"
    )
    with pytest.raises(ToolFailed, match=r"model.load smol: /var/lib/aios/models/x.gguf: No such"):
        await ours.call("model.load", load_args(path=f"{DIR}/x.gguf"))
    assert ours.double.rpcs("LoadModel") == [] and ours.double.models == {}


async def test_a_link_out_of_the_root_is_resolved_inside_it(ours: Rig, tmp_path: Path) -> None:
    outside = tmp_path / "outside.gguf"
    outside.write_bytes(GGUF)
    (ours.root / DIR.lstrip("/") / "link.gguf").symlink_to(outside)  # absolute: from the root
    with pytest.raises(ToolFailed, match=f"model.load smol: {DIR}/link.gguf: no such directory"):
        await ours.call("model.load", load_args(path=f"{DIR}/link.gguf"))
    assert ours.double.rpcs("LoadModel") == []


async def test_an_unreachable_runtime_is_an_error_naming_it(tmp_path: Path, root: Path) -> None:
    nowhere = f"unix://{tmp_path}/no-runtime.sock"
    async with (
        running_registry(tmp_path, root=root, runtime=nowhere) as (_s, address),
        RegistryClient(address, attempts=1) as client,
    ):
        for tool, args in (("model.loaded", {}), ("model.load", load_args()),
                           ("model.unload", {"name": "smol"})):  # fmt: skip
            with pytest.raises(ToolFailed) as failed:
                await client.call(tool, args, reason="test")
            assert failed.value.message.startswith(f"model runtime at {nowhere} unreachable: ")
        with pytest.raises(ToolFailed, match="sha256 mismatch"):  # the file first
            await client.call("model.load", load_args(sha256="0" * 64), reason="test")


async def test_aios_runtime_falls_back_to_list_models_and_the_record(aios: Rig) -> None:
    await aios.call("model.load", load_args(sha256=SHA))
    [entry] = await aios.loaded()
    model = aios.double.models["smol"]
    assert entry == {
        "name": "smol", "status": "ready", "port": model.port, "path": PATH,
        "contextLength": 512, "threads": 1, "gpuLayers": 0, "sha256": SHA, "restarts": None,
        "lastError": None, "onDemand": None,
    }  # fmt: skip
    again = await aios.call("model.load", load_args(sha256=SHA))
    assert aios.double.loads == 1 and again.output == entry
    # aiOS's LoadModel keeps a loaded model as it is: the tool unloads it first
    changed = await aios.call("model.load", load_args(contextLength=1024))
    assert aios.double.rpcs("UnloadModel") == ["smol"] and aios.double.loads == 2
    assert aios.double.models["smol"].context_length == 1024
    assert changed.output["contextLength"] == 1024 and changed.output["sha256"] is None
    await aios.client.rollback(changed.execution_id, "undo")
    [back] = await aios.loaded()
    assert (back["contextLength"], back["sha256"]) == (512, SHA)


async def test_a_model_someone_else_loaded_into_aios_runtime(aios: Rig) -> None:
    await aios.call("model.load", load_args(name="other", path=f"{DIR}/other.gguf"))
    record = json.loads((aios.root.parent / "state" / runtime.RECORD_FILE).read_text())
    assert list(record) == [aios.double.address] and list(record[aios.double.address]) == ["other"]
    record[aios.double.address].clear()
    (aios.root.parent / "state" / runtime.RECORD_FILE).write_text(json.dumps(record))
    [entry] = await aios.loaded()  # known to the runtime, not to the registry: nulls
    assert (entry["name"], entry["status"], entry["path"], entry["contextLength"]) == (
        "other",
        "ready",
        None,
        None,
    )
    gone = await aios.call("model.unload", {"name": "other"})
    with pytest.raises(ToolFailed, match=r"parameters it was loaded with before are unknown"):
        await aios.client.rollback(gone.execution_id, "cannot")


async def test_a_corrupt_load_record_is_an_error_naming_it_and_is_kept(aios: Rig) -> None:
    """Read as empty, it would make every model's parameters unknown and the next write would
    destroy the other runtimes' entries: model.loaded fails naming the file, which stays."""
    await aios.call("model.load", load_args(sha256=SHA))
    record = aios.root.parent / "state" / runtime.RECORD_FILE
    for text in ("{not json", '["a list"]', '{"unix:///x": 3}'):
        record.write_text(text)
        with pytest.raises(ToolFailed, match=r"model-load record .*" + runtime.RECORD_FILE):
            await aios.loaded()
        with pytest.raises(ToolFailed, match=r"model-load record"):
            await aios.call("model.load", load_args(contextLength=1024))
        assert record.read_text() == text
    assert aios.double.models["smol"].context_length == 512  # nothing re-applied


def test_the_full_profile_serves_the_runtime_tools_and_aios_does_not() -> None:
    tools = ("model.load", "model.unload", "model.loaded")
    full, aios = get_profile("full").builtins(), get_profile("aios").builtins()
    assert all(name in full for name in tools)
    assert not any(name in aios for name in tools)
    assert full["model.load"].writes and not full["model.loaded"].writes


def test_the_runtime_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.ADDRESS_ENV, raising=False)
    assert runtime.address({}) == "localhost:50055"
    monkeypatch.setenv(runtime.ADDRESS_ENV, "unix:///run/aios/runtime.sock")
    assert runtime.address({}) == "unix:///run/aios/runtime.sock"
    assert runtime.address({"runtime": "127.0.0.1:50055"}) == "127.0.0.1:50055"
    for bad in ("unix:relative.sock", "http://localhost:50055", "localhost", "host:99999", "-x:1"):
        with pytest.raises(ToolError, match="neither unix:///ABS/PATH nor HOST:PORT"):
            runtime.check_address(bad)


def test_serve_takes_runtime_from_the_option_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from reconciler.cli.registry import serve

    monkeypatch.delenv(runtime.ADDRESS_ENV, raising=False)
    assert serve.make_context("serve", []).params["runtime"] == runtime.DEFAULT_ADDRESS
    monkeypatch.setenv(runtime.ADDRESS_ENV, "unix:///tmp/rt.sock")
    assert serve.make_context("serve", []).params["runtime"] == "unix:///tmp/rt.sock"
    given = serve.make_context("serve", ["--runtime", "127.0.0.1:6000"]).params["runtime"]
    assert given == "127.0.0.1:6000"


def test_build_pipeline_hands_the_runtime_to_every_tool_context(tmp_path: Path) -> None:
    from registry.core.process import ProcessRunner
    from registry.server.grpc import ServeOptions, build_pipeline

    pipeline = build_pipeline(ServeOptions(state_dir=tmp_path, runtime="127.0.0.1:6000"))
    ctx = pipeline.executor.context("e1", tmp_path, ProcessRunner())
    assert runtime.address(ctx.options) == "127.0.0.1:6000"
