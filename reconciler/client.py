"""The registry client: typed async calls to aios.tools.ToolRegistry, errors mapped.

`RegistryClient(address, agent_id=..., task_id=...)` talks to our registry or
a real aiOS one. Its public API has no proto types: `list_tools` returns
ToolSpecs (contract.tooldef), `call` returns a ToolResult with the parsed
output, `rollback` returns None or raises, `health` says whether the server
answers the standard health check with SERVING.

Error mapping (reconciler.sdk.errors), the same for both registries:
  NOT_FOUND, or INTERNAL with "Unknown tool"            -> ToolNotFound
  UNAVAILABLE, DEADLINE_EXCEEDED, transport failures    -> RegistryUnavailable
  success=false "Rate limit exceeded"                   -> RateLimited (delay 0.2 s, before_run)
  success=false "Invalid input:", "Capability denied:",
    "Invalid JSON input", "fs.<op>: missing required field"/"invalid JSON input"
                                                        -> ToolRejected
  any other success=false, undecodable output, other gRPC codes -> ToolFailed
  UNAVAILABLE "failed to connect to all addresses"     -> RegistryUnavailable, before_run
Temporary errors are retried (reconciler.sdk.retry: bounded, max(delay,
exponential backoff)) `attempts - 1` times, only for tools the catalogue marks
idempotent; an unknown tool counts as not idempotent. The engine's client is
made with attempts=1 (reconciler.cli.common): the engine retries its own calls
(Engine.retry), so no call is retried by both. Each call's deadline is at
least the tool's timeout_ms plus a margin.

Only this module and registry/ import contract._gen; importing it pulls in
grpc and contract.tooldef, nothing heavier. It is the engine's
reconciler.sdk.ports.Registry (the CLI's composition root, reconciler.cli.common,
hands it to the engine; controllers reach it only through the engine's
read-only reader); also used by `aios registry` and bench/. `changes(domains)` is the
reconciler.sdk.ports.ChangeSource over the registry's change feed
(aios.changes.ChangeFeed, ours only): UNIMPLEMENTED (aiOS's registry) and a lost stream
are FeedUnavailable, an unknown domain ToolRejected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import grpc

from contract._gen import changes_pb2, changes_pb2_grpc, tools_pb2, tools_pb2_grpc
from contract.tooldef import ToolSpec
from reconciler.sdk.errors import (
    AiosError,
    FeedUnavailable,
    RateLimited,
    RegistryUnavailable,
    ToolFailed,
    ToolNotFound,
    ToolRejected,
)
from reconciler.sdk.ports import Change
from reconciler.sdk.retry import Retry

if TYPE_CHECKING:
    from reconciler.sdk.ports import ChangeSource, Registry

DEFAULT_ADDRESS = "localhost:50052"
DEFAULT_AGENT = "aios-reconciler"
JOBS_TOOL = "registry.jobs"
_REJECTED = re.compile(
    r"^(Invalid input:|Capability denied:|Invalid JSON input|"
    r"fs\.\w+: (missing required field|invalid JSON input))"
)
_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
_NEVER_SENT = "failed to connect to all addresses"  # gRPC core: no connection, nothing sent
ProgressCallback = Callable[[int, int, str], None]  # done, total, message


@dataclass(frozen=True)
class ToolResult:
    output: Any  # the parsed output JSON
    execution_id: str
    duration_ms: int
    backup_id: str


def default_address() -> str:
    return os.environ.get("AIOS_TOOLS_ADDR") or DEFAULT_ADDRESS


def spec_from_definition(d: tools_pb2.ToolDefinition) -> ToolSpec:
    def schema(raw: bytes) -> dict[str, Any]:
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return {}
        return value if isinstance(value, dict) else {}

    return ToolSpec(
        name=d.name,
        description=d.description,
        input_schema=schema(d.input_schema),
        output_schema=schema(d.output_schema),
        risk=cast(Any, d.risk_level),
        idempotent=d.idempotent,
        reversible=d.reversible,
        timeout_ms=d.timeout_ms,
        capabilities=tuple(d.required_capabilities),
        rollback_tool=d.rollback_tool,
        version=d.version,
    )


def map_rpc_error(exc: grpc.aio.AioRpcError, tool: str = "") -> AiosError:
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.NOT_FOUND or (
        code == grpc.StatusCode.INTERNAL and "Unknown tool" in details
    ):
        return ToolNotFound(details or f"Tool not found: {tool}")
    if code in _UNAVAILABLE:
        # A connection that never opened carried no call: sending it again is safe.
        never_sent = code == grpc.StatusCode.UNAVAILABLE and details.startswith(_NEVER_SENT)
        return RegistryUnavailable(
            f"registry unavailable ({code.name}): {details}", before_run=never_sent
        )
    return ToolFailed(f"registry error {code.name}: {details}")


def map_failure(error: str, execution_id: str) -> AiosError:
    if error == "Rate limit exceeded":
        return RateLimited(error, delay=0.2)
    if _REJECTED.match(error):
        return ToolRejected(error)
    return ToolFailed(error or "tool failed (no error text)", execution_id=execution_id)


class RegistryClient:
    def __init__(
        self,
        address: str | None = None,
        *,
        agent_id: str = DEFAULT_AGENT,
        task_id: str = "",
        attempts: int = 3,
        backoff_s: float = 0.2,
        margin_s: float = 5.0,
        default_timeout_s: float = 120.0,
        poll_interval_s: float = 0.5,
    ) -> None:
        self.address = address or default_address()
        self.agent_id = agent_id
        self.task_id = task_id
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.margin_s = margin_s
        self.default_timeout_s = default_timeout_s
        self.poll_interval_s = poll_interval_s
        self._channel = grpc.aio.insecure_channel(self.address)
        self._stub = tools_pb2_grpc.ToolRegistryStub(self._channel)
        self._feed = changes_pb2_grpc.ChangeFeedStub(self._channel)
        self._catalogue: dict[str, ToolSpec] | None = None

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    # -- catalogue --

    async def list_tools(self, namespace: str = "") -> dict[str, ToolSpec]:
        request = tools_pb2.ListToolsRequest(namespace=namespace)
        try:
            response = await self._stub.ListTools(request, timeout=30)
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(exc) from None
        listed = {d.name: spec_from_definition(d) for d in response.tools}
        if not namespace:
            self._catalogue = listed
        return dict(sorted(listed.items()))

    async def catalogue(self) -> dict[str, ToolSpec]:
        """The cached catalogue (fetched once); empty if the registry cannot list."""
        if self._catalogue is None:
            try:
                await self.list_tools()
            except AiosError:
                return {}
        return self._catalogue or {}

    # -- calls --

    async def call(
        self,
        tool: str,
        args: Mapping[str, Any],
        *,
        reason: str,
        timeout: float | None = None,  # noqa: ASYNC109 - the gRPC deadline, in seconds
        on_progress: ProgressCallback | None = None,
    ) -> ToolResult:
        catalogue = await self.catalogue()
        spec = catalogue.get(tool)
        if timeout is None:
            timeout = spec.timeout_ms / 1000 + self.margin_s if spec else self.default_timeout_s
        idempotent = spec is not None and spec.idempotent
        poller = None
        if on_progress is not None and JOBS_TOOL in catalogue:
            poller = asyncio.create_task(self._poll_progress(tool, on_progress))
        try:
            return await self._call_with_retries(tool, args, reason, timeout, idempotent)
        finally:
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller

    async def _call_with_retries(
        self, tool: str, args: Mapping[str, Any], reason: str, deadline: float, idempotent: bool
    ) -> ToolResult:
        retry = Retry(retries=self.attempts - 1, backoff_s=self.backoff_s)
        return await retry.run(
            lambda: self._call_once(tool, args, reason, deadline),
            safe=lambda _error: idempotent,
            say=False,
        )

    async def _call_once(
        self, tool: str, args: Mapping[str, Any], reason: str, deadline: float
    ) -> ToolResult:
        request = tools_pb2.ExecuteRequest(
            tool_name=tool,
            agent_id=self.agent_id,
            task_id=self.task_id,
            input_json=json.dumps(dict(args), separators=(",", ":")).encode(),
            reason=reason,
        )
        try:
            response = await self._stub.Execute(request, timeout=deadline)
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(exc, tool) from None
        if not response.success:
            raise map_failure(response.error, response.execution_id)
        try:
            output = json.loads(response.output_json) if response.output_json else {}
        except (ValueError, UnicodeDecodeError):
            raise ToolFailed(
                f"{tool} returned output that is not JSON: {response.output_json[:200]!r}",
                execution_id=response.execution_id,
            ) from None
        return ToolResult(
            output=output,
            execution_id=response.execution_id,
            duration_ms=response.duration_ms,
            backup_id=response.backup_id,
        )

    async def _poll_progress(self, tool: str, callback: ProgressCallback) -> None:
        """Report the progress of our running `tool` call every poll interval."""
        while True:
            await asyncio.sleep(self.poll_interval_s)
            with contextlib.suppress(AiosError):
                result = await self._call_once(JOBS_TOOL, {"task_id": self.task_id}, "progress", 5)
                for job in result.output.get("jobs", []):
                    if job.get("tool") == tool and job.get("agent_id") == self.agent_id:
                        p = job.get("progress", {})
                        callback(
                            int(p.get("done", 0)), int(p.get("total", 0)), p.get("message", "")
                        )
                        break

    async def rollback(self, execution_id: str, reason: str) -> None:
        request = tools_pb2.RollbackRequest(execution_id=execution_id, reason=reason)
        try:
            response = await self._stub.Rollback(request, timeout=self.default_timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise map_rpc_error(exc) from None
        if not response.success:
            raise ToolFailed(
                response.error or f"rollback of {execution_id} was refused (no reason given)",
                execution_id=execution_id,
            )

    # -- the change feed --

    async def changes(self, domains: Sequence[str] = ()) -> AsyncIterator[Change]:
        """The registry's change feed (aios.changes.ChangeFeed/Watch) for `domains`
        (empty: all): a resync per domain first, then every change as it comes.

        Ends only with FeedUnavailable: UNIMPLEMENTED (aiOS's registry, our
        `aios` profile: poll instead) or the stream lost (resubscribe: the feed
        starts with resyncs again). An unknown domain is ToolRejected."""
        request = changes_pb2.WatchRequest(domains=list(domains), agent_id=self.agent_id)
        call = self._feed.Watch(request)
        try:
            async for message in call:
                yield Change(
                    domain=message.domain,
                    source=message.source,
                    detail=message.detail,
                    time_ms=message.time_ms,
                    resync=message.resync,
                )
        except grpc.aio.AioRpcError as exc:
            raise self._feed_error(exc) from None
        finally:
            call.cancel()
        raise FeedUnavailable(f"registry at {self.address} ended its change feed: resubscribe")

    def _feed_error(self, exc: grpc.aio.AioRpcError) -> AiosError:
        code, details = exc.code(), exc.details() or ""
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return FeedUnavailable(
                f"registry at {self.address} has no change feed (aiOS's own registry): polling",
                unimplemented=True,
            )
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return ToolRejected(f"change feed refused the request: {details}")
        return FeedUnavailable(
            f"change feed of the registry at {self.address} lost ({code.name}): {details}"
        )

    async def health(self, deadline_s: float = 5.0) -> bool:
        """True when the standard health service answers SERVING."""
        from grpc_health.v1 import health_pb2

        check = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            response = await check(health_pb2.HealthCheckRequest(service=""), timeout=deadline_s)
        except grpc.aio.AioRpcError:
            return False
        return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


if TYPE_CHECKING:  # mypy proves the client is the engine's registry port

    def _is_a_registry_port(client: RegistryClient) -> Registry:
        return client

    def _is_a_change_source(client: RegistryClient) -> ChangeSource:
        return client
