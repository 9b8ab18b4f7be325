"""Observe models: model.list with the directories and every path the specs name, model.loaded.

One call lists the (first) models directory whole and names the declared
model paths, the files `file:` sources point at (their sha256 is what a
model without a declared sha256 is compared with) and the paths of models
aios fetched earlier (inventory); another directory a second Models resource
uses is listed by one more call each. The sha256 is cached by the tool per
path, size and mtime, so a converged machine is not re-hashed.

Then model.loaded (the AI runtime's models), but only when it matters: some
declared model has `load: always`, or aios's inventory holds a
`model-load:<name>` (a model aios loaded, which it may have to unload).
Otherwise it is not called, so specs without loads need no runtime. A
failing model.loaded (an unreachable runtime) fails the domain with the
tool's message: it never reads as "nothing loaded". Used by
controllers.models.controller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.models.desired import models_resources
from controllers.models.state import LoadedModel, ModelFile, ModelsState, Runtime, source_path
from reconciler.sdk.controller import Desired, StateReader
from reconciler.sdk.errors import ToolFailed
from specs.models import DEFAULT_MODEL_DIR

TOOL = "model.list"
LOADED = "model.loaded"
LOAD_PREFIX = "model-load:"  # the inventory object of a model aios loaded


def read_args(desired: Desired) -> list[dict[str, Any]]:
    """The model.list calls: the first directory with every named path, then the others."""
    resources = list(models_resources(desired))
    directories = sorted({r.spec.directory for r in resources}) or [DEFAULT_MODEL_DIR]
    paths: set[str] = set()
    for resource in resources:
        for model in resource.spec.models:
            paths.add(resource.spec.path_of(model))
            source = source_path(model.source or "")
            if source is not None:
                paths.add(source)
    for objects in (*desired.owned.values(), *desired.pruned.values()):
        paths |= {o.partition(":")[2] for o in objects if o.startswith("model:")}
    first: dict[str, Any] = {"directory": directories[0]}
    if paths:
        first["paths"] = sorted(paths)
    return [first, *({"directory": d} for d in directories[1:])]


def needs_runtime(desired: Desired) -> bool:
    """Whether observe asks the runtime: a present `load: always` model, or a load aios made."""
    if any(
        model.load == "always" and model.state == "present"
        for resource in models_resources(desired)
        for model in resource.spec.models
    ):
        return True
    inventory = (*desired.owned.values(), *desired.pruned.values())
    return any(o.startswith(LOAD_PREFIX) for objects in inventory for o in objects)


async def observe(reader: StateReader, desired: Desired) -> ModelsState:
    calls = read_args(desired)
    outputs = [await reader.read(TOOL, args) for args in calls]
    state = parse([c["directory"] for c in calls], outputs)
    if not needs_runtime(desired):
        return state
    return state.model_copy(update={"runtime": parse_loaded(await reader.read(LOADED, {}))})


def parse(directories: Sequence[str], outputs: Sequence[Mapping[str, Any]]) -> ModelsState:
    files: dict[str, ModelFile] = {}
    try:
        for output in outputs:
            for entry in output["models"]:
                files[entry["path"]] = ModelFile(
                    path=entry["path"],
                    size=entry["size"],
                    sha256=entry["sha256"],
                    gguf_version=entry["gguf_version"],
                )
    except (KeyError, TypeError, ValueError) as exc:
        raise ToolFailed(
            f"{TOOL} returned output the models controller cannot read: {exc}"
        ) from None
    return ModelsState(
        directories=tuple(sorted(set(directories))),
        files=tuple(files[p] for p in sorted(files)),
    )


_FIELDS = {  # model.loaded's key -> LoadedModel's field
    "name": "name",
    "status": "status",
    "path": "path",
    "port": "port",
    "contextLength": "context_length",
    "threads": "threads",
    "gpuLayers": "gpu_layers",
    "sha256": "sha256",
    "restarts": "restarts",
    "lastError": "last_error",
    "onDemand": "on_demand",
}


def parse_loaded(output: Mapping[str, Any]) -> Runtime:
    """model.loaded's output as the runtime's models, sorted by name."""
    try:
        models = [
            LoadedModel(**{field: entry.get(key) for key, field in _FIELDS.items()})
            for entry in output["models"]
        ]
        return Runtime(
            address=str(output["runtime"]),
            models=tuple(sorted(models, key=lambda m: m.name)),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ToolFailed(
            f"{LOADED} returned output the models controller cannot read: {exc}"
        ) from None
