"""Resumable, verified downloads into a `.part` file (model.fetch's engine).

`download(source, part, …)` appends to `part`: an existing part file is
resumed with `Range: bytes=<n>-` and kept when the server answers 206 from
offset n; a 200 restarts from zero; a 416 whose `Content-Range: bytes */N`
equals the part's size means the part is already complete. http(s) goes
through httpx streaming (identity encoding, redirects followed); a `file:`
source is a file the caller opened (resolved inside the root). The part
file is a registry.core.rootfs entry (the model's directory fd and a name): it is
read, created, truncated and deleted with `*at` calls and O_NOFOLLOW, so a
link planted at `<path>.part` is refused, never written through. The
GGUF header is checked as soon as 8 bytes exist, so a wrong file fails before
it is downloaded whole. A broken connection keeps what arrived in the part
file for the next attempt; the caller deletes it on a wrong hash or header.
`progress` gets done/total bytes.

Speed: the transfer and the writes run in one worker thread with httpx's
synchronous client (about twice the throughput of its asyncio client here);
sha256 runs in a second thread on ~4 MiB blocks, so hashlib holds the GIL
released for milliseconds at a time (per-64 KiB hand-offs were slower than
hashing inline on this 2-core VM). A third thread fdatasyncs the part file
every 32 MiB (write-behind), so the fsync the atomic rename needs at the end
finds little left to write. The remaining cost over raw streaming is the
hashing where no core is free and that durability. Cancelling the awaiting
task stops the transfer at the next chunk.

Called by registry.handlers.model; bench/ measures it against raw httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import queue
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from contract.vocab.gguf import HEADER_BYTES
from registry.core.errors import ToolError
from registry.core.rootfs import Entry
from registry.core.tool import Progress
from registry.drivers.model.files import gguf_version

CHUNK = 1 << 20
HASH_BLOCK = 4 << 20
HASH_QUEUE = 8  # blocks in flight: at most 32 MiB buffered
FLUSH_EVERY = 32 << 20  # start writing back to disk while the download goes on
TIMEOUT = httpx.Timeout(connect=30.0, read=120.0, write=60.0, pool=30.0)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED = re.compile(r"^bytes \*/(\d+)$")


class BadContent(ToolError):
    """The bytes are wrong (hash, size or header): the part file must go."""


class Cancelled(ToolError):
    """The execution was cancelled (timeout): the threads stopped early."""


@dataclass(frozen=True)
class Downloaded:
    size: int
    sha256: str
    resumed_from: int


def size_of(part: Entry) -> int:
    """Size of the part file, 0 when it does not exist; ToolError when it is no file."""
    st = part.lstat()
    if st is None:
        return 0
    if not stat.S_ISREG(st.st_mode):
        raise ToolError(
            f"{part.path} is not a regular file; refusing to write through it "
            "(model.remove deletes it)"
        )
    return st.st_size


def discard(part: Entry) -> None:
    with contextlib.suppress(FileNotFoundError):
        part.unlink()


def content_range_start(header: str | None) -> tuple[int, int | None] | None:
    """(first byte, total or None) of a 206's Content-Range."""
    match = _CONTENT_RANGE.match(header or "")
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


class _Hasher(threading.Thread):
    """sha256 of ~4 MiB blocks in a thread of its own (hashlib releases the GIL meanwhile)."""

    def __init__(self) -> None:
        super().__init__(name="aios-download-sha256", daemon=True)
        self.digest = hashlib.sha256()
        self.blocks: queue.Queue[bytes | None] = queue.Queue(HASH_QUEUE)

    def run(self) -> None:
        while (block := self.blocks.get()) is not None:
            self.digest.update(block)

    def stop(self) -> str:
        self.blocks.put(None)
        self.join()
        return self.digest.hexdigest()


