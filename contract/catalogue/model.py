"""Definitions (ToolSpecs) of the `model.*` tools: JSON Schemas, risk, flags, capabilities.

GGUF model files under the registry's root: list (size, sha256 cached per
size+mtime, GGUF version), fetch (streamed, resumable, verified, atomic; it
leaves the verified digest beside the file as `<path>.sha256`, the digest
aios's runtime checks before it loads) and remove. Paths are target paths
mapped under `--root`; `file:` URLs too.

The models an AI runtime (`aios.runtime.AIRuntime` at AIOS_RUNTIME_ADDR, or
`aios registry serve --runtime`; aiOS's runtime or ours) has loaded:
`model.loaded` lists them, `model.load` and `model.unload` forward to it. Their
keys are spelled as the Models spec spells them (contextLength, threads,
gpuLayers). Every ToolSpec is made by contract.tooldef.define. Read by
registry.handlers.model, registry.handlers.model_runtime and contract.catalogue
(ALL).
"""

from __future__ import annotations

from contract.catalogue.parts import (
    ABS_PATH,
    BOOL,
    END,
    INT,
    NON_NEGATIVE,
    PATHS,
    SHA256,
    SIZE,
    STR,
    URL,
    array,
    document,
    nullable,
    schema,
)
from contract.tooldef import ToolSpec, define, obj_schema
from contract.vocab.gguf import CONTEXT_LENGTH as _CTX
from contract.vocab.gguf import GPU_LAYERS as _GPU
from contract.vocab.gguf import MODEL_NAME_PATTERN
from contract.vocab.gguf import THREADS as _THREADS

READ = ("fs_read",)
WRITE = ("model_manage",)
DEFAULT_DIRECTORY = "/var/lib/aios/models"

MODEL_PATH = {
    **ABS_PATH,
    "pattern": r"^(?!.*(^|/)\.\.?(/|$))(?!.*//)/[^\u0000\n]*[^/]\.gguf$",
    "description": "Absolute target path of a .gguf file (mapped under the root).",
}
# The runtime's model name, as specs.models.ModelName spells it.
MODEL_NAME = {"type": "string", "pattern": "^" + MODEL_NAME_PATTERN + END}
# The bounds of specs.models.Model's fields (contract.vocab.gguf).
CONTEXT_LENGTH = {"type": "integer", "minimum": _CTX[0], "maximum": _CTX[1]}
THREADS = {"type": "integer", "minimum": _THREADS[0], "maximum": _THREADS[1]}
GPU_LAYERS = {"type": "integer", "minimum": _GPU[0], "maximum": _GPU[1]}

