"""The GGUF file header, written once: magic, header size, versions.

A GGUF file starts with the magic b"GGUF" and a little-endian uint32 format
version. Versions 1-3 exist (`GGUF_VERSIONS`: the registry's model.fetch and
model.list call such a file a model); llama-server loads only 2 and 3
(`LOADABLE_VERSIONS`: the AI runtime and model.load refuse version 1 before
starting it). Read by registry.drivers.model.files and runtime.files, which
phrase their own errors.
"""

from __future__ import annotations

GGUF_MAGIC = b"GGUF"
HEADER_BYTES = 8  # magic (4) + version (uint32 little-endian)
GGUF_VERSIONS = (1, 2, 3)
LOADABLE_VERSIONS = (2, 3)
SIDECAR_SUFFIX = ".sha256"  # `<model>.gguf.sha256`: the verified digest model.fetch writes
