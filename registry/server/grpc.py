"""The aios.tools.ToolRegistry gRPC server (grpc.aio) with the standard health service.

`RegistryServer(options)` builds the pipeline (tool table, capabilities,
audit log, backups) and serves ListTools, GetTool, Execute, Rollback,
Register and Deregister plus `grpc.health.v1.Health` (SERVING once started,
for "" and "aios.tools.ToolRegistry"). `serve(options)` runs it until SIGTERM
or SIGINT, then shuts down gracefully: NOT_SERVING, stop accepting, give
in-flight calls a grace period, cancel what is left (process groups killed,
before-images restored), close the audit log.

Listening: the default is the unix socket DEFAULT_LISTEN
(unix:///run/aios/tools.sock). `unix:///abs/path` (or `unix:/abs/path`)
creates the socket with mode 0600 (umask 0177 while binding, so it is never
group/world accessible, and chmod after) in a directory that only its owner
(or root) can write — a directory others can write is refused, since they
could replace the socket. `HOST:PORT` listens on TCP only when asked for;
`tcp_warning` says what that exposes (logged at start, printed by the CLI).
agent_id is self-asserted: capability checks protect only as much as the
socket's permissions do.

On the `full` profile it also serves our aios.changes.ChangeFeed (Watch: the
target's changes as the kernel and inotify report them, registry.server.changefeed),
SERVING in the health service too; on `aios` that service does not exist (UNIMPLEMENTED,
as on aiOS's own registry), and aios.tools.ToolRegistry is the same on both.

Unknown tools: GetTool is NOT_FOUND `Tool not found: <name>` on both profiles;
Execute is NOT_FOUND with the same text on `full` and INTERNAL
`Execution failed: Unknown tool: <name>` on `aios` (docs/aios-contract.md §2.7).

Called by `aios registry serve` (reconciler.cli.registry), tests and bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from contract._gen import changes_pb2_grpc, tools_pb2, tools_pb2_grpc
from contract.sockets import (
    is_loopback,
    prepare_unix_socket,
    private_umask,
    seal_unix_socket,
    unix_path,
)
from registry.server.audit import AuditLog
from registry.server.backups import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, BackupStore
from registry.server.capabilities import Capabilities
from registry.server.changefeed import SERVICE as FEED_SERVICE
from registry.server.changefeed import ChangeFeedServicer, default_watchers
from registry.server.execution import Settings
from registry.server.external import to_definition
from registry.server.pipeline import Pipeline, Request, UnknownTool
from registry.server.profiles import get_profile
from registry.server.rollback import RollbackIOError
from registry.server.toolset import ToolSet

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "unix:///run/aios/tools.sock"
DEFAULT_STATE_DIR = Path("/var/lib/aios/registry")
SERVICE = "aios.tools.ToolRegistry"
GRACE_S = 5.0
Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class ServeOptions:
    listen: str = DEFAULT_LISTEN
    netns: str | None = None
    root: Path = Path("/")
    state_dir: Path = DEFAULT_STATE_DIR
    profile: str = "full"
    agents_file: Path | None = None
    plugin_dir: Path | None = None  # default <state_dir>/plugins
    max_backups: int = DEFAULT_MAX_ENTRIES
    max_backup_bytes: int = DEFAULT_MAX_BYTES
    runtime: str | None = None  # the AI runtime model.load/unload/loaded forward to


def tcp_warning(listen: str) -> str | None:
    """What a TCP listener exposes (None for a unix socket): there is no authentication."""
    if unix_path(listen) is not None:
        return None
    if is_loopback(listen.rsplit(":", 1)[0]):
        return (
            f"listening on TCP {listen}: every local user can connect and claim any agent_id "
            "(aios-reconciler included), so capability checks stop no one on this machine; "
            "prefer the default unix socket (mode 0600)"
        )
    return (
        f"listening on TCP {listen}, reachable from other machines: anyone who reaches it can "
        "claim any agent_id and run every tool as this registry's user (no authentication, "
        "no TLS); prefer the default unix socket (mode 0600)"
    )


class Servicer(tools_pb2_grpc.ToolRegistryServicer):
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.toolset = pipeline.toolset

    async def ListTools(
        self, request: tools_pb2.ListToolsRequest, context: Context
    ) -> tools_pb2.ListToolsResponse:
        entries = self.toolset.list(request.namespace)
        return tools_pb2.ListToolsResponse(
            tools=[to_definition(e.spec, e.namespace) for e in entries]
        )

    async def GetTool(
        self, request: tools_pb2.GetToolRequest, context: Context
    ) -> tools_pb2.ToolDefinition:
        entry = self.toolset.get(request.name)
        if entry is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Tool not found: {request.name}")
        return to_definition(entry.spec, entry.namespace)

    async def Execute(
        self, request: tools_pb2.ExecuteRequest, context: Context
    ) -> tools_pb2.ExecuteResponse:
        call = Request(
            tool=request.tool_name,
            agent_id=request.agent_id,
            task_id=request.task_id,
            input_json=request.input_json,
            reason=request.reason,
        )
        try:
            outcome = await self.pipeline.execute(call)
        except UnknownTool as exc:
            if self.pipeline.profile.unknown_tool_internal:
                await context.abort(
                    grpc.StatusCode.INTERNAL, f"Execution failed: Unknown tool: {exc.name}"
                )
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Tool not found: {exc.name}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in the pipeline: answer, log, keep serving
            log.exception("Execute %s failed inside the registry", request.tool_name)
            return tools_pb2.ExecuteResponse(
                success=False, error=f"Internal error in registry: {type(exc).__name__}: {exc}"
            )
        return tools_pb2.ExecuteResponse(
            success=outcome.success,
            output_json=outcome.output_json,
            error=outcome.error,
            execution_id=outcome.execution_id,
            duration_ms=outcome.duration_ms,
            backup_id=outcome.backup_id,
        )

    async def Rollback(
        self, request: tools_pb2.RollbackRequest, context: Context
    ) -> tools_pb2.RollbackResponse:
        try:
            ok, error = await self.pipeline.rollback(request.execution_id, request.reason)
        except RollbackIOError as exc:
            await context.abort(grpc.StatusCode.INTERNAL, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("Rollback %s failed inside the registry", request.execution_id)
            return tools_pb2.RollbackResponse(
                success=False, error=f"Internal error in registry: {type(exc).__name__}: {exc}"
            )
        return tools_pb2.RollbackResponse(success=ok, error=error)

    async def Register(
        self, request: tools_pb2.RegisterToolRequest, context: Context
    ) -> tools_pb2.RegisterToolResponse:
        if not request.HasField("tool"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Missing tool definition")
        error = self.toolset.register(request.tool, request.handler_address)
        if error:
            log.info("Register %s refused: %s", request.tool.name, error)
        return tools_pb2.RegisterToolResponse(accepted=not error, error=error)

    async def Deregister(
        self, request: tools_pb2.DeregisterToolRequest, context: Context
    ) -> tools_pb2.Status:
        ok, message = self.toolset.deregister(request.tool_name)
        return tools_pb2.Status(success=ok, message=message)


def build_pipeline(options: ServeOptions) -> Pipeline:
    profile = get_profile(options.profile)
    state = options.state_dir
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o700)
    toolset = ToolSet(profile, plugin_dir=options.plugin_dir or state / "plugins", state_dir=state)
    return Pipeline(
        toolset=toolset,
        capabilities=Capabilities.for_profile(profile.name, options.agents_file),
        audit=AuditLog(state),
        backups=BackupStore(
            state / "backups",
            max_entries=options.max_backups,
            max_bytes=options.max_backup_bytes,
        ),
        settings=Settings(
            root=options.root,
            state_dir=state,
            netns=options.netns,
            options={"runtime": options.runtime} if options.runtime else {},
        ),
    )


class RegistryServer:
    """One running registry; `start` returns the address clients should dial."""

    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.pipeline = build_pipeline(options)
        self.health = health.aio.HealthServicer()
        self.server = grpc.aio.server()
        tools_pb2_grpc.add_ToolRegistryServicer_to_server(Servicer(self.pipeline), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        # The change feed is ours: on `aios` (aiOS's registry as it is) it stays UNIMPLEMENTED.
        self.feed: ChangeFeedServicer | None = None
        if options.profile == "full":
            root, netns = options.root, options.netns
            self.feed = ChangeFeedServicer(lambda: default_watchers(root, netns))
            changes_pb2_grpc.add_ChangeFeedServicer_to_server(self.feed, self.server)
        self.address = ""

    def _bind(self) -> str:
        path = unix_path(self.options.listen)
        if path is None:
            port = self.server.add_insecure_port(self.options.listen)
            if port == 0:
                raise OSError(f"cannot listen on {self.options.listen}")
            host = self.options.listen.rsplit(":", 1)[0]
            return f"{host}:{port}"
        prepare_unix_socket(path, "registry")
        with private_umask():
            if self.server.add_insecure_port(f"unix:{path}") == 0:
                raise OSError(f"cannot listen on unix socket {path}")
        seal_unix_socket(path)
        return f"unix://{path}"

    async def start(self) -> str:
        self.address = self._bind()
        warning = tcp_warning(self.options.listen)
        if warning:
            log.warning("%s", warning)
        await self.server.start()
        for name in ("", SERVICE, *([FEED_SERVICE] if self.feed is not None else [])):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "registry serving on %s (profile %s, root %s, state %s%s)",
            self.address,
            self.options.profile,
            self.options.root,
            self.options.state_dir,
            f", netns {self.options.netns}" if self.options.netns else "",
        )
        return self.address

    async def stop(self, grace: float | None = GRACE_S) -> None:
        with contextlib.suppress(Exception):
            await self.health.enter_graceful_shutdown()
        if self.feed is not None:  # its streams never end by themselves: end them now
            self.feed.close()
        await self.server.stop(grace)
        await self.pipeline.close()
        path = unix_path(self.options.listen)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


async def serve(options: ServeOptions) -> None:
    """Run a registry until SIGTERM/SIGINT."""
    server = RegistryServer(options)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("registry shutting down")
    await server.stop()