MODEL_LIST = define(
    name="model.list",
    description=(
        "Model files: every regular *.gguf file directly in `directory` (default "
        f"{DEFAULT_DIRECTORY}; dot-files and partial downloads are skipped) plus the `paths` "
        "named, with size, sha256, mtime (RFC 3339) and the GGUF version from the header "
        "(null when the header is not GGUF). The sha256 is computed once per (path, size, "
        "mtime_ns) and cached in the registry's state dir. A missing directory lists nothing; "
        "a named path that does not exist is left out."
    ),
    input_schema=schema({"directory": ABS_PATH, "paths": PATHS}),
    output_schema=schema(
        {
            "models": array(
                obj_schema(
                    {
                        "path": STR,
                        "size": NON_NEGATIVE,
                        "sha256": SHA256,
                        "mtime": STR,
                        "gguf_version": nullable({"type": "integer"}),
                    },
                    ("path", "size", "sha256", "mtime", "gguf_version"),
                )
            )
        },
        ("models",),
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=600_000,
    capabilities=READ,
)

MODEL_FETCH = define(
    name="model.fetch",
    description=(
        "Download a GGUF model: http(s) streamed with httpx (or a file: URL, mapped under the "
        "root) into `<path>.part`; an existing part file is resumed with `Range: bytes=<n>-` "
        "(206) or restarted from zero when the server answers 200; progress is reported as "
        "done/total bytes. Then sha256 and the GGUF header (magic GGUF, version 1-3) are "
        "checked (and `size` when given), the file fsynced and renamed over `path` "
        "atomically. A wrong hash, size or header deletes the part file and fails saying "
        "which. A file already at `path` with this sha256 is left as is (downloaded=false). "
        "Either way the verified digest is left beside it in `<path>.sha256` (hex and a "
        "newline, replaced atomically), which aios's runtime checks before it loads the file. "
        "Reversible: the previous file and sidecar stay in place until the new ones are "
        "committed and are kept (hard links in the execution's backup, within the registry's "
        "backup bound); Rollback puts them back, or removes the new ones when there were none."
    ),
    input_schema=schema(
        {"url": URL, "sha256": SHA256, "path": MODEL_PATH, "size": SIZE},
        ("url", "sha256", "path"),
    ),
    output_schema=schema(
        {
            "path": STR,
            "size": NON_NEGATIVE,
            "sha256": SHA256,
            "resumed_from": NON_NEGATIVE,
            "downloaded": BOOL,
        },
        ("path", "size", "sha256", "resumed_from", "downloaded"),
    ),
    risk="medium",
    idempotent=True,
    reversible=True,
    timeout_ms=3_600_000,
    capabilities=WRITE,
)

MODEL_REMOVE = define(
    name="model.remove",
    description=(
        "Delete a model file (and its `<path>.sha256` sidecar and a leftover `<path>.part`). "
        "Absent: nothing happens. Reversible: the file and its sidecar are kept aside as hard "
        "links in the execution's backup (a copy "
        "when the backup is on another filesystem), so its space is bounded by the registry's "
        "backup retention (max entries / max bytes): once that backup is pruned, Rollback "
        "fails saying the previous file is gone."
    ),
    input_schema=schema({"path": MODEL_PATH}, ("path",)),
    output_schema=schema({"path": STR, "removed": BOOL}, ("path", "removed")),
    risk="high",
    idempotent=True,
    reversible=True,
    timeout_ms=60_000,
    capabilities=WRITE,
)

RUNTIME_MODEL = obj_schema(
    {
        "name": STR,
        "status": STR,
        "port": nullable(INT),
        "path": nullable(STR),
        "contextLength": nullable(INT),
        "threads": nullable(INT),
        "gpuLayers": nullable(INT),
        "sha256": nullable(SHA256),
        "restarts": nullable(NON_NEGATIVE),
        "lastError": nullable(STR),
        "onDemand": nullable(BOOL),
    },
    (
        "name",
        "status",
        "port",
        "path",
        "contextLength",
        "threads",
        "gpuLayers",
        "sha256",
        "restarts",
        "lastError",
        "onDemand",
    ),
)
_ENTRY = (
    "A model entry: name, status (loading | ready | restarting: <why> | error: <why>, as the "
    "runtime says), port (llama-server's on 127.0.0.1), path (the target path, mapped back "
    "from the root), contextLength, threads, gpuLayers, sha256 (of the file as loaded), "
    "restarts, lastError, onDemand (loaded by a first Infer); null where the runtime does "
    "not say."
)

MODEL_LOADED = define(
    name="model.loaded",
    description=(
        "The models the AI runtime at AIOS_RUNTIME_ADDR (default localhost:50055; `aios "
        "registry serve --runtime ADDR`) knows, from its RuntimeDetails.Describe. Against "
        "aiOS's runtime (Describe UNIMPLEMENTED) from ListModels plus the registry's own record "
        "of what model.load loaded there (fields it cannot know are null). " + _ENTRY + " An "
        "unreachable runtime is an error naming its address, never an empty list."
    ),
    input_schema=schema({}),
    output_schema=schema(
        {"runtime": STR, "models": array(RUNTIME_MODEL)},
        ("runtime", "models"),
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=15_000,
    capabilities=READ,
)

MODEL_LOAD = define(
    name="model.load",
    description=(
        "Load the GGUF file at `path` (a target path, mapped under the root) into the AI "
        "runtime as `name` with contextLength, threads and gpuLayers, and wait until it is "
        "ready. Before the runtime is called the file must start with the GGUF header and, "
        "when `sha256` is given, have that digest (a mismatch names both). Loaded already "
        "with the same parameters: left as it is; with other ones: re-applied (unloaded and "
        "loaded again). Returns the model's entry as model.loaded lists it. Reversible: "
        "Rollback unloads it, or loads it again with its previous parameters."
    ),
    input_schema=schema(
        {
            "name": MODEL_NAME,
            "path": MODEL_PATH,
            "contextLength": CONTEXT_LENGTH,
            "threads": THREADS,
            "gpuLayers": GPU_LAYERS,
            "sha256": SHA256,
        },
        ("name", "path", "contextLength", "threads", "gpuLayers"),
    ),
    output_schema=document(RUNTIME_MODEL),
    risk="medium",
    idempotent=True,
    reversible=True,
    timeout_ms=300_000,
    capabilities=WRITE,
)

MODEL_UNLOAD = define(
    name="model.unload",
    description=(
        "Unload the model `name` from the AI runtime (its llama-server is stopped). A model "
        "the runtime does not know fails with the runtime's own message (aiOS's: "
        "`Failed to unload model: Model '<name>' not found`). Reversible: Rollback loads it "
        "again with the parameters it had."
    ),
    input_schema=schema({"name": MODEL_NAME}, ("name",)),
    output_schema=schema({"name": STR, "message": STR}, ("name", "message")),
    risk="medium",
    idempotent=False,
    reversible=True,
    timeout_ms=60_000,
    capabilities=WRITE,
)

ALL: tuple[ToolSpec, ...] = (
    MODEL_LIST,
    MODEL_FETCH,
    MODEL_REMOVE,
    MODEL_LOADED,
    MODEL_LOAD,
    MODEL_UNLOAD,
)
