"""Handlers of the `model.*` tools (definitions in registry.tools.model_defs).

`model.list` reads the models directory with the sha256 cache
(registry.modelfiles.HashCache); `model.fetch` downloads into `<path>.part`
with registry.download, verifies size, sha256 and the GGUF header, and
renames over `path`; `model.remove` deletes. The before-image of fetch and
remove is the previous file kept as a hard link in the execution's backup
directory (`ctx.work`), so the old file stays in place until the new one is
committed, costs no space until then, and is bounded by the registry's backup
retention. Collected by registry.catalogue through TOOLS.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from registry import download
from registry.atomicfile import fsync_dir
from registry.modelfiles import HashCache, file_gguf_version, keep_aside, put_back
from registry.tooling import JSON, Tool, ToolContext, ToolError
from registry.tools import model_defs
from registry.tools.schema_parts import size_bytes

PREVIOUS = "previous-model"


def target_of(ctx: ToolContext, host: Path) -> str:
    """The target path (as specs write it) of a host path under the root."""
    relative = host.relative_to(ctx.root)
    return "/" + relative.as_posix() if str(relative) != "." else "/"


def part_of(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _inside_root(ctx: ToolContext, path: Path) -> bool:
    """False for a symlink that leads out of the root (never read the host through it)."""
    try:
        return path.resolve().is_relative_to(ctx.root.resolve())
    except OSError:
        return False


def _describe(ctx: ToolContext, host: Path, cache: HashCache) -> JSON:
    st = host.stat()
    return {
        "path": target_of(ctx, host),
        "size": st.st_size,
        "sha256": cache.sha256(host),
        "mtime": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
        "gguf_version": file_gguf_version(host),
    }


class ModelList(Tool):
    spec = model_defs.MODEL_LIST

    def _files(self, ctx: ToolContext, args: JSON) -> list[Path]:
        directory = ctx.path(args.get("directory", model_defs.DEFAULT_DIRECTORY))
        found: dict[Path, None] = {}
        if directory.is_dir():
            for entry in sorted(directory.iterdir()):
                if entry.name.startswith(".") or entry.suffix != ".gguf":
                    continue
                if entry.is_file() and _inside_root(ctx, entry):
                    found[entry] = None
        for target in args.get("paths", ()):
            host = ctx.path(target)
            if host.is_file() and _inside_root(ctx, host):
                found[host] = None
        return list(found)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        cache = HashCache(ctx.state_dir)

        def collect() -> list[JSON]:
            return [_describe(ctx, f, cache) for f in self._files(ctx, args)]

        return {"models": await asyncio.to_thread(collect)}


class _KeepsPrevious(Tool):
    """Before-image: the previous file, hard-linked into the execution's backup."""

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"model:{args.get('path', '')}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        kept = await asyncio.to_thread(keep_aside, ctx.path(args["path"]), ctx.work / PREVIOUS)
        return {"path": args["path"], "previous": PREVIOUS if kept else None}

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        await asyncio.to_thread(self._restore, ctx, snapshot)

    @staticmethod
    def _restore(ctx: ToolContext, snapshot: JSON) -> None:
        host = ctx.path(snapshot["path"])
        part_of(host).unlink(missing_ok=True)
        if snapshot["previous"] is None:
            host.unlink(missing_ok=True)
            return
        backup = ctx.work / snapshot["previous"]
        if not backup.is_file():
            raise ToolError(
                f"the previous {snapshot['path']} is gone from the backup (pruned by the "
                "registry's backup retention)"
            )
        put_back(backup, host)


class ModelFetch(_KeepsPrevious):
    spec = model_defs.MODEL_FETCH

    @staticmethod
    def _source(ctx: ToolContext, url: str) -> str | Path:
        if url.startswith("file:"):
            return ctx.path("/" + url[len("file:") :].lstrip("/"))
        return url

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        host = ctx.path(args["path"])
        expected = args["sha256"]
        size = size_bytes(args["size"]) if "size" in args else None
        cache = HashCache(ctx.state_dir)
        if await asyncio.to_thread(self._matches, host, expected, size, cache):
            return self._output(args, size or host.stat().st_size, expected, 0, False)
        part = part_of(host)
        await asyncio.to_thread(host.parent.mkdir, parents=True, exist_ok=True)
        source = self._source(ctx, args["url"])
        try:
            got = await download.download(source, part, progress=ctx.progress)
        except download.BadContent as exc:
            download.discard(part)
            raise ToolError(
                f"model.fetch {args['path']}: {exc}; the part file was deleted"
            ) from None
        problem = None
        if size is not None and got.size != size:
            problem = f"size {got.size} bytes, expected {size}"
        elif got.sha256 != expected:
            problem = f"sha256 mismatch: expected {expected}, got {got.sha256}"
        if problem:
            download.discard(part)
            raise ToolError(f"model.fetch {args['path']}: {problem}; the part file was deleted")
        await asyncio.to_thread(self._commit, part, host, got.sha256, cache)
        ctx.progress.message = "done"
        return self._output(args, got.size, got.sha256, got.resumed_from, True)

    @staticmethod
    def _matches(host: Path, expected: str, size: int | None, cache: HashCache) -> bool:
        if not host.is_file() or (size is not None and host.stat().st_size != size):
            return False
        return cache.sha256(host) == expected

    @staticmethod
    def _commit(part: Path, host: Path, digest: str, cache: HashCache) -> None:
        part.replace(host)
        fsync_dir(host.parent)
        cache.record(host, digest)

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
        host = ctx.path(args["path"])

        def remove() -> bool:
            existed = host.is_file() or host.is_symlink()
            host.unlink(missing_ok=True)
            part_of(host).unlink(missing_ok=True)
            if existed:
                fsync_dir(host.parent)
            return existed

        return {"path": args["path"], "removed": await asyncio.to_thread(remove)}


TOOLS: tuple[type[Tool], ...] = (ModelList, ModelFetch, ModelRemove)
