"""Handlers of `model.loaded`, `model.load` and `model.unload`: the AI runtime's models.

Definitions in contract.catalogue.model. Each call opens a
registry.drivers.model.runtime.RuntimeClient to the runtime the registry was
told about (`ctx.options["runtime"]`, from `aios registry serve --runtime`;
else $AIOS_RUNTIME_ADDR, else localhost:50055), so the controller never talks to
llama-server or the runtime itself. Collected by registry.handlers.index through TOOLS.

`model.load` checks the file before the runtime is called: the target path is
resolved inside the root (registry.core.rootfs, links followed inside it), the
file must be a regular file starting with the GGUF header, and when `sha256` is
given its digest (registry.drivers.model.files.HashCache) must equal it. The
runtime gets the host path (`ctx.path`: the lexical `<root>/<path>` unless a
link makes that mean something else), and entries name target paths again
(the root stripped). Changed parameters are re-applied: our runtime does it in
LoadModel; against aiOS's runtime (no Describe; its LoadModel keeps a loaded
model as it is) the model is unloaded first when the registry's record does not
say it has exactly these parameters. Then the tool waits until the model is ready.
model.load and model.unload are `model` tools, so they hold the registry's root
write lock (registry.server.execution.ROOT_NAMESPACES) while the runtime loads:
no other writer under the root can swap the checked path for a link before the
runtime has opened it (the runtime checks the header and the sidecar again itself).

Reversible: the before-image of load and unload is the model's entry (its
parameters, host and target path) or None (or "unreachable": the call then fails
in `run`, after model.load's file checks); `restore` unloads a model that was
not loaded before, or loads the previous parameters again (and waits for ready).
A previous entry whose parameters the registry cannot know (loaded into aiOS's
runtime by someone else) cannot be restored, and Rollback says so. `touches` is
`model-load:<name>`.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from contract.catalogue import model as model_defs
from contract.tooldef import JSON
from contract.vocab.gguf import HEADER_BYTES
from registry.core import rootfs
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext
from registry.drivers.model import runtime
from registry.drivers.model.files import HashCache, gguf_version, open_model
from registry.drivers.model.runtime import Loaded, LoadRecord, Params, RuntimeClient


def target_of(root: Path, host: str | None) -> str | None:
    """The target path of a host path under `root` (itself when it is not under it)."""
    if host is None or root == Path("/"):
        return host
    try:
        rel = Path(host).relative_to(root)
    except ValueError:
        return host
    return "/" + rel.as_posix() if rel.parts else "/"


def entry_json(root: Path, model: Loaded) -> JSON:
    """A model as model.loaded lists it (contract.catalogue.model.RUNTIME_MODEL)."""
    return {
        "name": model.name,
        "status": model.status,
        "port": model.port,
        "path": target_of(root, model.path),
        "contextLength": model.context_length,
        "threads": model.threads,
        "gpuLayers": model.gpu_layers,
        "sha256": model.sha256,
        "restarts": model.restarts,
        "lastError": model.last_error,
        "onDemand": model.on_demand,
    }


def _session(ctx: ToolContext) -> tuple[RuntimeClient, LoadRecord]:
    address = runtime.address(ctx.options)
    return RuntimeClient(address), LoadRecord(ctx.state_dir, address)


def _checked_file(ctx: ToolContext, args: JSON) -> str | None:
    """Check the model file (GGUF header; sha256 when given); its sha256 if computed."""
    name, target = args["name"], args["path"]
    try:
        with rootfs.entry(ctx.root, target, follow=True) as found:
            fd = open_model(found)
            host = found.host
    except OSError as exc:
        raise ToolError(f"model.load {name}: {target}: {exc.strerror or exc}") from None
    try:
        try:
            gguf_version(os.pread(fd, HEADER_BYTES, 0))
        except ValueError as exc:
            raise ToolError(f"model.load {name}: {target}: {exc}; not loaded") from None
        expected = args.get("sha256")
        if expected is None:
            return None
        digest = HashCache(ctx.state_dir).sha256_fd(host, fd)
    finally:
        os.close(fd)
    if digest != expected:
        raise ToolError(
            f"model.load {name}: {target}: sha256 mismatch: expected {expected}, "
            f"the file has {digest}; not loaded"
        )
    return digest


def _previous(model: Loaded | None, root: Path) -> JSON | None:
    if model is None:
        return None
    params = model.params()
    if params is None:
        return {"known": False, "status": model.status}
    return {
        "known": True,
        "hostPath": params.path,
        "path": target_of(root, params.path),
        "contextLength": params.context_length,
        "threads": params.threads,
        "gpuLayers": params.gpu_layers,
        "sha256": model.sha256,
    }


async def _load(
    client: RuntimeClient,
    record: LoadRecord,
    name: str,
    params: Params,
    sha256: str | None,
) -> Loaded:
    """Load `name` with `params` (re-applied when they differ), wait until it is ready."""
    current, described = await runtime.find(client, record, name)
    if current is not None and not described and current.params() != params:
        await client.unload(name)  # aiOS's LoadModel would keep the old parameters
        record.drop(name)
    answer = await client.load(name, params)
    if answer.failed:
        raise ToolError(f"model.load {name}: the runtime says {answer.status}")
    record.put(name, params, sha256)
    return await runtime.wait_ready(client, record, name)


class _RuntimeTool(Tool):
    """Before-image: the model's entry in the runtime (or None); restore puts it back."""

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"model-load:{args.get('name', '')}",)

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        """The model's entry; an unreachable runtime is left for `run` to report, so that
        model.load refuses a bad file before it needs the runtime."""
        client, record = _session(ctx)
        try:
            async with client:
                model, _ = await runtime.find(client, record, args["name"])
        except runtime.Unreachable:
            return {"name": args["name"], "previous": None, "reachable": False}
        return {"name": args["name"], "previous": _previous(model, ctx.root)}

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        name, previous = snapshot["name"], snapshot["previous"]
        if snapshot.get("reachable") is False:
            raise ToolError(
                f"cannot restore model {name}: the runtime was unreachable when its "
                "before-image was taken"
            )
        client, record = _session(ctx)
        async with client:
            current, _ = await runtime.find(client, record, name)
            if previous is None:
                if current is not None:
                    await client.unload(name)
                record.drop(name)
                return
            if not previous["known"]:
                raise ToolError(
                    f"cannot restore model {name}: the parameters it was loaded with before "
                    "are unknown (it was not loaded through this registry)"
                )
            params = Params(
                previous["hostPath"],
                previous["contextLength"],
                previous["threads"],
                previous["gpuLayers"],
            )
            await _load(client, record, name, params, previous["sha256"])


class ModelLoaded(Tool):
    spec = model_defs.MODEL_LOADED

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        client, record = _session(ctx)
        async with client:
            models, _ = await runtime.loaded(client, record)
        return {
            "runtime": client.address,
            "models": [entry_json(ctx.root, m) for m in sorted(models, key=lambda m: m.name)],
        }


class ModelLoad(_RuntimeTool):
    spec = model_defs.MODEL_LOAD

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        digest = await asyncio.to_thread(_checked_file, ctx, args)
        params = Params(
            path=str(ctx.path(args["path"])),
            context_length=args["contextLength"],
            threads=args["threads"],
            gpu_layers=args["gpuLayers"],
        )
        client, record = _session(ctx)
        async with client:
            ctx.progress.message = f"loading {args['name']}"
            model = await _load(client, record, args["name"], params, digest)
        ctx.progress.message = "ready"
        return entry_json(ctx.root, model)


class ModelUnload(_RuntimeTool):
    spec = model_defs.MODEL_UNLOAD

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        client, record = _session(ctx)
        async with client:
            message = await client.unload(args["name"])
        record.drop(args["name"])
        return {"name": args["name"], "message": message}


TOOLS: tuple[type[Tool], ...] = (ModelLoaded, ModelLoad, ModelUnload)
