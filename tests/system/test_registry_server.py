"""The registry over a real unix socket: pipeline behaviours end to end.

Schema rejection for every tool in the catalogue (built from each tool's own
schema, so new tools are covered automatically), capability denial, unknown
tool codes per profile, timeouts that kill the process group, reads that
overlap and writes that never do, Register/Deregister rules, and the audit
chain of a live server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from registry_support import running_registry, write_plugin

from contract._gen import tools_pb2, tools_pb2_grpc
from contract.tooldef import JSON, ToolSpec, obj_schema
from registry.core.tool import Tool, ToolContext
from registry.server import audit
from registry.server.profiles import Entry


async def execute(address: str, tool: str, args: Any, agent: str = "aios-reconciler") -> Any:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = tools_pb2_grpc.ToolRegistryStub(channel)
        raw = args if isinstance(args, bytes) else json.dumps(args).encode()
        request = tools_pb2.ExecuteRequest(
            tool_name=tool, agent_id=agent, task_id="test", input_json=raw, reason="test"
        )
        return await stub.Execute(request, timeout=60)


JSON_PATH_ERROR = re.compile(r"^Invalid input: (?P<path>\$(?:\.\w+|\[\d+\])*): \S")


def wrong_value(schema: JSON) -> Any:
    """A value of a type the property schema does not allow."""
    kinds = schema.get("type")
    return 12345 if kinds == "string" or (isinstance(kinds, list) and "string" in kinds) else [[[]]]


def wrong_input(spec_schema: JSON) -> tuple[JSON, str]:
    """(input, expected JSON path prefix) for a tool's input schema."""
    props = spec_schema.get("properties", {})
    required = spec_schema.get("required", [])
    if required:
        return {name: wrong_value(props.get(name, {})) for name in required}, "$."
    return {"__aios_not_a_field__": 1}, "$"


async def test_socket_mode_health_and_catalogue(tmp_path: Path) -> None:
    async with running_registry(tmp_path) as (_server, address):
        mode = os.stat(address.removeprefix("unix://")).st_mode
        assert stat.S_ISSOCK(mode) and mode & 0o777 == 0o600
        from reconciler.client import RegistryClient

        async with RegistryClient(address) as client:
            assert await client.health()
            tools = await client.list_tools()
            assert "fs.write" in tools and "registry.jobs" in tools
            assert list(tools) == sorted(tools)
            fs_only = await client.list_tools("fs")
            assert set(fs_only) == {n for n in tools if n.startswith("fs.")}


async def test_schema_rejection_for_every_tool(tmp_path: Path) -> None:
    async with running_registry(tmp_path) as (server, address):
        checked = []
        for entry in server.pipeline.toolset.list():
            schema = dict(entry.spec.input_schema)
            if not schema:
                continue
            args, path = wrong_input(schema)
            if path == "$" and schema.get("additionalProperties", True) is not False:
                continue  # an open schema without required keys accepts anything
            response = await execute(address, entry.spec.name, args)
            assert not response.success, entry.spec.name
            match = JSON_PATH_ERROR.match(response.error)
            assert match, (entry.spec.name, response.error)
            if match["path"] != "$":  # a wrong-typed required property, named by its path
                assert match["path"].startswith(path), (entry.spec.name, response.error)
                prop = match["path"].removeprefix("$.").split("[")[0].split(".")[0]
                assert prop in schema["required"], (entry.spec.name, response.error)
            checked.append(entry.spec.name)
        assert len(checked) >= 13, checked
        garbage = await execute(address, "fs.read", b"{not json")
        assert garbage.error.startswith("Invalid input: not a JSON object: ")
        listed = await execute(address, "fs.read", b"[1, 2]")
        assert listed.error == "Invalid input: not a JSON object: got list"
        nested = await execute(address, "fs.chmod", {"path": "/x", "mode": "999"})
        assert nested.error.startswith("Invalid input: $.mode: '999' does not match")


async def test_capability_denial_is_audited(tmp_path: Path) -> None:
    async with running_registry(tmp_path) as (_server, address):
        denied = await execute(address, "fs.write", {"path": "/a", "content": "x"}, "nobody")
        assert not denied.success
        assert denied.error == 'Capability denied: missing ["fs_write"]'
        assert not (tmp_path / "root/a").exists()
        reader = await execute(address, "fs.write", {"path": "/a", "content": "x"}, "web-agent")
        assert reader.success  # an aiOS agent with fs_write keeps working on full
    rows = audit.rows(tmp_path / "state")
    assert [(r["agent"], r["success"]) for r in rows] == [("nobody", 0), ("web-agent", 1)]
    assert rows[0]["execution_id"] == denied.execution_id
    assert audit.verify(tmp_path / "state").ok


