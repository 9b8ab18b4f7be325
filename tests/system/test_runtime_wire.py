"""Byte-level wire compatibility of aios.runtime.AIRuntime, against a real `aios runtime serve`.

Every RPC of the contract's AIRuntime table (tests/fixtures copy of docs/aios-contract.md
§1.4) is called with a request assembled byte by byte from the table's field numbers and
types — every field set to a non-default value, floats as fixed32, non-ASCII strings —
over a raw gRPC channel (no generated stubs on the client side), and its response is
decoded by hand with the table's numbers, nested messages and the map included. What the
server received is checked where it lands: llama-server's argv and /props (LoadModel), the
HTTP body it was sent (Infer). If our runtime.proto disagreed with aiOS's on a number or a
wire type, a value would land in the wrong field or be dropped.

The wire test runs the server with the llama-server double (tests/fixtures/
fake_llama_server.py); the last test runs it with the real llama-server and SmolLM2-135M
under two names (a `tinyllama-1.1b` and a `mistral-7b` one) and asks through the server's
generated stubs, as a client built from aiOS's runtime.proto would. Both stop the server
with SIGTERM and check that no llama-server outlived it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from aios_contract_tables import ContractTables, MessageRow, RpcRow, ServiceTable, load

from contract._gen import common_pb2, runtime_pb2, runtime_pb2_grpc
from tests.system.test_llama_server import free_port, llama_server, smollm2
from tests.system.test_raw_wire import decode_fields as fields
from tests.system.test_raw_wire import encode_varint

TABLES: ContractTables = load()
REPO = Path(__file__).resolve().parents[2]
DOUBLE = REPO / "tests" / "fixtures" / "fake_llama_server.py"
[SERVICE] = [s for s in TABLES.services if s.full_name == "aios.runtime.AIRuntime"]

WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_FIXED32 = 0, 1, 2, 5
SCALAR_WIRE = {"bool": WIRE_VARINT, "int32": WIRE_VARINT, "int64": WIRE_VARINT}
SCALAR_WIRE |= {"string": WIRE_LEN, "bytes": WIRE_LEN, "float": WIRE_FIXED32}
DEFAULTS: dict[str, object] = {"string": "", "bytes": b"", "bool": False, "int32": 0}
DEFAULTS |= {"int64": 0, "float": 0.0}


def rpc(name: str) -> RpcRow:
    [row] = [r for r in SERVICE.rpcs if r.name == name]
    return row


def method(service: ServiceTable, name: str) -> str:
    return f"{service.path_prefix}{name}"


# -- a table-driven protobuf codec: scalars, floats, repeated messages, map<string,string> --


def _wire_of(type_word: str) -> int:
    if type_word in SCALAR_WIRE:
        return SCALAR_WIRE[type_word]
    return WIRE_LEN  # repeated message, map entry, message


def _scalar(type_word: str, value: object) -> bytes:
    if type_word == "string":
        assert isinstance(value, str)
        data = value.encode("utf-8")
        return encode_varint(len(data)) + data
    if type_word == "bytes":
        assert isinstance(value, bytes)
        return encode_varint(len(value)) + value
    if type_word == "float":
        assert isinstance(value, float)
        return struct.pack("<f", value)
    if type_word == "bool":
        assert isinstance(value, bool)
        return encode_varint(int(value))
    assert type_word in ("int32", "int64") and isinstance(value, int), type_word
    return encode_varint(value)


def encode(row: MessageRow, values: dict[str, object]) -> bytes:
    """Encode `values` (every key a field of the table) with the table's numbers only."""
    out = bytearray()
    for field in sorted(row.fields, key=lambda f: f.number):
        if field.name not in values:
            continue
        assert field.type in SCALAR_WIRE, f"this test sends scalars only, not {field.type}"
        out += encode_varint((field.number << 3) | SCALAR_WIRE[field.type])
        out += _scalar(field.type, values[field.name])
    return bytes(out)


