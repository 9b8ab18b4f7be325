"""The models effect model: (state, steps) -> the files and loads the steps would leave.

model.fetch puts a file with the step's sha256 at its path and records the
URL it came from (`fetched_from`); a `file:` source must have been observed
with that sha256 (else the tool's verification would fail). model.remove
deletes the file. Either, under a model that stays loaded from that path,
leaves that model `stale` (the runtime still serves the previous weights).

model.load, as the tool and the runtime do it: the file must be at the path
(observed, or fetched earlier in the plan), with the step's sha256 when
given, and GGUF (an observed file whose header is not GGUF fails); a model
`ready` or `loading` with the same path, contextLength, threads and
gpuLayers is left as it is (the tool waits for `ready`: a stale model stays
stale); otherwise it is (re)loaded from the file: `ready`, those
parameters, the file's sha256, not stale (the port is the runtime's
choice: unknown). model.unload removes the model; one the runtime does not
know fails. model.loaded reads and changes nothing. An unknown tool or
input field raises ValueError (the verifier turns it into a finding). Must
not import specs. Used by controllers.models.controller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contract.catalogue.parts import size_bytes
from controllers.models.state import (
    READY,
    LoadedModel,
    ModelFile,
    ModelsState,
    Runtime,
    source_path,
)
from reconciler.sdk.plan import Step

LOAD_FIELDS = {"name", "path", "contextLength", "threads", "gpuLayers", "sha256"}


def _inputs(step: Step, allowed: set[str]) -> Mapping[str, Any]:
    unknown = set(step.input) - allowed
    if unknown:
        raise ValueError(f"{step.tool}: cannot model input field(s) {', '.join(sorted(unknown))}")
    return step.input


def _stale(loaded: dict[str, LoadedModel], path: str) -> None:
    """The models loaded from `path` keep serving what was there before."""
    for name, model in loaded.items():
        if model.path == path:
            loaded[name] = model.model_copy(update={"stale": True})


def _fetch(files: dict[str, ModelFile], loaded: dict[str, LoadedModel], step: Step) -> None:
    inp = _inputs(step, {"url", "sha256", "path", "size"})
    url, sha, path = inp["url"], inp["sha256"], inp["path"]
    size, version = 0, None
    source = source_path(url)
    if source is not None:
        found = files.get(source)
        if found is None or found.sha256 != sha:
            raise ValueError(f"{url} was not observed with sha256 {sha}: the fetch would fail")
        size, version = found.size, found.gguf_version
    elif path in files and files[path].sha256 == sha:
        size, version = files[path].size, files[path].gguf_version
    if "size" in inp:
        if size and size_bytes(inp["size"]) != size:
            raise ValueError(f"{url} has {size} bytes, not {inp['size']}: the fetch would fail")
        size = size_bytes(inp["size"])
    if path not in files or files[path].sha256 != sha:
        _stale(loaded, path)
    files[path] = ModelFile(
        path=path, size=size, sha256=sha, gguf_version=version, fetched_from=url
    )


def _remove(files: dict[str, ModelFile], loaded: dict[str, LoadedModel], step: Step) -> None:
    inp = _inputs(step, {"path"})
    if files.pop(inp["path"], None) is not None:
        _stale(loaded, inp["path"])


def _load(files: dict[str, ModelFile], loaded: dict[str, LoadedModel], step: Step) -> None:
    inp = _inputs(step, LOAD_FIELDS)
    name, path = inp["name"], inp["path"]
    found = files.get(path)
    if found is None:
        raise ValueError(f"model.load {name}: no file at {path}: the load would fail")
    if "sha256" in inp and found.sha256 != inp["sha256"]:
        raise ValueError(
            f"model.load {name}: {path} has sha256 {found.sha256}, not {inp['sha256']}: "
            "the load would fail"
        )
    if found.gguf_version is None and found.fetched_from is None:
        raise ValueError(f"model.load {name}: {path} is not a GGUF file: the load would fail")
    params = {
        "path": path,
        "context_length": inp["contextLength"],
        "threads": inp["threads"],
        "gpu_layers": inp["gpuLayers"],
    }
    have = loaded.get(name)
    same = have is not None and all(getattr(have, f) == v for f, v in params.items())
    if have is not None and same and have.status in (READY, "loading"):
        loaded[name] = have.model_copy(update={"status": READY})
        return
    loaded[name] = LoadedModel(
        name=name,
        status=READY,
        sha256=found.sha256,
        restarts=0,
        on_demand=False,
        **params,
    )


def _unload(loaded: dict[str, LoadedModel], step: Step) -> None:
    name = _inputs(step, {"name"})["name"]
    if loaded.pop(name, None) is None:
        raise ValueError(f"model.unload: the runtime has no model {name}: the unload would fail")


def simulate(state: ModelsState, steps: Sequence[Step]) -> ModelsState:
    files = {f.path: f for f in state.files}
    loaded = {m.name: m for m in (state.runtime.models if state.runtime else ())}
    runtime = state.runtime
    for step in steps:
        if step.tool == "model.fetch":
            _fetch(files, loaded, step)
        elif step.tool == "model.remove":
            _remove(files, loaded, step)
        elif step.tool == "model.load":
            _load(files, loaded, step)
            runtime = runtime or Runtime(address="")
        elif step.tool == "model.unload":
            _unload(loaded, step)
        elif step.tool == "model.loaded":
            _inputs(step, set())
        else:
            raise ValueError(f"the models effect model does not know {step.tool}")
    if runtime is not None:
        runtime = runtime.model_copy(update={"models": tuple(loaded[n] for n in sorted(loaded))})
    return ModelsState(
        directories=state.directories,
        files=tuple(files[p] for p in sorted(files)),
        runtime=runtime,
    )
