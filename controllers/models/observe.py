"""Observe models: model.list with the directories and every path the specs name.

One call lists the (first) models directory whole and names the declared
model paths, the files `file:` sources point at (their sha256 is what a
model without a declared sha256 is compared with) and the paths of models
aios fetched earlier (inventory); another directory a second Models resource
uses is listed by one more call each. The sha256 is cached by the tool per
path, size and mtime, so a converged machine is not re-hashed. Used by
controllers.models.controller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.models.desired import models_resources
from controllers.models.state import ModelFile, ModelsState, source_path
from reconciler.sdk.controller import Desired, StateReader
from reconciler.sdk.errors import ToolFailed
from specs.models import DEFAULT_MODEL_DIR

TOOL = "model.list"


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


async def observe(reader: StateReader, desired: Desired) -> ModelsState:
    calls = read_args(desired)
    outputs = [await reader.read(TOOL, args) for args in calls]
    return parse([c["directory"] for c in calls], outputs)


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
