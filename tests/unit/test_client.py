"""RegistryClient against a real in-process gRPC server that answers from a
script: error mapping (gRPC codes and tool errors alike), retries only for
idempotent tools, deadlines from timeout_ms, and progress polling."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from contract._gen import tools_pb2, tools_pb2_grpc
from reconciler.client import RegistryClient
from reconciler.sdk.errors import (
    RateLimited,
    RegistryUnavailable,
    ToolFailed,
    ToolNotFound,
    ToolRejected,
)

T = "t.read"
Step = tools_pb2.ExecuteResponse | tuple[grpc.StatusCode, str] | float


def tool(name: str, *, idempotent: bool, timeout_ms: int = 1000) -> tools_pb2.ToolDefinition:
    return tools_pb2.ToolDefinition(
        name=name, namespace=name.split(".")[0], idempotent=idempotent, timeout_ms=timeout_ms,
        input_schema=b'{"type":"object"}', risk_level="low",
    )  # fmt: skip


class Scripted(tools_pb2_grpc.ToolRegistryServicer):
    def __init__(self) -> None:
        self.tools = [
            tool("t.read", idempotent=True),
            tool("t.write", idempotent=False),
            tool("t.slow", idempotent=True, timeout_ms=2000),
            tool("registry.jobs", idempotent=True),
        ]
        self.script: dict[str, list[Step]] = {}
        self.calls: list[tuple[str, float | None]] = []

    async def ListTools(self, request: Any, context: Any) -> tools_pb2.ListToolsResponse:
        return tools_pb2.ListToolsResponse(tools=self.tools)

    async def Execute(self, request: Any, context: Any) -> tools_pb2.ExecuteResponse:
        self.calls.append((request.tool_name, context.time_remaining()))
        if request.tool_name == "registry.jobs":
            job = (
                b'{"jobs":[{"execution_id":"e","tool":"t.slow","agent_id":"aios-reconciler",'
                b'"task_id":"","started":"","elapsed_ms":1,'
                b'"progress":{"done":3,"total":10,"message":"downloading"}}]}'
            )
            return tools_pb2.ExecuteResponse(success=True, output_json=job)
        steps = self.script.get(request.tool_name, [])
        step = steps.pop(0) if steps else tools_pb2.ExecuteResponse(success=True, output_json=b"{}")
        if isinstance(step, float):
            await asyncio.sleep(step)
            return tools_pb2.ExecuteResponse(success=True, output_json=b'{"slow":true}')
        if isinstance(step, tuple):
            await context.abort(*step)
        assert isinstance(step, tools_pb2.ExecuteResponse)
        return step

    async def Rollback(self, request: Any, context: Any) -> tools_pb2.RollbackResponse:
        if request.execution_id == "ok":
            return tools_pb2.RollbackResponse(success=True)
        return tools_pb2.RollbackResponse(success=False, error="")


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[Scripted, str]]:
    servicer = Scripted()
    server = grpc.aio.server()
    tools_pb2_grpc.add_ToolRegistryServicer_to_server(servicer, server)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="aios-client-") as d:
        address = f"unix://{d}/s.sock"
        server.add_insecure_port(address)
        await server.start()
        try:
            yield servicer, address
        finally:
            await server.stop(None)


def fail(error: str, eid: str = "e1") -> tools_pb2.ExecuteResponse:
    return tools_pb2.ExecuteResponse(success=False, error=error, execution_id=eid)


@pytest.mark.parametrize(
    ("step", "error", "text"),
    [
        ((grpc.StatusCode.NOT_FOUND, "Tool not found: t.read"), ToolNotFound, "Tool not found"),
        ((grpc.StatusCode.INTERNAL, f"Execution failed: Unknown tool: {T}"), ToolNotFound, "Unkn"),
        ((grpc.StatusCode.INTERNAL, "Rollback failed: disk"), ToolFailed, "INTERNAL"),
        ((grpc.StatusCode.UNAVAILABLE, "gone"), RegistryUnavailable, "UNAVAILABLE"),
        (fail("Invalid input: $.x: 1 is not of type 'string'"), ToolRejected, "$.x"),
        (fail('Capability denied: missing ["fs_write"]'), ToolRejected, "fs_write"),
        (fail("Invalid JSON input"), ToolRejected, "Invalid JSON input"),
        (fail("fs.read: missing required field 'path'"), ToolRejected, "path"),
        (fail("Timed out after 5000 ms; restored"), ToolFailed, "Timed out"),
        (fail("nft: syntax error"), ToolFailed, "syntax"),
        (tools_pb2.ExecuteResponse(success=True, output_json=b"\xff"), ToolFailed, "not JSON"),
    ],
)  # fmt: skip
async def test_error_mapping(
    scripted: tuple[Scripted, str], step: Step, error: type[Exception], text: str
) -> None:
    servicer, address = scripted
    servicer.script["t.write"] = [step]
    async with RegistryClient(address) as client:
        with pytest.raises(error, match=text.replace("$", r"\$")) as caught:
            await client.call("t.write", {}, reason="test")
    if isinstance(caught.value, ToolFailed) and isinstance(step, tools_pb2.ExecuteResponse):
        assert caught.value.execution_id == step.execution_id


async def test_rate_limit_retried_only_for_idempotent_tools(scripted: tuple[Scripted, str]) -> None:
    servicer, address = scripted
    limited = fail("Rate limit exceeded")
    servicer.script["t.read"] = [limited, limited]
    servicer.script["t.write"] = [limited, limited]
    async with RegistryClient(address, backoff_s=0.01) as client:
        result = await client.call("t.read", {}, reason="r")
        assert result.output == {}
        assert [c[0] for c in servicer.calls].count("t.read") == 3
        with pytest.raises(RateLimited) as caught:
            await client.call("t.write", {}, reason="w")
        assert caught.value.delay == pytest.approx(0.2)
        assert [c[0] for c in servicer.calls].count("t.write") == 1
        servicer.script["t.unknown"] = [fail("Rate limit exceeded")]
        with pytest.raises(RateLimited):  # not in the catalogue: not idempotent
            await client.call("t.unknown", {}, reason="u")
        servicer.script["t.read"] = [limited, limited, limited]
        with pytest.raises(RateLimited):  # bounded: three attempts
            await client.call("t.read", {}, reason="r")


async def test_unreachable_registry_is_temporary() -> None:
    with tempfile.TemporaryDirectory() as d:
        async with RegistryClient(f"unix://{d}/none.sock", attempts=1) as client:
            with pytest.raises(RegistryUnavailable):
                await client.call("t.read", {}, reason="r", timeout=1)
            assert not await client.health(deadline_s=0.5)


async def test_deadline_covers_the_tool_timeout(scripted: tuple[Scripted, str]) -> None:
    servicer, address = scripted
    async with RegistryClient(address, margin_s=3) as client:
        await client.call("t.slow", {}, reason="r")
        await client.call("t.read", {}, reason="r", timeout=30)
    remaining = dict(servicer.calls)
    assert remaining["t.slow"] is not None and 3.0 < remaining["t.slow"] <= 5.2
    assert remaining["t.read"] is not None and 25 < remaining["t.read"] <= 30.2


async def test_progress_is_polled(scripted: tuple[Scripted, str]) -> None:
    servicer, address = scripted
    servicer.script["t.slow"] = [0.7]
    seen: list[tuple[int, int, str]] = []
    async with RegistryClient(address, poll_interval_s=0.1) as client:
        result = await client.call("t.slow", {}, reason="r", on_progress=lambda *p: seen.append(p))
    assert result.output == {"slow": True}
    assert seen and seen[0] == (3, 10, "downloading")


async def test_rollback_and_catalogue(scripted: tuple[Scripted, str]) -> None:
    _servicer, address = scripted
    async with RegistryClient(address) as client:
        await client.rollback("ok", "r")
        with pytest.raises(ToolFailed, match="refused"):
            await client.rollback("no", "r")
        specs = await client.list_tools()
        assert specs["t.read"].idempotent and specs["t.read"].input_schema == {"type": "object"}
        assert specs["t.write"].output_schema == {}


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, reconciler.client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('registry', 'contract')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the client needs the wire stubs and ToolSpec, nothing of the registry server
    assert out.stdout.strip().startswith("['contract', 'contract._gen'"), out.stdout
    assert "registry" not in out.stdout.replace("'contract", ""), out.stdout


async def test_a_call_that_never_reached_the_registry_says_so(
    scripted: tuple[Scripted, str],
) -> None:
    with tempfile.TemporaryDirectory() as d:
        async with RegistryClient(f"unix://{d}/none.sock", attempts=1) as client:
            with pytest.raises(RegistryUnavailable) as caught:
                await client.call("t.write", {}, reason="w", timeout=1)
    assert caught.value.before_run, "no connection: nothing ran, sending it again is safe"
    servicer, address = scripted
    servicer.script["t.write"] = [
        (grpc.StatusCode.UNAVAILABLE, "gone"),
        fail("Rate limit exceeded"),
    ]
    async with RegistryClient(address, attempts=1) as client:
        with pytest.raises(RegistryUnavailable) as gone:
            await client.call("t.write", {}, reason="w")
        assert not gone.value.before_run, "the server answered UNAVAILABLE: it may have run"
        with pytest.raises(RateLimited) as limited:
            await client.call("t.write", {}, reason="w")
        assert limited.value.before_run and limited.value.retried == 0
