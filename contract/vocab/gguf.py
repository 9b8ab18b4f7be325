"""GGUF model files, written once: the header (magic, size, versions), model names, load bounds.

A GGUF file starts with the magic b"GGUF" and a little-endian uint32 format
version. Versions 1-3 exist (`GGUF_VERSIONS`: the registry's model.fetch and
model.list call such a file a model); llama-server loads only 2 and 3
(`LOADABLE_VERSIONS`: the AI runtime and model.load refuse version 1 before
starting it). Read by registry.drivers.model.files and runtime.files, which
phrase their own errors.

A model name is the runtime's name for a loaded model, the stem of
`<model dir>/<name>.gguf` and part of a log file name: `MODEL_NAME_PATTERN`
(ASCII, one path part, no leading '.' or '-', at most 128 characters) is used by
the spec language and the model tools' schemas. The runtime serves aiOS's clients
too, which may name a model in any script: `is_runtime_name` is that wider rule
(printable, one path part, no leading '.' or '-', at most 200 bytes of UTF-8, so
`logs/<name>.log` fits a file name), of which every spec name is a case. `CONTEXT_LENGTH`,
`THREADS` and `GPU_LAYERS` are the (min, max) every side accepts for
llama-server's --ctx-size, --threads and --n-gpu-layers.
"""

from __future__ import annotations

import re

GGUF_MAGIC = b"GGUF"
HEADER_BYTES = 8  # magic (4) + version (uint32 little-endian)
GGUF_VERSIONS = (1, 2, 3)
LOADABLE_VERSIONS = (2, 3)
SIDECAR_SUFFIX = ".sha256"  # `<model>.gguf.sha256`: the verified digest model.fetch writes

MODEL_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,127}"  # used with fullmatch / ^…$
MODEL_NAME_RE = re.compile(MODEL_NAME_PATTERN)
CONTEXT_LENGTH = (128, 1048576)
THREADS = (1, 1024)
GPU_LAYERS = (-1, 1024)  # -1: every layer


def is_model_name(name: str) -> bool:
    return MODEL_NAME_RE.fullmatch(name) is not None


RUNTIME_NAME_MAX_BYTES = 200


def is_runtime_name(name: str) -> bool:
    return (
        bool(name)
        and name.isprintable()
        and "/" not in name
        and not name.startswith((".", "-"))
        and len(name.encode("utf-8")) <= RUNTIME_NAME_MAX_BYTES
    )
