"""The models effect model: (state, steps) -> the files the steps would leave.

model.fetch puts a file with the step's sha256 at its path and records the
URL it came from (`fetched_from`); a `file:` source must have been observed
with that sha256 (else the tool's verification would fail). model.remove
deletes the file. An unknown tool or input field raises ValueError (the
verifier turns it into a finding). Must not import specs. Used by
controllers.models.controller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contract.catalogue.parts import size_bytes
from controllers.models.state import ModelFile, ModelsState, source_path
from reconciler.sdk.plan import Step


def _inputs(step: Step, allowed: set[str]) -> Mapping[str, Any]:
    unknown = set(step.input) - allowed
    if unknown:
        raise ValueError(f"{step.tool}: cannot model input field(s) {', '.join(sorted(unknown))}")
    return step.input


def _fetch(files: dict[str, ModelFile], step: Step) -> None:
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
    files[path] = ModelFile(
        path=path, size=size, sha256=sha, gguf_version=version, fetched_from=url
    )


def _remove(files: dict[str, ModelFile], step: Step) -> None:
    inp = _inputs(step, {"path"})
    files.pop(inp["path"], None)


def simulate(state: ModelsState, steps: Sequence[Step]) -> ModelsState:
    files = {f.path: f for f in state.files}
    for step in steps:
        if step.tool == "model.fetch":
            _fetch(files, step)
        elif step.tool == "model.remove":
            _remove(files, step)
        else:
            raise ValueError(f"the models effect model does not know {step.tool}")
    return ModelsState(directories=state.directories, files=tuple(files[p] for p in sorted(files)))