def decode(row: MessageRow, data: bytes) -> dict[str, object]:
    """Decode by the table; absent scalars get proto3 defaults, repeated/map fields [] / {}."""
    by_number = {f.number: f for f in row.fields}
    out: dict[str, object] = {}
    for f in row.fields:
        if f.type.startswith("repeated "):
            out[f.name] = []
        elif f.type.startswith("map<"):
            out[f.name] = {}
        else:
            out[f.name] = DEFAULTS[f.type]
    seen: set[str] = set()
    for number, wire, raw in fields(data):
        assert number in by_number, f"{row.full_name}: unknown field number {number} on the wire"
        field = by_number[number]
        assert wire == _wire_of(field.type), f"{row.full_name}.{field.name}: wire type {wire}"
        if field.type.startswith("repeated "):
            nested = TABLES.message(field.type.removeprefix("repeated "))
            assert isinstance(raw, bytes)
            value = out[field.name]
            assert isinstance(value, list)
            value.append(decode(nested, raw))
            continue
        if field.type == "map<string,string>":
            assert isinstance(raw, bytes)
            entry = {n: v for n, _, v in fields(raw)}
            assert set(entry) <= {1, 2}, "a map entry has key = 1 and value = 2"
            key, val = entry.get(1, b""), entry.get(2, b"")
            assert isinstance(key, bytes) and isinstance(val, bytes)
            mapping = out[field.name]
            assert isinstance(mapping, dict)
            mapping[key.decode()] = val.decode()
            continue
        assert field.name not in seen, f"{row.full_name}.{field.name} sent twice"
        seen.add(field.name)
        if field.type == "string":
            assert isinstance(raw, bytes)
            out[field.name] = raw.decode("utf-8")
        elif field.type == "float":
            assert isinstance(raw, bytes)
            out[field.name] = struct.unpack("<f", raw)[0]
        elif field.type == "bool":
            assert raw in (0, 1)
            out[field.name] = raw == 1
        else:
            assert isinstance(raw, int)
            bits = 32 if field.type == "int32" else 64
            out[field.name] = raw - (1 << 64) if raw >= 1 << (bits - 1) else raw
    return out


def test_codec_agrees_with_protobuf() -> None:
    """The hand codec against the protobuf runtime (guards the guard): float, map, repeated."""
    request = TABLES.message("aios.runtime.InferRequest")
    values: dict[str, object] = {
        "model": "m", "prompt": "Grüße", "system_prompt": "sys", "max_tokens": -7,
        "temperature": 0.25, "intelligence_level": "tactical", "requesting_agent": "a",
        "task_id": "t",
    }  # fmt: skip
    parsed = runtime_pb2.InferRequest.FromString(encode(request, values))
    assert {f.name: v for f, v in parsed.ListFields()} == values
    health = common_pb2.HealthStatus(
        healthy=True, service="s", message="m", uptime_seconds=1 << 40, details={"a": "b", "c": ""}
    )
    assert decode(TABLES.message("aios.common.HealthStatus"), health.SerializeToString()) == {
        "healthy": True, "service": "s", "message": "m", "uptime_seconds": 1 << 40,
        "details": {"a": "b", "c": ""},
    }  # fmt: skip
    models = runtime_pb2.ModelList(
        models=[runtime_pb2.ModelStatus(model_name="x", port=8080), runtime_pb2.ModelStatus()]
    )
    decoded = decode(TABLES.message("aios.runtime.ModelList"), models.SerializeToString())
    assert decoded["models"] == [
        {"model_name": "x", "status": "", "port": 8080, "loaded_at": 0, "last_used": 0,
         "request_count": 0},
        {"model_name": "", "status": "", "port": 0, "loaded_at": 0, "last_used": 0,
         "request_count": 0},
    ]  # fmt: skip


# -- a real `aios runtime serve` process --


@dataclass
class Served:
    target: str
    models: Path
    proc: subprocess.Popen[bytes]
    log: Path