@pytest.mark.parametrize("profile", ["full", "aios"])
async def test_unknown_tool_codes(tmp_path: Path, profile: str) -> None:
    async with running_registry(tmp_path, profile=profile) as (_server, address):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await execute(address, "no.such_tool", {}, "task-agent")
        if profile == "full":
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert err.value.details() == "Tool not found: no.such_tool"
        else:
            assert err.value.code() == grpc.StatusCode.INTERNAL
            assert err.value.details() == "Execution failed: Unknown tool: no.such_tool"
        async with grpc.aio.insecure_channel(address) as channel:
            stub = tools_pb2_grpc.ToolRegistryStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetTool(tools_pb2.GetToolRequest(name="no.such_tool"))
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert err.value.details() == "Tool not found: no.such_tool"
    assert audit.rows(tmp_path / "state") == []  # unknown tools are not audited


HANG = """
import json, os, subprocess, sys
args = json.load(sys.stdin)
child = subprocess.Popen(["sleep", "300"])
with open(args["pidfile"], "w") as f:
    json.dump({"pgid": os.getpgid(0), "child": child.pid}, f)
sys.stdout.write("")
while True:
    pass
"""


def live_in_group(pgid: int) -> list[int]:
    pids = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat_file.parent.name))
    return pids


def wait_group_gone(pgid: int) -> list[int]:
    """Live members of the group after the kernel had a moment to reap."""
    for _ in range(100):
        if not live_in_group(pgid):
            break
        time.sleep(0.05)
    return live_in_group(pgid)


async def test_hanging_plugin_times_out_and_its_group_is_gone(tmp_path: Path) -> None:
    write_plugin(tmp_path / "plugins", "hang", HANG, timeout_ms=3000)
    pidfile = tmp_path / "hang.json"
    async with running_registry(tmp_path) as (_server, address):
        start = time.monotonic()
        response = await execute(address, "plugin.hang", {"pidfile": str(pidfile)})
        elapsed = time.monotonic() - start
    assert not response.success
    assert (
        response.error == "Timed out after 3000 ms; not restored: plugin.hang keeps no before-image"
    )
    assert 2.9 < elapsed < 15
    info = json.loads(pidfile.read_text())
    assert wait_group_gone(info["pgid"]) == [], "the plugin's process group survived"


class SlowWrite(Tool):
    """Test double: a reversible write that changes its file, then hangs."""

    spec = ToolSpec(
        name="test.slow_write",
        description="writes, then hangs",
        input_schema=obj_schema({"path": {"type": "string"}}, ("path",)),
        output_schema={},
        risk="low",
        idempotent=False,
        reversible=True,
        timeout_ms=500,
        capabilities=("fs_write",),
    )

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        return {"path": args["path"], "content": ctx.path(args["path"]).read_text()}

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        ctx.path(snapshot["path"]).write_text(snapshot["content"])

    def touches(self, args: JSON) -> tuple[str, ...]:
        return (f"file:{args['path']}",)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        ctx.path(args["path"]).write_text("half-written")
        await ctx.runner.run(["sleep", "30"])
        return {}


