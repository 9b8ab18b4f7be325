"""What the runtime checks about a model file before it starts llama-server on it.

- `gguf_version(path)`: the file must start with the GGUF magic `b"GGUF"` and a
  little-endian uint32 version llama-server reads (2 or 3; version 1 is refused
  by llama.cpp itself). `FileRefused` says precisely what is wrong otherwise.
- `expected_sha256(path)` / `check_sha256(path, actual)`: aiOS's LoadModelRequest
  carries no digest, so the expected one comes from the sidecar `<path>.sha256`
  (the hex digest and a newline) that the registry's `model.fetch` writes when it
  lands a verified file. When the sidecar exists the file's sha256 must equal
  it; without one only the header can be checked (which is also all that can be
  checked against aiOS's own runtime).
- `read_shape(path)`: the few GGUF metadata values the memory estimate needs
  (layers, embedding width, attention heads), parsed from the file's key/value
  header through a read-only mmap; None when the header cannot be parsed.
- `estimate_bytes(size, shape, ctx)`: the memory a llama-server needs for a model,
  documented below; `mem_available()`: MemAvailable from /proc/meminfo (callers
  inject their own reader in tests).
- `FileFacts`: sha256 and shape cached per file identity (device, inode, size,
  mtime, ctime), so a restart or a re-load of an unchanged file hashes nothing.

Memory estimate (bytes), for a model file of `size` bytes and a context of `ctx`
tokens:

    weights   = size                       (all weights in RAM: mmapped, no GPU assumed)
    kv_cache  = n_layer * ctx * n_head_kv * (key_length + value_length) * 2
                                           (K and V per layer, llama-server's default f16 cache;
                                            key/value_length default to n_embd / n_head)
    overhead  = 64 MiB + n_vocab * 512 * 4 (compute buffers, the logits of one 512-token batch)
    estimate  = weights + kv_cache + overhead

Without parseable metadata kv_cache counts 0 and n_vocab 32000. Measured against the real
llama-server with SmolLM2-135M (Q4_1, 98 MB): estimate 265 MiB / resident 144 MiB at
context 512, 434 / 312 MiB at 8192 — an upper bound, as a refusal should be. The estimate must
be at most MemAvailable (which already counts reclaimable page cache, so an mmapped
file that is cached is not counted twice by the kernel, only by us: conservative).

Pure functions over the file system; called by runtime.supervisor (in a worker thread).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from contract.vocab.gguf import GGUF_MAGIC, HEADER_BYTES, SIDECAR_SUFFIX
from contract.vocab.gguf import LOADABLE_VERSIONS as GGUF_VERSIONS

MIB = 1 << 20
OVERHEAD_BYTES = 64 * MIB
BATCH_TOKENS = 512
DEFAULT_VOCAB = 32000
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HASH_CHUNK = 4 << 20


class FileRefused(Exception):
    """The model file cannot be loaded; the message says why (missing, not GGUF, digest)."""


@dataclass(frozen=True)
class Shape:
    """The GGUF metadata values the memory estimate uses."""

    architecture: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    key_length: int
    value_length: int
    n_vocab: int


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def gguf_version(path: Path) -> int:
    """The GGUF version of the regular file at `path`; FileRefused when it is not loadable."""
    try:
        path.stat()
    except FileNotFoundError:
        raise FileRefused(f"model file {path} does not exist") from None
    except OSError as exc:
        raise FileRefused(f"model file {path}: {exc.strerror}") from None
    if not path.is_file():
        raise FileRefused(f"model file {path} is not a regular file")
    try:
        with path.open("rb") as f:
            head = f.read(HEADER_BYTES)
    except OSError as exc:
        raise FileRefused(f"model file {path}: {exc.strerror}") from None
    if not head:
        raise FileRefused(f"{path} is not a GGUF file: it is empty")
    if head[:4] != GGUF_MAGIC:
        raise FileRefused(
            f"{path} is not a GGUF file: it starts with {head[:4]!r}, expected {GGUF_MAGIC!r}"
        )
    if len(head) < 8:
        raise FileRefused(f"{path} is not a GGUF file: only {len(head)} bytes")
    (version,) = struct.unpack("<I", head[4:8])
    if version not in GGUF_VERSIONS:
        raise FileRefused(f"{path} has GGUF version {version}; llama-server reads versions 2 and 3")
    return int(version)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def expected_sha256(path: Path) -> str | None:
    """The digest in `<path>.sha256`, None without a sidecar; FileRefused when it is malformed."""
    side = sidecar(path)
    try:
        text = side.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FileRefused(f"cannot read {side}: {exc.strerror}") from None
    words = text.split()
    digest = words[0].lower() if words else ""
    if not _HEX64.fullmatch(digest):
        raise FileRefused(f"{side} does not hold a sha256 hex digest: {text[:80]!r}")
    return digest


def check_sha256(path: Path, actual: str) -> None:
    """FileRefused when a sidecar exists and names another digest than `actual`."""
    expected = expected_sha256(path)
    if expected is not None and expected != actual:
        raise FileRefused(f"sha256 of {path} is {actual}, but {sidecar(path)} expects {expected}")


# GGUF value types (gguf.md): sizes of the fixed-width ones.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_INT_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
_STRING, _ARRAY = 8, 9
_MAX_KV = 1 << 16


@dataclass(frozen=True)
class ArrayOf:
    """A metadata array, kept only as its length (e.g. tokenizer.ggml.tokens: the vocabulary)."""

    count: int


class _Reader:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf = buf
        self.at = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.buf, self.at)
        self.at += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str:
        n = self.take("<Q")
        end = self.at + n
        if end > len(self.buf):
            raise ValueError("string past the end of the file")
        text = self.buf[self.at : end].decode("utf-8", errors="replace")
        self.at = end
        return text

    def skip_string(self) -> None:
        n = self.take("<Q")
        self.at += n
        if self.at > len(self.buf):
            raise ValueError("string past the end of the file")

    def value(self, kind: int) -> int | str | ArrayOf | None:
        """An integer, string or array (its length); None (skipped) for floats and bools."""
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            inner, count = self.take("<I"), self.take("<Q")
            if inner == _STRING:
                for _ in range(count):
                    self.skip_string()
            elif inner in _FIXED:
                self.at += _FIXED[inner] * count
            else:
                raise ValueError(f"array of GGUF type {inner}")
            return ArrayOf(count)
        if kind in _INT_FORMATS:
            return self.take(_INT_FORMATS[kind])
        if kind in _FIXED:
            self.at += _FIXED[kind]
            return None
        raise ValueError(f"unknown GGUF type {kind}")


def read_metadata(path: Path) -> dict[str, int | str | ArrayOf]:
    """The integer, string and array-length metadata of a GGUF file; ValueError when broken."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        r = _Reader(buf)
        if buf[:4] != GGUF_MAGIC:
            raise ValueError("not GGUF")
        r.at = 8
        r.take("<Q")  # tensor count
        kv_count = r.take("<Q")
        if kv_count > _MAX_KV:
            raise ValueError(f"{kv_count} metadata keys")
        out: dict[str, int | str | ArrayOf] = {}
        for _ in range(kv_count):
            key = r.string()
            value = r.value(r.take("<I"))
            if value is not None:
                out[key] = value
        return out


