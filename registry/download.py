"""Resumable, verified downloads into a `.part` file (model.fetch's engine).

`download(source, part, …)` appends to `part`: an existing part file is
resumed with `Range: bytes=<n>-` and kept when the server answers 206 from
offset n; a 200 restarts from zero; a 416 whose `Content-Range: bytes */N`
equals the part's size means the part is already complete. http(s) goes
through httpx streaming (identity encoding, redirects followed); `file:`
sources are local paths (already mapped under the root by the caller). The
GGUF header is checked as soon as 8 bytes exist, so a wrong file fails before
it is downloaded whole. Bytes are written and hashed in a worker thread
while the next chunk arrives (hashlib and file writes release the GIL).
A broken connection keeps the part file for the next attempt; the caller
deletes it on a wrong hash or header. `progress` gets done/total bytes.

Called by registry.tools.model; bench/ measures it against raw httpx.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from registry.modelfiles import HEADER_BYTES, gguf_version
from registry.tooling import Progress, ToolError

CHUNK = 1 << 20
TIMEOUT = httpx.Timeout(connect=30.0, read=120.0, write=60.0, pool=30.0)
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_UNSATISFIED = re.compile(r"^bytes \*/(\d+)$")


class BadContent(ToolError):
    """The bytes are wrong (hash, size or header): the part file must go."""


@dataclass(frozen=True)
class Downloaded:
    size: int
    sha256: str
    resumed_from: int


def size_of(path: Path) -> int:
    """Size of a file, 0 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def content_range_start(header: str | None) -> tuple[int, int | None] | None:
    """(first byte, total or None) of a 206's Content-Range."""
    match = _CONTENT_RANGE.match(header or "")
    if not match:
        return None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


class _Sink:
    """Appends to the part file and hashes, checking the GGUF header on the way."""

    def __init__(self, part: Path, keep: int) -> None:
        self.digest = hashlib.sha256()
        self.head = b""
        mode = "r+b" if keep else "wb"
        if keep:
            with part.open("rb") as f:
                while chunk := f.read(4 << 20):
                    self._absorb(chunk)
        self.file = part.open(mode)
        self.file.truncate(keep)
        self.file.seek(keep)
        self.size = keep

    def _absorb(self, chunk: bytes) -> None:
        if len(self.head) < HEADER_BYTES:
            self.head += chunk[: HEADER_BYTES - len(self.head)]
            if len(self.head) == HEADER_BYTES:
                try:
                    gguf_version(self.head)
                except ValueError as exc:
                    raise BadContent(str(exc)) from None
        self.digest.update(chunk)

    def write(self, chunk: bytes) -> None:
        self._absorb(chunk)
        self.file.write(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        if len(self.head) < HEADER_BYTES:
            raise BadContent(f"not a GGUF file: only {len(self.head)} bytes")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def close(self) -> None:
        if not self.file.closed:
            self.file.flush()
            self.file.close()


async def _pump(chunks: AsyncIterator[bytes], sink: _Sink, progress: Progress) -> None:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aios-download") as pool:
        pending: asyncio.Future[None] | None = None
        try:
            async for chunk in chunks:
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(pool, sink.write, chunk)
                progress.done += len(chunk)
        finally:
            if pending is not None:
                await pending


async def _file_chunks(source: Path, offset: int) -> AsyncIterator[bytes]:
    with source.open("rb") as f:
        f.seek(offset)
        while chunk := await asyncio.to_thread(f.read, CHUNK):
            yield chunk


async def download(
    source: str | Path, part: Path, *, progress: Progress, client: httpx.AsyncClient | None = None
) -> Downloaded:
    """Fill `part` from `source` (URL or local Path), resuming; see module docstring."""
    keep = size_of(part)
    if isinstance(source, Path):
        if not source.is_file():  # noqa: ASYNC240 (one stat)
            raise ToolError(f"cannot read {source}: no such file")
        total = size_of(source)
        keep = keep if keep <= total else 0
        return await _run(_file_chunks(source, keep), part, keep, total, progress)
    own = client is None
    http = client or httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True)
    try:
        return await _http(http, source, part, keep, progress)
    finally:
        if own:
            await http.aclose()


async def _http(
    client: httpx.AsyncClient, url: str, part: Path, keep: int, progress: Progress
) -> Downloaded:
    headers = {"Accept-Encoding": "identity"}
    if keep:
        headers["Range"] = f"bytes={keep}-"
    try:
        async with client.stream("GET", url, headers=headers) as response:
            if response.status_code == 416 and keep:
                done = _UNSATISFIED.match(response.headers.get("Content-Range", ""))
                if done and int(done.group(1)) == keep:
                    return await _run(_no_chunks(), part, keep, keep, progress)
                discard(part)
                return await _http(client, url, part, 0, progress)
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
            return await _run(response.aiter_raw(CHUNK), part, keep, total, progress)
    except httpx.HTTPError as exc:
        have = size_of(part)
        raise ToolError(
            f"download of {url} interrupted after {have} bytes ({type(exc).__name__}: {exc}); "
            "the part file is kept and the next fetch resumes it"
        ) from None


async def _no_chunks() -> AsyncIterator[bytes]:
    empty: tuple[bytes, ...] = ()
    for chunk in empty:
        yield chunk


async def _run(
    chunks: AsyncIterator[bytes], part: Path, keep: int, total: int | None, progress: Progress
) -> Downloaded:
    progress.total = total or 0
    progress.done = keep
    progress.message = f"resuming at {keep} bytes" if keep else "downloading"
    part.parent.mkdir(parents=True, exist_ok=True)
    sink = await asyncio.to_thread(_Sink, part, keep)
    try:
        await _pump(chunks, sink, progress)
        if total is not None and sink.size != total:
            raise ToolError(f"download ended at {sink.size} of {total} bytes; part file kept")
        await asyncio.to_thread(sink.finish)
    finally:
        sink.close()
    return Downloaded(size=sink.size, sha256=sink.digest.hexdigest(), resumed_from=keep)
