"""Handlers of the `model.*` tools (definitions in contract.catalogue.model).

`model.list` reads the models directory with the sha256 cache
(registry.drivers.model.files.HashCache); `model.fetch` downloads into `<path>.part`
with registry.drivers.model.download, verifies size, sha256 and the GGUF header, and
renames over `path`, leaving the verified digest beside it in `<path>.sha256`
(registry.drivers.model.files.write_sidecar; aios's runtime checks it before it
loads the file); `model.remove` deletes the file and its sidecar. The
before-image of fetch and remove is the previous file and sidecar kept as hard
links in the execution's backup directory (`ctx.work`), so the old file stays in
place until the new one is committed, costs no space until then, and is bounded
by the registry's backup retention. Collected by registry.handlers.index through
TOOLS.

Paths (the model, its directory, a `file:` source) are resolved inside the
root by registry.core.rootfs and used through a directory fd and a name: a link
on the way, or an absolute or `..` link target, can never lead out of the
root. `model.fetch` and `model.remove` act on the name itself (a link at the
model's path is replaced or removed, never written through; a link at
`<path>.part` is refused); `model.list` and a `file:` source follow a link
inside the root. Outputs name the target paths as the caller spelled them.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO, TypeVar

from contract.catalogue import model as model_defs
from contract.catalogue.parts import size_bytes
from contract.tooldef import JSON
from registry.core import rootfs
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext
from registry.drivers.model import download
from registry.drivers.model.files import (
    HashCache,
    fd_gguf_version,
    keep_aside,
    open_model,
    put_back,
    sidecar_of,
    write_sidecar,
)

PREVIOUS = "previous-model"
PREVIOUS_SIDECAR = "previous-model.sha256"
T = TypeVar("T")


def part_of(entry: rootfs.Entry) -> rootfs.Entry:
    return entry.sibling(entry.name + ".part")


async def _in_thread(fn: Callable[..., T], found: rootfs.Entry, *args: Any) -> T:
    """fn(entry, *args) in a worker thread, on a directory fd of the thread's own: a
    cancelled await leaves the thread running after the caller closed its fds."""
    own = found.dup()

    def work() -> T:
        try:
            return fn(own, *args)
        finally:
            os.close(own.dir_fd)

    return await asyncio.to_thread(work)


def _describe(ctx: ToolContext, target: str, cache: HashCache) -> JSON | None:
    """A model file at `target` (followed inside the root), None when there is none."""
    try:
        with rootfs.entry(ctx.root, target, follow=True) as found:
            fd = open_model(found)
            host = found.host
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        return {
            "path": target,
            "size": st.st_size,
            "sha256": cache.sha256_fd(host, fd),
            "mtime": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
            "gguf_version": fd_gguf_version(fd),
        }
    finally:
        os.close(fd)


def _listed(ctx: ToolContext, directory: str) -> list[str]:
    """Target paths of the `.gguf` names in `directory` (dot-files skipped)."""
    try:
        with rootfs.entry(ctx.root, directory, follow=True) as found:
            fd = found.open_dir()
    except OSError:
        return []
    try:
        with os.scandir(fd) as it:
            names = sorted(e.name for e in it)
    finally:
        os.close(fd)
    base = directory.rstrip("/")
    return [f"{base}/{n}" for n in names if not n.startswith(".") and n.endswith(".gguf")]


class ModelList(Tool):
    spec = model_defs.MODEL_LIST

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        cache = HashCache(ctx.state_dir)

        def collect() -> list[JSON]:
            directory = args.get("directory", model_defs.DEFAULT_DIRECTORY)
            targets = dict.fromkeys([*_listed(ctx, directory), *args.get("paths", ())])
            described = (_describe(ctx, t, cache) for t in targets)
            return [d for d in described if d is not None]

        return {"models": await asyncio.to_thread(collect)}


class _KeepsPrevious(Tool):
    """Before-image: the previous file, hard-linked into the execution's backup."""

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"model:{args.get('path', '')}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        def keep() -> tuple[bool, bool]:
            try:
                with rootfs.entry(ctx.root, args["path"], follow=False) as found:
                    return (
                        keep_aside(found, ctx.work / PREVIOUS),
                        keep_aside(sidecar_of(found), ctx.work / PREVIOUS_SIDECAR),
                    )
            except (FileNotFoundError, NotADirectoryError):  # no parent: nothing there yet
                return False, False

        kept, sidecar = await asyncio.to_thread(keep)
        return {
            "path": args["path"],
            "previous": PREVIOUS if kept else None,
            "sidecar": PREVIOUS_SIDECAR if sidecar else None,
        }

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        await asyncio.to_thread(self._restore, ctx, snapshot)

    @staticmethod
    def _restore(ctx: ToolContext, snapshot: JSON) -> None:
        backup = ctx.work / snapshot["previous"] if snapshot["previous"] else None
        if backup is not None and not (backup.is_file() or backup.is_symlink()):
            raise ToolError(
                f"the previous {snapshot['path']} is gone from the backup (pruned by the "
                "registry's backup retention)"
            )
        try:
            with rootfs.entry(ctx.root, snapshot["path"], follow=False, parents=True) as found:
                download.discard(part_of(found))
                if backup is None:
                    download.discard(found)
                else:
                    put_back(backup, found)
                if "sidecar" in snapshot:  # before-images taken before sidecars have none
                    kept = snapshot["sidecar"]
                    side = sidecar_of(found)
                    if kept and os.path.lexists(ctx.work / kept):  # a link may dangle there
                        put_back(ctx.work / kept, side)
                    else:
                        download.discard(side)
        except FileNotFoundError:
            if backup is not None:
                raise


