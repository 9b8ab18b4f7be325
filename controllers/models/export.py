"""What `aios export Models` and `aios get Models NAME` show of the observed models.

`export(state)`: one Models document per listed directory: every .gguf file
directly in it, named by its file name without `.gguf`, with `source:
file:<path>` (the file itself), its sha256 and its path; a model the AI
runtime holds under that name from that path, not loaded on demand, with
known parameters, is exported `load: always` with its contextLength,
threads and gpuLayers (the runtime's status, endpoint and health are not
spec fields: `aios get` shows them). Applying the export to the same
machine plans nothing (each file has the declared sha256, each load its
parameters). Files whose name is not a valid model name, and names already
exported from another directory, are left out.

`scope(state, desired)`: the files the resources declare and, per declared
model, its file and hash, how it loads, and what the runtime says: loaded
status, endpoint (127.0.0.1:port) and health. Used by
controllers.models.controller.
"""

from __future__ import annotations

import re
from typing import Any

from controllers.models.desired import models_resources
from controllers.models.state import ModelFile, ModelsState, parent_of
from reconciler.sdk.controller import Desired

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
NAME = "exported"


def _load_settings(state: ModelsState, name: str, found: ModelFile) -> dict[str, Any]:
    loaded = state.loaded(name)
    if loaded is None or loaded.path != found.path or loaded.on_demand is not False:
        return {}
    settings = (loaded.context_length, loaded.threads, loaded.gpu_layers)
    if any(value is None for value in settings):
        return {}
    context_length, threads, gpu_layers = settings
    return {
        "load": "always",
        "contextLength": context_length,
        "threads": threads,
        "gpuLayers": gpu_layers,
    }


def export(state: ModelsState) -> list[dict[str, Any]]:
    documents = []
    names: set[str] = set()
    for number, directory in enumerate(state.directories, start=1):
        models = []
        for found in state.files:
            name = found.path.rsplit("/", 1)[-1].removesuffix(".gguf")
            if parent_of(found.path) != directory or not found.path.endswith(".gguf"):
                continue
            if not _NAME.match(name) or name in names:
                continue
            names.add(name)
            models.append(
                {
                    "name": name,
                    "source": f"file:{found.path}",
                    "sha256": found.sha256,
                    "path": found.path,
                    **_load_settings(state, name, found),
                }
            )
        if models:
            documents.append(
                {
                    "apiVersion": "aios.dev/v1",
                    "kind": "Models",
                    "metadata": {"name": NAME if number == 1 else f"{NAME}-{number}"},
                    "spec": {"directory": directory, "models": models},
                }
            )
    return documents


def scope(state: ModelsState, desired: Desired) -> dict[str, Any]:
    data: dict[str, Any] = state.model_dump(mode="json")
    entries = []
    for resource in models_resources(desired):
        for model in resource.spec.models:
            path = resource.spec.path_of(model)
            found, loaded = state.file(path), state.loaded(model.name)
            if loaded is not None:
                status = loaded.status
            else:
                status = "not loaded" if state.runtime else "not asked (no load: always)"
            entries.append(
                {
                    "name": model.name,
                    "resource": resource.key,
                    "path": path,
                    "file": "present" if found else "missing",
                    "sha256": found.sha256 if found else None,
                    "load": model.load,
                    "loaded": status,
                    "endpoint": loaded.endpoint if loaded else None,
                    "health": loaded.health if loaded else None,
                }
            )
    paths = {entry["path"] for entry in entries}
    return {
        "files": [f for f in data["files"] if f["path"] in paths],
        "runtime": state.runtime.address if state.runtime else None,
        "models": entries,
    }
