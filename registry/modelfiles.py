"""Model files on disk: the GGUF header check, the sha256 cache, and keeping a file aside.

- `gguf_version(head)`: the version of a GGUF header (magic `GGUF`, uint32
  little-endian version 1-3), or a ValueError saying what is wrong.
- `HashCache`: sha256 of a file computed once per (path, size, mtime_ns) and
  persisted as JSON in the registry's state dir (a file rewritten in place
  with the same size and mtime would be missed; model files are replaced by
  rename, which changes mtime).
- `keep_aside` / `put_back`: the before-image of a model file is a hard link
  in the execution's backup directory (a copy when that is on another
  filesystem), so keeping it costs no space until the original is replaced;
  it is bounded by the registry's backup retention.

Used by registry.download and registry.tools.model.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import struct
import threading
from pathlib import Path

from registry.atomicfile import fsync_dir, write_atomic

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (1, 2, 3)
HEADER_BYTES = 8
CACHE_FILE = "model-sha256.json"
_HASH_CHUNK = 4 << 20


def gguf_version(head: bytes) -> int:
    """Version from the first 8 bytes of a GGUF file; ValueError when it is not one."""
    if len(head) < HEADER_BYTES:
        raise ValueError(f"not a GGUF file: only {len(head)} bytes")
    if head[:4] != GGUF_MAGIC:
        raise ValueError(f"not a GGUF file: magic {head[:4]!r}, expected {GGUF_MAGIC!r}")
    (version,) = struct.unpack("<I", head[4:8])
    if version not in GGUF_VERSIONS:
        raise ValueError(f"unsupported GGUF version {version} (expected 1-3)")
    return int(version)


def file_gguf_version(path: Path) -> int | None:
    try:
        with path.open("rb") as f:
            return gguf_version(f.read(HEADER_BYTES))
    except (OSError, ValueError):
        return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class HashCache:
    """sha256 per (path, size, mtime_ns), persisted in `<state_dir>/model-sha256.json`."""

    _lock = threading.Lock()

    def __init__(self, state_dir: Path) -> None:
        self.file = state_dir / CACHE_FILE

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, dict[str, object]]) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.file, json.dumps(data, sort_keys=True).encode(), mode=0o600)

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = str(path)
        with self._lock:
            entry = self._load().get(key)
        if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
            return str(entry["sha256"])
        digest = sha256_file(path)
        self.record(path, digest)
        return digest

    def record(self, path: Path, digest: str) -> None:
        """Remember `digest` for the file as it is now (after a verified download)."""
        st = path.stat()
        with self._lock:
            data = self._load()
            data = {k: v for k, v in data.items() if Path(k).exists()}
            data[str(path)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            self._save(data)


def keep_aside(path: Path, backup: Path) -> bool:
    """Hard-link (or copy) `path` to `backup`; False when there is no file at `path`."""
    if not path.is_file():
        return False
    backup.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        backup.unlink()
    try:
        os.link(path, backup)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(path, backup)
    return True


def put_back(backup: Path, path: Path) -> None:
    """Atomically replace `path` with the file kept at `backup` (which stays)."""
    tmp = path.with_name(f".{path.name}.aios-restore")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(backup, tmp)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        shutil.copy2(backup, tmp)
    tmp.replace(path)
    fsync_dir(path.parent)
