"""Definitions (ToolSpecs) of the `model.*` tools: JSON Schemas, risk, flags, capabilities.

GGUF model files under the registry's root: list (size, sha256 cached per
size+mtime, GGUF version), fetch (streamed, resumable, verified, atomic) and
remove. Paths are target paths mapped under `--root`; `file:` URLs too.
Every ToolSpec is made by contract.tooldef.define. Read by
registry.handlers.model and contract.catalogue (ALL).
"""

from __future__ import annotations

from contract.catalogue.parts import (
    ABS_PATH,
    BOOL,
    NON_NEGATIVE,
    PATHS,
    SHA256,
    SIZE,
    STR,
    URL,
    array,
    nullable,
    schema,
)
from contract.tooldef import ToolSpec, define, obj_schema

READ = ("fs_read",)
WRITE = ("model_manage",)
DEFAULT_DIRECTORY = "/var/lib/aios/models"

MODEL_PATH = {
    **ABS_PATH,
    "pattern": r"^(?!.*(^|/)\.\.?(/|$))(?!.*//)/[^\u0000\n]*[^/]\.gguf$",
    "description": "Absolute target path of a .gguf file (mapped under the root).",
}

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
        "Reversible: the previous file stays in place until the new one is committed and is "
        "kept (a hard link in the execution's backup, within the registry's backup bound); "
        "Rollback puts it back, or removes the new file when there was none."
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
        "Delete a model file (and a leftover `<path>.part`). Absent: nothing happens. "
        "Reversible: the file is kept aside as a hard link in the execution's backup (a copy "
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

ALL: tuple[ToolSpec, ...] = (MODEL_LIST, MODEL_FETCH, MODEL_REMOVE)