async def test_timeout_restores_the_before_image(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root/f").write_text("original")
    async with running_registry(tmp_path) as (server, address):
        entries = server.pipeline.toolset._entries
        entries["test.slow_write"] = Entry(
            SlowWrite.spec, ("fs_write",), SlowWrite, False, True, "test"
        )
        response = await execute(address, "test.slow_write", {"path": "/f"})
        assert response.error == "Timed out after 500 ms; restored"
        assert (tmp_path / "root/f").read_text() == "original"
        async with grpc.aio.insecure_channel(address) as channel:
            stub = tools_pb2_grpc.ToolRegistryStub(channel)
            again = await stub.Rollback(
                tools_pb2.RollbackRequest(execution_id=response.execution_id, reason="t")
            )
        assert not again.success and again.error.endswith("was already rolled back")


class RecordingHandler(tools_pb2_grpc.ToolRegistryServicer):
    """An external handler that records when each call ran. A read waits (up to 5 s)
    until the other read has started too, so overlap is shown by a rendezvous, not
    by timing; a write sleeps 0.4 s, so two unserialized writes would overlap."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []
        self.reading: set[str] = set()
        self.both_reading = asyncio.Event()
        self.met: dict[str, bool] = {}

    async def Execute(  # gRPC method name
        self, request: tools_pb2.ExecuteRequest, context: Any
    ) -> tools_pb2.ExecuteResponse:
        start = time.monotonic()
        if ".read_" in request.tool_name:
            self.reading.add(request.tool_name)
            if len(self.reading) == 2:
                self.both_reading.set()
            try:
                await asyncio.wait_for(self.both_reading.wait(), 5)
                self.met[request.tool_name] = True
            except TimeoutError:
                self.met[request.tool_name] = False
        else:
            await asyncio.sleep(0.4)
        self.calls.append((request.tool_name, start, time.monotonic()))
        return tools_pb2.ExecuteResponse(success=True, output_json=b'{"ok":true}')


def definition(name: str, caps: list[str]) -> tools_pb2.ToolDefinition:
    schema = {"type": "object", "additionalProperties": False}
    out = {"type": "object", "properties": {"ok": {"const": True}}, "required": ["ok"]}
    return tools_pb2.ToolDefinition(
        name=name,
        namespace="slow",
        version="1.0.0",
        description="slow external tool",
        input_schema=json.dumps(schema).encode(),
        output_schema=json.dumps(out).encode(),
        required_capabilities=caps,
        risk_level="low",
        timeout_ms=5000,
    )


async def test_reads_overlap_writes_never_do(tmp_path: Path) -> None:
    handler = RecordingHandler()
    external = grpc.aio.server()
    tools_pb2_grpc.add_ToolRegistryServicer_to_server(handler, external)  # type: ignore[arg-type]
    port = external.add_insecure_port("127.0.0.1:0")
    await external.start()
    try:
        async with running_registry(tmp_path) as (_server, address):
            async with grpc.aio.insecure_channel(address) as channel:
                stub = tools_pb2_grpc.ToolRegistryStub(channel)
                for name, caps in (
                    ("slow.read_a", ["net_read"]),
                    ("slow.read_b", ["net_read"]),
                    ("slow.write_a", ["net_write"]),
                    ("slow.write_b", ["net_write"]),
                ):
                    reply = await stub.Register(
                        tools_pb2.RegisterToolRequest(
                            tool=definition(name, caps), handler_address=f"127.0.0.1:{port}"
                        )
                    )
                    assert reply.accepted, reply.error
                refused = await stub.Register(
                    tools_pb2.RegisterToolRequest(
                        tool=definition("fs.read", []), handler_address="127.0.0.1:1"
                    )
                )
                assert (refused.accepted, refused.error) == (
                    False,
                    "cannot replace built-in tool fs.read",
                )
            reads = await asyncio.gather(
                execute(address, "slow.read_a", {}), execute(address, "slow.read_b", {})
            )
            writes = await asyncio.gather(
                execute(address, "slow.write_a", {}), execute(address, "slow.write_b", {})
            )
            assert all(r.success for r in [*reads, *writes]), [r.error for r in reads + writes]
            bad = await execute(address, "slow.read_a", {"x": 1})
            assert bad.error.startswith("Invalid input: $: Additional properties")
    finally:
        await external.stop(None)
    spans = {name: (start, end) for name, start, end in handler.calls}
    assert handler.met == {"slow.read_a": True, "slow.read_b": True}, "reads were serialized"
    (c0, c1), (d0, d1) = spans["slow.write_a"], spans["slow.write_b"]
    assert c1 <= d0 or d1 <= c0, "two writes in one namespace overlapped"


async def test_registrations_survive_restart_and_builtins_stay(tmp_path: Path) -> None:
    async with (
        running_registry(tmp_path) as (_server, address),
        grpc.aio.insecure_channel(address) as channel,
    ):
        stub = tools_pb2_grpc.ToolRegistryStub(channel)
        reply = await stub.Register(
            tools_pb2.RegisterToolRequest(
                tool=definition("slow.x", ["net_read"]), handler_address="127.0.0.1:9"
            )
        )
        assert reply.accepted
        no_handler = await stub.Register(
            tools_pb2.RegisterToolRequest(tool=definition("slow.y", []))
        )
        assert not no_handler.accepted and "handler_address is required" in no_handler.error
        status = await stub.Deregister(tools_pb2.DeregisterToolRequest(tool_name="fs.read"))
        assert (status.success, status.message) == (
            False,
            "cannot deregister built-in tool fs.read",
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Register(tools_pb2.RegisterToolRequest())
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with (
        running_registry(tmp_path) as (_server, address),
        grpc.aio.insecure_channel(address) as channel,
    ):
        stub = tools_pb2_grpc.ToolRegistryStub(channel)
        tool = await stub.GetTool(tools_pb2.GetToolRequest(name="slow.x"))
        assert tool.namespace == "slow" and list(tool.required_capabilities) == ["net_read"]
        down = await execute(address, "slow.x", {})
        assert not down.success and "external handler at 127.0.0.1:9 failed" in down.error
        status = await stub.Deregister(tools_pb2.DeregisterToolRequest(tool_name="slow.x"))
        assert status.success