class _Flusher(threading.Thread):
    """Write-behind: fdatasync the part file in the background every FLUSH_EVERY bytes,
    so the final fsync (needed before the atomic rename) finds little left to write."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="aios-download-flush", daemon=True)
        self.fd = fd
        self.wanted = threading.Event()
        self.done = False

    def run(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            if self.done:
                return
            with contextlib.suppress(OSError):
                os.fdatasync(self.fd)

    def stop(self) -> None:
        self.done = True
        self.wanted.set()
        self.join()


class _Sink:
    """Appends to the part file, checks the GGUF header, and feeds the hasher."""

    def __init__(self, part: Entry, keep: int) -> None:
        self.hasher = _Hasher()
        self.hasher.start()
        self.flusher: _Flusher | None = None
        self.unflushed = 0
        self.head = b""
        self.batch: list[bytes] = []
        self.batched = 0
        self.fd = -1
        try:
            if keep:
                with os.fdopen(part.open(os.O_RDONLY), "rb") as f:
                    while chunk := f.read(HASH_BLOCK):
                        self._check_head(chunk)
                        self.hasher.blocks.put(chunk)
        except BaseException:
            self.hasher.stop()
            raise
        self.fd = part.open(os.O_WRONLY | os.O_CREAT, 0o644)
        os.ftruncate(self.fd, keep)
        os.lseek(self.fd, keep, os.SEEK_SET)
        self.size = keep
        self.flusher = _Flusher(self.fd)
        self.flusher.start()

    def _check_head(self, chunk: bytes) -> None:
        if len(self.head) < HEADER_BYTES:
            self.head += chunk[: HEADER_BYTES - len(self.head)]
            if len(self.head) == HEADER_BYTES:
                try:
                    gguf_version(self.head)
                except ValueError as exc:
                    raise BadContent(str(exc)) from None

    def write(self, chunk: bytes) -> None:
        self._check_head(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(self.fd, view) :]
        self.size += len(chunk)
        self.unflushed += len(chunk)
        if self.unflushed >= FLUSH_EVERY and self.flusher is not None:
            self.flusher.wanted.set()
            self.unflushed = 0
        self.batch.append(chunk)
        self.batched += len(chunk)
        if self.batched >= HASH_BLOCK:
            self._hand_over()

    def _hand_over(self) -> None:
        if self.batch:
            self.hasher.blocks.put(b"".join(self.batch))
            self.batch, self.batched = [], 0

    def finish(self) -> str:
        """fsync and return the sha256 of everything in the part file."""
        if len(self.head) < HEADER_BYTES:
            raise BadContent(f"not a GGUF file: only {len(self.head)} bytes")
        self._hand_over()
        digest = self.hasher.stop()
        if self.flusher is not None:
            self.flusher.stop()
            self.flusher = None
        os.fsync(self.fd)
        return digest

    def close(self) -> None:
        if self.hasher.is_alive():
            self.hasher.stop()
        if self.flusher is not None:
            self.flusher.stop()
            self.flusher = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _consume(
    chunks: Iterator[bytes],
    part: Entry,
    keep: int,
    total: int | None,
    progress: Progress,
    stop: threading.Event,
) -> Downloaded:
    progress.total = total or 0
    progress.done = keep
    progress.message = f"resuming at {keep} bytes" if keep else "downloading"
    sink = _Sink(part, keep)
    try:
        for chunk in chunks:
            if stop.is_set():
                raise Cancelled("download cancelled")
            sink.write(chunk)
            progress.done += len(chunk)
        if total is not None and sink.size != total:
            raise ToolError(f"download ended at {sink.size} of {total} bytes; part file kept")
        digest = sink.finish()
    finally:
        sink.close()
    return Downloaded(size=sink.size, sha256=digest, resumed_from=keep)


def _file_chunks(source: BinaryIO, offset: int) -> Iterator[bytes]:
    source.seek(offset)
    while chunk := source.read(CHUNK):
        yield chunk


def _http(url: str, part: Entry, progress: Progress, stop: threading.Event) -> Downloaded:
    keep = size_of(part)
    headers = {"Accept-Encoding": "identity"}
    if keep:
        headers["Range"] = f"bytes={keep}-"
    try:
        with (
            httpx.Client(timeout=TIMEOUT, follow_redirects=True) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code == 416 and keep:
                done = _UNSATISFIED.match(response.headers.get("Content-Range", ""))
                if done and int(done.group(1)) == keep:
                    return _consume(iter(()), part, keep, keep, progress, stop)
                discard(part)
                return _http(url, part, progress, stop)
            if response.status_code == 206 and keep:
                span = content_range_start(response.headers.get("Content-Range"))
                if span is None or span[0] != keep:
                    raise ToolError(f"GET {url}: 206 for another range ({span})")
                total = span[1]
            elif response.status_code == 200:
                keep = 0
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            else:
                raise ToolError(f"GET {url}: HTTP {response.status_code}")
            return _consume(response.iter_raw(), part, keep, total, progress, stop)
    except httpx.HTTPError as exc:
        raise ToolError(
            f"download of {url} interrupted after {size_of(part)} bytes "
            f"({type(exc).__name__}: {exc}); the part file is kept and the next fetch resumes it"
        ) from None


def _download(
    source: str | BinaryIO, part: Entry, progress: Progress, stop: threading.Event
) -> Downloaded:
    if isinstance(source, str):
        return _http(source, part, progress, stop)
    total = os.fstat(source.fileno()).st_size
    keep = size_of(part)
    keep = keep if keep <= total else 0
    return _consume(_file_chunks(source, keep), part, keep, total, progress, stop)


async def download(source: str | BinaryIO, part: Entry, *, progress: Progress) -> Downloaded:
    """Fill `part` from `source` (URL or an open local file), resuming; see module docstring.

    The worker thread gets a directory fd of its own: after a cancellation it may
    still run (until its next chunk) when the caller has closed `part.dir_fd`, and
    that fd number may by then name another directory."""
    stop = threading.Event()
    own = part.dup()

    def work() -> Downloaded:
        try:
            return _download(source, own, progress, stop)
        finally:
            os.close(own.dir_fd)

    try:
        return await asyncio.to_thread(work)
    except asyncio.CancelledError:
        stop.set()
        raise
