"""Pure parts of model downloads: Range parsing (file server), Content-Range, GGUF header."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from registry.drivers.model import download, files
from sandbox import demo, fileserver


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, (0, 9)),
        ("bytes=90-", 100, (90, 99)),
        ("bytes=90-500", 100, (90, 99)),
        ("bytes=-10", 100, (90, 99)),
        ("bytes=-500", 100, (0, 99)),
        ("bytes=100-", 100, fileserver.UNSATISFIABLE),
        ("bytes=-0", 100, fileserver.UNSATISFIABLE),
        ("bytes=0-", 0, fileserver.UNSATISFIABLE),
        ("bytes=5-1", 100, None),
        ("bytes=0-1,5-6", 100, None),
        ("items=0-1", 100, None),
        ("bytes=a-b", 100, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: object) -> None:
    assert fileserver.parse_range(header, size) == expected


def test_resolve_refuses_escapes_dirs_and_dotfiles(tmp_path: Path) -> None:
    (tmp_path / "www/apt").mkdir(parents=True)
    (tmp_path / "www/apt/Packages").write_text("x")
    (tmp_path / "www/.hidden").write_text("x")
    (tmp_path / "secret").write_text("x")
    (tmp_path / "www/link").symlink_to(tmp_path / "secret")
    base = tmp_path / "www"
    assert fileserver.resolve(base, "/apt/./Packages") == base / "apt/Packages"
    assert fileserver.resolve(base, "/apt/Packages?x=1") == base / "apt/Packages"
    for bad in ("/apt", "/", "/../secret", "/apt/%2e%2e/%2e%2e/secret", "/.hidden", "/link"):
        assert fileserver.resolve(base, bad) is None, bad


def test_content_range() -> None:
    assert download.content_range_start("bytes 100-199/200") == (100, 200)
    assert download.content_range_start("bytes 100-199/*") == (100, None)
    assert download.content_range_start("bytes */200") is None


def test_gguf_header() -> None:
    header = demo.gguf_header("x", "llama")
    assert files.gguf_version(header[:8]) == 3
    with pytest.raises(ValueError, match="magic"):
        files.gguf_version(b"GGML" + struct.pack("<I", 3))
    with pytest.raises(ValueError, match="unsupported GGUF version 4"):
        files.gguf_version(b"GGUF" + struct.pack("<I", 4))
    with pytest.raises(ValueError, match="only 3 bytes"):
        files.gguf_version(b"GGU")


def test_hash_cache_hashes_once_per_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + bytes(100))
    cache = files.HashCache(tmp_path / "state")
    calls: list[Path] = []
    real = files.sha256_file
    monkeypatch.setattr(files, "sha256_file", lambda p: calls.append(p) or real(p))
    first = cache.sha256(model)
    assert cache.sha256(model) == first and len(calls) == 1
    model.write_bytes(b"GGUF" + bytes(101))
    assert cache.sha256(model) != first and len(calls) == 2