def read_shape(path: Path) -> Shape | None:
    """The shape of the model from its GGUF metadata; None when it cannot be read."""
    try:
        meta = read_metadata(path)
    except (OSError, ValueError, struct.error):
        return None
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        return None

    def num(key: str, default: int = 0) -> int:
        value = meta.get(f"{arch}.{key}", default)
        return value if isinstance(value, int) and value >= 0 else default

    n_layer, n_embd = num("block_count"), num("embedding_length")
    n_head = num("attention.head_count")
    if not (n_layer and n_embd and n_head):
        return None
    head_dim = n_embd // n_head
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = tokens.count if isinstance(tokens, ArrayOf) else num("vocab_size")
    return Shape(
        architecture=arch,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=num("attention.head_count_kv", n_head),
        key_length=num("attention.key_length", head_dim),
        value_length=num("attention.value_length", head_dim),
        n_vocab=n_vocab or DEFAULT_VOCAB,
    )


def kv_cache_bytes(shape: Shape | None, ctx: int) -> int:
    if shape is None:
        return 0
    return shape.n_layer * ctx * shape.n_head_kv * (shape.key_length + shape.value_length) * 2


def estimate_bytes(size: int, shape: Shape | None, ctx: int) -> int:
    """Weights + KV cache + compute overhead, as the module docstring writes it."""
    vocab = shape.n_vocab if shape is not None else DEFAULT_VOCAB
    return size + kv_cache_bytes(shape, ctx) + OVERHEAD_BYTES + vocab * BATCH_TOKENS * 4


def mem_available(meminfo: Path = Path("/proc/meminfo")) -> int:
    """MemAvailable in bytes."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no MemAvailable in {meminfo}")


def check_memory(name: str, needed: int, available: int) -> None:
    """MemoryError with the runtime's message when `needed` bytes do not fit."""
    if needed > available:
        raise MemoryError(
            f"model {name} needs ~{-(-needed // MIB)} MiB, {available // MIB} MiB available"
        )


@dataclass(frozen=True)
class Facts:
    """What the runtime knows about one version of a model file."""

    version: int
    size: int
    sha256: str
    shape: Shape | None


class FileFacts:
    """Header, sha256 and shape per file identity; `check` is what a load runs first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int, int, int, int, int], Facts] = {}

    def check(self, path: Path) -> Facts:
        """The facts of the file at `path`, its header and sidecar checked; FileRefused."""
        version = gguf_version(path)
        st = path.stat()
        key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._lock:
            facts = self._known.get(key)
        if facts is None:
            try:
                digest = sha256_file(path)
            except OSError as exc:
                raise FileRefused(f"cannot read {path}: {exc.strerror}") from None
            facts = Facts(version, st.st_size, digest, read_shape(path))
            with self._lock:
                for old in [k for k in self._known if k[0] == key[0]]:
                    del self._known[old]
                self._known[key] = facts
        check_sha256(path, facts.sha256)
        return facts


def tail(path: Path, limit: int = 2000) -> str:
    """The last `limit` characters of a log file ('' when there is none)."""
    with contextlib.suppress(OSError), path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - limit))
        return f.read().decode("utf-8", errors="replace").strip()
    return ""