def survivors(models: Path) -> list[int]:
    """Processes whose command line names the model directory (llama-servers of this test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            ours = str(models).encode() in cmdline and b"runtime\0serve" not in cmdline
            if ours and state != "Z":
                found.append(int(entry.name))
    return found


@contextlib.contextmanager
def serving(tmp: Path, binary: Path) -> Iterator[Served]:
    models = tmp / "models"
    models.mkdir()
    with tempfile.TemporaryDirectory(prefix="aios-rtw-") as short:
        sock = Path(short) / "runtime.sock"
        argv = [sys.executable, "-m", "reconciler.cli.main", "runtime", "serve",
                "--listen", f"unix://{sock}", "--model-dir", str(models),
                "--state-dir", str(tmp / "state"), "--llama-server", str(binary)]  # fmt: skip
        log = tmp / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not sock.exists():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            yield Served(f"unix://{sock}", models, proc, log)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log.read_text()
            assert not sock.exists()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            left = survivors(models)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            assert not left, f"llama-servers outlived `aios runtime serve`: {left}"


def gguf(path: Path) -> Path:
    path.write_bytes(b"GGUF" + struct.pack("<I", 3) + bytes(4096))
    return path


async def unary(target: str, name: str, request: dict[str, object]) -> dict[str, object]:
    row = rpc(name)
    assert not row.client_streaming and not row.server_streaming
    async with grpc.aio.insecure_channel(target) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            method(SERVICE, name), request_serializer=None, response_deserializer=None
        )
        raw = await call(encode(TABLES.message(row.request), request), timeout=30)
    assert isinstance(raw, bytes)
    return decode(TABLES.message(row.response), raw)


async def streamed(target: str, name: str, request: dict[str, object]) -> list[dict[str, object]]:
    row = rpc(name)
    assert row.server_streaming and not row.client_streaming
    async with grpc.aio.insecure_channel(target) as channel:
        call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
            method(SERVICE, name), request_serializer=None, response_deserializer=None
        )
        response = TABLES.message(row.response)
        return [
            decode(response, raw)
            async for raw in call(encode(TABLES.message(row.request), request), timeout=30)
        ]


def test_every_airuntime_rpc_in_raw_bytes(tmp_path: Path) -> None:
    assert {r.name for r in SERVICE.rpcs} == {
        "LoadModel", "UnloadModel", "ListModels", "Infer", "StreamInfer", "HealthCheck",
    }, "a test below for every RPC of the table"  # fmt: skip
    binary = tmp_path / "llama-server"
    trace = tmp_path / "trace.log"
    binary.write_text(
        f"#!/bin/sh\nexport FAKE_LLAMA_TRACE={trace} FAKE_LLAMA_TOKEN_INTERVAL=0.02\n"
        f'exec {sys.executable} {DOUBLE} "$@"\n'
    )
    binary.chmod(0o755)
    with serving(tmp_path, binary) as served:
        asyncio.run(_every_rpc(served, trace))


async def _every_rpc(served: Served, trace: Path) -> None:
    target = served.target
    path = gguf(served.models / "wire model ✓.gguf")
    name = "wire-tinyllama-1.1b-ß"
    port = free_port()
    load = {"model_name": name, "model_path": str(path), "context_length": 384,
            "gpu_layers": 3, "threads": 2, "port": port}  # fmt: skip
    assert set(load) == {f.name for f in TABLES.message("aios.runtime.LoadModelRequest").fields}
    before = int(time.time() * 1000)
    status = await unary(target, "LoadModel", load)
    assert status["model_name"] == name
    assert status["status"] == "ready"
    assert status["port"] == port
    loaded_at = status["loaded_at"]
    assert isinstance(loaded_at, int) and before - 1000 <= loaded_at <= before + 60_000
    assert status["request_count"] == 0
    # every LoadModelRequest field arrived: llama-server got them on its command line
    async with httpx.AsyncClient(trust_env=False) as http:
        props = (await http.get(f"http://127.0.0.1:{port}/props", timeout=5)).json()
    assert props["default_generation_settings"]["n_ctx"] == 384
    assert props["model_path"] == str(path)
    argv = props["argv"]
    flags = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    assert flags["--threads"] == "2"
    assert flags["--n-gpu-layers"] == "3"
    assert (flags["--host"], flags["--port"]) == ("127.0.0.1", str(port))

    listed = await unary(target, "ListModels", {})
    assert listed == {"models": [status | {"last_used": listed["models"][0]["last_used"]}]}  # type: ignore[index]

    infer = {"model": name, "prompt": "Wie geht's? 東京", "system_prompt": "Answer in JSON",
             "max_tokens": 77, "temperature": 0.25, "intelligence_level": "operational",
             "requesting_agent": "wire-test", "task_id": "task-δ"}  # fmt: skip
    assert set(infer) == {f.name for f in TABLES.message("aios.runtime.InferRequest").fields}
    answer = await unary(target, "Infer", infer)
    assert answer["text"] == '{"answer": "fake"}'
    assert isinstance(answer["tokens_used"], int) and answer["tokens_used"] > 5
    assert isinstance(answer["latency_ms"], int) and 0 <= answer["latency_ms"] < 30_000
    assert answer["model_used"] == name
    lines = (await asyncio.to_thread(trace.read_text)).splitlines()
    [sent] = [json.loads(line.split(" ", 2)[2]) for line in lines
              if line.startswith("request /v1/chat/completions")]  # fmt: skip
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in JSON"},
        {"role": "user", "content": "Wie geht's? 東京"},
    ]
    assert (sent["max_tokens"], sent["temperature"]) == (77, 0.25)
    assert sent["response_format"] == {"type": "json_object"}

    chunks = await streamed(target, "StreamInfer", infer | {"max_tokens": 4})
    assert chunks[-1] == {"text": "", "done": True}
    assert [c["done"] for c in chunks[:-1]] == [False] * 4
    assert "".join(str(c["text"]) for c in chunks) == "Hello, world!"

    health = await unary(target, "HealthCheck", {})
    assert (health["healthy"], health["service"]) == (True, "aios-runtime")
    assert str(health["message"]).startswith("1/1 models loaded, uptime ")
    assert health["details"] == {
        "loaded_models": "1", "total_models": "1", f"model:{name}": f"status=ready port={port}",
    }  # fmt: skip
    listed = await unary(target, "ListModels", {})
    assert listed["models"][0]["request_count"] == 2  # type: ignore[index]

    assert await unary(target, "UnloadModel", {"model_name": name}) == {
        "success": True,
        "message": f"Model '{name}' unloaded",
    }
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await unary(target, "UnloadModel", {"model_name": name})
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == f"Failed to unload model: Model '{name}' not found"
    assert await unary(target, "ListModels", {}) == {"models": []}


def test_smollm2_answers_through_aios_runtime_serve(tmp_path: Path) -> None:
    """The real llama-server, SmolLM2 under two names: each level routes, tokens come back."""
    with serving(tmp_path, llama_server()) as served:
        asyncio.run(_smollm2(served.target))


async def _smollm2(target: str) -> None:
    model = str(smollm2())
    tiny, mistral = "smollm2-135m-as-tinyllama-1.1b", "smollm2-135m-as-mistral-7b"
    async with grpc.aio.insecure_channel(target) as channel:
        client = runtime_pb2_grpc.AIRuntimeStub(channel)
        for name in (mistral, tiny):
            request = runtime_pb2.LoadModelRequest(
                model_name=name, model_path=model, context_length=512, threads=1
            )
            status = await client.LoadModel(request, timeout=180)
            assert status.status == "ready", status

        async def infer(level: str) -> runtime_pb2.InferResponse:
            request = runtime_pb2.InferRequest(
                prompt="Reply with a JSON object with key ok set to true.",
                max_tokens=24,
                temperature=0.1,
                intelligence_level=level,
            )
            return await client.Infer(request, timeout=120)

        operational = await infer("operational")
        assert operational.model_used == tiny
        assert operational.text.lstrip().startswith("{"), operational.text  # a JSON object
        assert operational.tokens_used > 0
        assert (await infer("tactical")).model_used == mistral
        assert (await infer("strategic")).model_used == mistral
        stream = client.StreamInfer(
            runtime_pb2.InferRequest(prompt="Say hello.", max_tokens=8, intelligence_level="x"),
            timeout=120,
        )
        chunks = [chunk async for chunk in stream]
        assert chunks[-1].done
        assert "".join(c.text for c in chunks).strip(), chunks
        assert sum(1 for c in chunks if c.text) >= 2, "one chunk per token"
