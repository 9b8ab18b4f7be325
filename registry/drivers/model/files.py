"""Model files on disk: the GGUF header check, the sha256 cache, and keeping a file aside.

- `gguf_version(head)`: the version of a GGUF header (magic `GGUF`, uint32
  little-endian version 1-3), or a ValueError saying what is wrong.
- `HashCache`: sha256 of a file computed once per (path, size, mtime_ns) and
  persisted as JSON in the registry's state dir (a file rewritten in place
  with the same size and mtime would be missed; model files are replaced by
  rename, which changes mtime).
- `write_sidecar` / `sidecar_of`: the verified digest beside a model file,
  `<path>.sha256` (hex and a newline), written by model.fetch and checked by
  aios's runtime before it loads the file (runtime.files); replaced atomically
  (a temporary name and a rename in the directory fd), so a link planted at
  the sidecar's name is replaced, never written through.
- `keep_aside` / `put_back`: the before-image of a model file is a hard link
  in the execution's backup directory (a copy when that is on another
  filesystem), so keeping it costs no space until the original is replaced;
  it is bounded by the registry's backup retention.

Files under the root are reached as registry.core.rootfs entries (a directory fd
and a name, resolved inside the root): hashed, linked, copied and replaced
with `*at` calls and O_NOFOLLOW, so no link at or above a model's path can
make them read or write outside the root. A link at the model's own path is
kept aside and put back as a link (the hard link is of the link itself).

Used by registry.drivers.model.download and registry.handlers.model.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from contract.vocab.gguf import GGUF_MAGIC, GGUF_VERSIONS, HEADER_BYTES, SIDECAR_SUFFIX
from registry.core.atomicfile import write_atomic
from registry.core.rootfs import Entry

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


def sha256_fd(fd: int) -> str:
    """sha256 of an open file from offset 0 (the fd's own offset is left alone)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, _HASH_CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def open_model(entry: Entry) -> int:
    """A read fd of the regular file at `entry` (never through a link); OSError otherwise."""
    fd = entry.open(os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", entry.path)
    return fd


def fd_gguf_version(fd: int) -> int | None:
    try:
        return gguf_version(os.pread(fd, HEADER_BYTES, 0))
    except (OSError, ValueError):
        return None


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
        return self._cached(str(path), path.stat(), lambda: sha256_file(path))

    def sha256_fd(self, key: Path, fd: int) -> str:
        """The sha256 of the open file `fd`, cached under host path `key`."""
        return self._cached(str(key), os.fstat(fd), lambda: sha256_fd(fd))

    def _cached(self, key: str, st: os.stat_result, compute: Callable[[], str]) -> str:
        with self._lock:
            entry = self._load().get(key)
        if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
            return str(entry["sha256"])
        digest = compute()
        self._remember(key, st, digest)
        return digest

    def record(self, path: Path, digest: str) -> None:
        """Remember `digest` for the file as it is now (after a verified download)."""
        self._remember(str(path), path.stat(), digest)

    def record_fd(self, key: Path, fd: int, digest: str) -> None:
        self._remember(str(key), os.fstat(fd), digest)

    def _remember(self, key: str, st: os.stat_result, digest: str) -> None:
        with self._lock:
            data = self._load()
            data = {k: v for k, v in data.items() if Path(k).exists()}
            data[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            self._save(data)


def sidecar_of(entry: Entry) -> Entry:
    """The `<name>.sha256` sidecar beside the model file at `entry`."""
    return entry.sibling(entry.name + SIDECAR_SUFFIX)


def write_sidecar(entry: Entry, digest: str) -> None:
    """Leave `digest` (hex and a newline) in the sidecar of the model at `entry`; an
    existing regular sidecar saying exactly that is left alone (module docstring)."""
    side = sidecar_of(entry)
    data = (digest + "\n").encode()
    if side.kind() == "file" and side.read_bytes() == data:
        return
    tmp = entry.sibling(f".{side.name}.aios-tmp")
    if tmp.lstat() is not None:
        tmp.unlink()  # whatever is at the temporary name (a planted link) goes, unfollowed
    fd = tmp.open(os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp.name, side.name, src_dir_fd=entry.dir_fd, dst_dir_fd=entry.dir_fd)
    entry.fsync_dir()


def keep_aside(entry: Entry, backup: Path) -> bool:
    """Hard-link (or copy) what is at `entry` (a file, or a link itself) to `backup`;
    False when there is no file or link there."""
    if entry.kind() not in ("file", "symlink"):
        return False
    backup.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        backup.unlink()
    try:
        os.link(entry.name, backup, src_dir_fd=entry.dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        if entry.kind() == "symlink":
            backup.symlink_to(entry.readlink())
        else:
            fd = open_model(entry)
            try:
                _copy_into(fd, backup, os.fstat(fd))
            finally:
                os.close(fd)
    return True


def _copy_into(src: int, path: Path, st: os.stat_result) -> None:
    with os.fdopen(os.dup(src), "rb") as reader, path.open("wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
    path.chmod(stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def put_back(backup: Path, entry: Entry) -> None:
    """Atomically replace what is at `entry` with the file kept at `backup` (which stays)."""
    tmp = entry.sibling(f".{entry.name}.aios-restore")
    if tmp.lstat() is not None:
        tmp.unlink()  # whatever is at the temporary name (a planted link) goes, unfollowed
    try:
        os.link(backup, tmp.name, dst_dir_fd=entry.dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
        if backup.is_symlink():
            tmp.symlink(str(backup.readlink()))
        else:
            st = backup.stat()
            fd = tmp.open(os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with backup.open("rb") as reader, os.fdopen(os.dup(fd), "wb") as writer:
                    shutil.copyfileobj(reader, writer, 1 << 20)
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
                os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(fd)
    os.replace(tmp.name, entry.name, src_dir_fd=entry.dir_fd, dst_dir_fd=entry.dir_fd)
    entry.fsync_dir()
