"""A small static file server: GET/HEAD with single byte ranges, no listings, no escapes.

Serves one directory over HTTP/1.1 (stdlib ThreadingHTTPServer): `Range:
bytes=a-b` / `a-` / `-n` answers 206 with Content-Range, an unsatisfiable
range 416 with `Content-Range: bytes */size`, anything else 200 with the whole
file (sent with sendfile). Directories, dot-files and paths that resolve
outside the served directory (.., symlinks) are 404. Files that live elsewhere
are served only when named one by one: `--file URLPATH=FILE` (repeatable)
answers URLPATH (e.g. `models/x.gguf`) from FILE, read in place — the sandbox
serves the 98 MB SmolLM2 file from the installed wheel this way, never a copy.
The sandbox runs it inside its network namespace to serve the demo apt
repository and GGUF models (`python -m sandbox.fileserver --dir D --bind
127.0.0.1 --port N [--file U=F]…`); tests and bench/ start it in-process with
`serve`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit


class Unsatisfiable:
    """A Range header no byte of the file satisfies (answered with 416)."""


UNSATISFIABLE = Unsatisfiable()


def parse_range(header: str | None, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """(first, last) inclusive for one satisfiable range; None to send the whole file.

    Multiple ranges and malformed headers are ignored (RFC 9110 allows it);
    a well-formed single range that starts beyond the end is UNSATISFIABLE.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first_s, sep, last_s = header[len("bytes=") :].strip().partition("-")
    if not sep or not (first_s.isdigit() or first_s == "") or not (last_s.isdigit() or not last_s):
        return None
    if first_s == "":
        if not last_s:
            return None
        suffix = int(last_s)
        if suffix == 0:
            return UNSATISFIABLE
        return (max(size - suffix, 0), size - 1) if size else UNSATISFIABLE
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    return first, min(int(last_s), size - 1) if last_s else size - 1


def _parts(url_path: str) -> list[str]:
    return [p for p in unquote(urlsplit(url_path).path).split("/") if p not in ("", ".")]


def resolve(base: Path, url_path: str, files: Mapping[str, Path] | None = None) -> Path | None:
    """The regular file `url_path` names under `base`, or None (missing, dir, dot-file, escape).

    A URL path listed in `files` ("models/x.gguf" -> a file anywhere) is that file when it
    is a regular file; nothing else outside `base` is ever served.
    """
    parts = _parts(url_path)
    named = {"/".join(_parts(url)): path for url, path in (files or {}).items()}
    if "/".join(parts) in named:
        found = named["/".join(parts)]
        return found if found.is_file() else None
    if any(p.startswith(".") or "\x00" in p for p in parts):
        return None
    candidate = base.joinpath(*parts) if parts else base
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(base.resolve()) or not real.is_file():
        return None
    return real


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "aios-fileserver/1"
    directory: Path = Path()
    files: Mapping[str, Path] = {}  # URL path (no leading /) -> a file served from elsewhere

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _error(self, status: HTTPStatus, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, *, body: bool) -> None:
        path = resolve(self.directory, self.path, self.files)
        if path is None:
            self._error(HTTPStatus.NOT_FOUND)
            return
        with path.open("rb") as f:
            stat = os.fstat(f.fileno())
            size = stat.st_size
            span = parse_range(self.headers.get("Range"), size)
            if isinstance(span, Unsatisfiable):
                self._error(
                    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, {"Content-Range": f"bytes */{size}"}
                )
                return
            first, last = span if span else (0, size - 1)
            self.send_response(HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK)
            if span:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Content-Length", str(max(last - first + 1, 0)))
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Last-Modified", formatdate(stat.st_mtime, usegmt=True))
            self.end_headers()
            if body and last >= first:
                self.send_body(f, first, last - first + 1)

    def send_body(self, f: BinaryIO, offset: int, count: int) -> None:
        """Send `count` bytes of `f` from `offset` (tests override this to cut a body short)."""
        with contextlib.suppress(ConnectionError):
            self.connection.sendfile(f, offset, count)


def make_server(
    directory: Path,
    bind: str,
    port: int,
    handler: type[Handler] = Handler,
    files: Mapping[str, Path] | None = None,
) -> ThreadingHTTPServer:
    bound = type(
        "BoundHandler", (handler,), {"directory": directory.resolve(), "files": files or {}}
    )
    server = ThreadingHTTPServer((bind, port), bound)
    server.daemon_threads = True
    return server


@contextlib.contextmanager
def serve(
    directory: Path,
    bind: str = "127.0.0.1",
    port: int = 0,
    handler: type[Handler] = Handler,
    files: Mapping[str, Path] | None = None,
) -> Iterator[str]:
    """Serve `directory` (and the named `files`) in a background thread; yields the base URL."""
    server = make_server(directory, bind, port, handler, files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{bind}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="URLPATH=FILE",
        help="also serve FILE (anywhere) at URLPATH, e.g. models/x.gguf=/opt/x.gguf",
    )
    args = parser.parse_args(argv)
    files = {}
    for item in args.file:
        url, sep, path = item.partition("=")
        if not sep or not url or not path:
            parser.error(f"--file {item!r}: expected URLPATH=FILE")
        files[url] = Path(path)
    server = make_server(args.dir, args.bind, args.port, files=files)
    sys.stderr.write(f"serving {args.dir} on http://{args.bind}:{server.server_address[1]}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