class ModelFetch(_KeepsPrevious):
    spec = model_defs.MODEL_FETCH

    @staticmethod
    def _source(ctx: ToolContext, url: str) -> str | BinaryIO:
        """The URL, or a `file:` source opened inside the root (followed there)."""
        if not url.startswith("file:"):
            return url
        target = "/" + url[len("file:") :].lstrip("/")
        try:
            with rootfs.entry(ctx.root, target, follow=True) as found:
                return os.fdopen(open_model(found), "rb")
        except OSError:
            raise ToolError(f"cannot read {url}: no such file") from None

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        try:
            with rootfs.entry(ctx.root, args["path"], follow=False, parents=True) as found:
                return await self._fetch(ctx, args, found)
        except OSError as exc:
            raise ToolError(f"model.fetch {args['path']}: {exc.strerror or exc}") from None

    async def _fetch(self, ctx: ToolContext, args: JSON, found: rootfs.Entry) -> JSON:
        expected = args["sha256"]
        size = size_bytes(args["size"]) if "size" in args else None
        cache = HashCache(ctx.state_dir)
        have = await _in_thread(self._matches, found, expected, size, cache)
        if have is not None:
            await _in_thread(write_sidecar, found, expected)
            return self._output(args, have, expected, 0, False)
        if found.kind() not in (None, "file", "symlink"):
            raise ToolError(f"model.fetch {args['path']}: not a file; refusing to replace it")
        part = part_of(found)
        source = self._source(ctx, args["url"])
        try:
            got = await download.download(source, part, progress=ctx.progress)
        except download.BadContent as exc:
            download.discard(part)
            raise ToolError(
                f"model.fetch {args['path']}: {exc}; the part file was deleted"
            ) from None
        finally:
            if not isinstance(source, str):
                source.close()
        problem = None
        if size is not None and got.size != size:
            problem = f"size {got.size} bytes, expected {size}"
        elif got.sha256 != expected:
            problem = f"sha256 mismatch: expected {expected}, got {got.sha256}"
        if problem:
            download.discard(part)
            raise ToolError(f"model.fetch {args['path']}: {problem}; the part file was deleted")
        await _in_thread(self._commit, found, part.name, got.sha256, cache)
        ctx.progress.message = "done"
        return self._output(args, got.size, got.sha256, got.resumed_from, True)

    @staticmethod
    def _matches(
        found: rootfs.Entry, expected: str, size: int | None, cache: HashCache
    ) -> int | None:
        """The size of the file already at the name (not through a link) when it is the one."""
        st = found.lstat()
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        if size is not None and st.st_size != size:
            return None
        fd = open_model(found)
        try:
            return st.st_size if cache.sha256_fd(found.host, fd) == expected else None
        finally:
            os.close(fd)

    @staticmethod
    def _commit(found: rootfs.Entry, part: str, digest: str, cache: HashCache) -> None:
        os.replace(part, found.name, src_dir_fd=found.dir_fd, dst_dir_fd=found.dir_fd)
        found.fsync_dir()
        write_sidecar(found, digest)
        fd = open_model(found)
        try:
            cache.record_fd(found.host, fd, digest)
        finally:
            os.close(fd)

    @staticmethod
    def _output(args: JSON, size: int, digest: str, resumed: int, downloaded: bool) -> JSON:
        return {
            "path": args["path"],
            "size": size,
            "sha256": digest,
            "resumed_from": resumed,
            "downloaded": downloaded,
        }


class ModelRemove(_KeepsPrevious):
    spec = model_defs.MODEL_REMOVE

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        def remove() -> bool:
            try:
                with rootfs.entry(ctx.root, args["path"], follow=False) as found:
                    kind = found.kind()
                    if kind == "dir":
                        raise ToolError(f"model.remove {args['path']}: a directory, not a file")
                    download.discard(found)
                    download.discard(part_of(found))
                    download.discard(sidecar_of(found))
                    if kind is not None:
                        found.fsync_dir()
                    return kind is not None
            except (FileNotFoundError, NotADirectoryError):  # no parent: nothing to remove
                return False

        return {"path": args["path"], "removed": await asyncio.to_thread(remove)}


TOOLS: tuple[type[Tool], ...] = (ModelList, ModelFetch, ModelRemove)
