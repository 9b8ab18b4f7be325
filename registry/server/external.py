"""Tools served elsewhere: Register with handler_address, and definitions as protos.

A `ToolDefinition` registered with a `handler_address` becomes an
`ExternalTool`: our pipeline still validates the input against the
registered input_schema, checks capabilities, serializes writes per
namespace, enforces the timeout, validates output_schema and audits; the run
itself is a `aios.tools.ToolRegistry/Execute` on the handler's address (a
grpc.aio channel per address, deadline = timeout_ms). The handler's
`success=false` error comes back verbatim; a transport failure names the
address and the gRPC status.

Also the two conversions the server needs: ToolSpec -> ToolDefinition
(ListTools/GetTool) and ToolDefinition -> ToolSpec (Register).

Called by registry.server.grpc and registry.server.toolset.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, cast

import grpc
import jsonschema

from contract._gen import tools_pb2, tools_pb2_grpc
from contract.tooldef import JSON, RISKS, ToolSpec
from registry.core.errors import ToolError
from registry.core.tool import Tool, ToolContext


def to_definition(spec: ToolSpec, namespace: str | None = None) -> tools_pb2.ToolDefinition:
    return tools_pb2.ToolDefinition(
        name=spec.name,
        namespace=namespace if namespace is not None else spec.namespace,
        version=spec.version,
        description=spec.description,
        input_schema=spec.schema_bytes("input"),
        output_schema=spec.schema_bytes("output"),
        required_capabilities=list(spec.capabilities),
        risk_level=spec.risk,
        requires_confirmation=spec.requires_confirmation,
        idempotent=spec.idempotent,
        reversible=spec.reversible,
        timeout_ms=spec.timeout_ms,
        rollback_tool=spec.rollback_tool,
    )


def _schema(raw: bytes, which: str, *, strict: bool) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        schema = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        if not strict:
            return {}
        raise ValueError(f"{which}_schema is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        if not strict:
            return {}
        raise ValueError(f"{which}_schema must be a JSON object")
    if strict:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"{which}_schema is not a valid JSON Schema: {exc.message}") from None
    return schema


def from_definition(definition: tools_pb2.ToolDefinition, *, strict: bool = True) -> ToolSpec:
    """A ToolSpec from a registered definition; ValueError names what is wrong (strict)."""
    if strict:
        if "." not in definition.name or definition.name.startswith("."):
            raise ValueError(f"tool name {definition.name!r} must be <namespace>.<name>")
        if definition.risk_level not in RISKS:
            raise ValueError(f"risk_level {definition.risk_level!r} is not one of {RISKS}")
        if definition.timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
    return ToolSpec(
        name=definition.name,
        description=definition.description,
        input_schema=_schema(definition.input_schema, "input", strict=strict),
        output_schema=_schema(definition.output_schema, "output", strict=strict),
        risk=cast(Any, definition.risk_level),
        idempotent=definition.idempotent,
        reversible=False,  # we keep no before-image of what a remote handler changes
        timeout_ms=definition.timeout_ms or 30_000,
        capabilities=tuple(definition.required_capabilities),
        rollback_tool=definition.rollback_tool,
        version=definition.version or "1.0.0",
    )


class Channels:
    """One grpc.aio channel per handler address, closed with the server."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}

    def get(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(address)
        return channel

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


class ExternalTool(Tool):
    """Base of the per-registration classes; `address` is the handler's."""

    address: ClassVar[str]

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        channels: Channels = ctx.options["channels"]
        request: dict[str, str] = ctx.options.get("request", {})
        stub = tools_pb2_grpc.ToolRegistryStub(channels.get(self.address))
        message = tools_pb2.ExecuteRequest(
            tool_name=self.spec.name,
            agent_id=request.get("agent_id", ""),
            task_id=request.get("task_id", ""),
            input_json=json.dumps(args, separators=(",", ":")).encode(),
            reason=request.get("reason", ""),
        )
        try:
            response = await stub.Execute(message, timeout=self.spec.timeout_ms / 1000)
        except grpc.aio.AioRpcError as exc:
            raise ToolError(
                f"external handler at {self.address} failed: {exc.code().name}: {exc.details()}"
            ) from None
        if not response.success:
            raise ToolError(response.error or f"external handler at {self.address} failed")
        try:
            output = json.loads(response.output_json or b"{}")
        except (ValueError, UnicodeDecodeError):
            output = None
        if not isinstance(output, dict):
            raise ToolError(f"external handler at {self.address} returned no JSON object")
        return output


def external_class(spec: ToolSpec, address: str) -> type[ExternalTool]:
    return type(f"External_{spec.name}", (ExternalTool,), {"spec": spec, "address": address})
