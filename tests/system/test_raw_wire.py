"""Byte-level wire compatibility of aios.tools.ToolRegistry/Execute.

The request is assembled byte by byte from the field numbers and types in the
contract tables (tests/fixtures copy of docs/aios-contract.md §1.3), sent over a real
gRPC channel to a grpc.aio server built from our generated stubs, and must
arrive field for field; the response's raw bytes are decoded by hand with the
contract's ExecuteResponse numbers. If our .proto disagreed with aiOS on a
number or a wire type, a value would land in the wrong field or be dropped.

Needs no root: the server listens on a unix socket under tmp_path.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from aios_contract_tables import ContractTables, MessageRow, load

from contract._gen import tools_pb2, tools_pb2_grpc

TABLES: ContractTables = load()
REQUEST: MessageRow = TABLES.message("aios.tools.ExecuteRequest")
RESPONSE: MessageRow = TABLES.message("aios.tools.ExecuteResponse")
METHOD = "/aios.tools.ToolRegistry/Execute"

WIRE_VARINT = 0
WIRE_LEN = 2
WIRE_FIXED32 = 5
WIRE_TYPE = {"bool": WIRE_VARINT, "int32": WIRE_VARINT, "int64": WIRE_VARINT}
WIRE_TYPE |= {"string": WIRE_LEN, "bytes": WIRE_LEN}

# Non-default values for every field, keyed by the table's field names. Both
# JSON payloads and one string carry non-ASCII UTF-8 (multi-byte lengths).
REQUEST_VALUES: dict[str, object] = {
    "tool_name": "net.set_address",
    "agent_id": "aios-reconciler/häst",
    "task_id": "task-0001-δ",
    "input_json": json.dumps(
        {"interface": "eth0", "comment": "Grüße — 東京 ✓", "mtu": 9000}, ensure_ascii=False
    ).encode("utf-8"),
    "reason": "NetworkConfig/lan: address 10.0.0.2/24 missing (Ünïcode)",
}
RESPONSE_VALUES: dict[str, object] = {
    "success": True,
    "output_json": json.dumps({"ok": True, "note": "naïve ✓"}, ensure_ascii=False).encode(),
    "error": "warning: ändert nichts",
    "execution_id": "exec-7f3a9c",
    "duration_ms": 12_345_678_901,  # > 2**32: a multi-byte int64 varint
    "backup_id": "backup-42",
}


# -- a minimal protobuf wire encoder/decoder (varint and length-delimited only) --


def encode_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int32/int64 negatives are 10-byte two's complement varints
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def encode_message(row: MessageRow, values: dict[str, object]) -> bytes:
    """Encode `values` using only the table's field numbers and type words."""
    out = bytearray()
    for field in sorted(row.fields, key=lambda f: f.number):
        value = values[field.name]
        wire = WIRE_TYPE[field.type]  # KeyError: a type this test cannot encode
        out += encode_varint((field.number << 3) | wire)
        if field.type == "string":
            assert isinstance(value, str)
            payload = value.encode("utf-8")
            out += encode_varint(len(payload)) + payload
        elif field.type == "bytes":
            assert isinstance(value, bytes)
            out += encode_varint(len(value)) + value
        elif field.type == "bool":
            assert isinstance(value, bool)
            out += encode_varint(int(value))
        else:
            assert isinstance(value, int)
            out += encode_varint(value)
    return bytes(out)


def decode_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, varint value or raw payload)."""
    pos = 0
    while pos < len(data):
        tag, pos = decode_varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == WIRE_VARINT:
            value, pos = decode_varint(data, pos)
            yield number, wire, value
        elif wire == WIRE_FIXED32:  # float (runtime.proto's temperature)
            if pos + 4 > len(data):
                raise ValueError("truncated fixed32 field")
            yield number, wire, data[pos : pos + 4]
            pos += 4
        elif wire == WIRE_LEN:
            length, pos = decode_varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated length-delimited field")
            yield number, wire, data[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unexpected wire type {wire} for field {number}")


def decode_message(row: MessageRow, data: bytes) -> dict[str, object]:
    by_number = {f.number: f for f in row.fields}
    out: dict[str, object] = {}
    for number, wire, raw in decode_fields(data):
        assert number in by_number, f"{row.full_name}: unknown field number {number} on the wire"
        field = by_number[number]
        assert field.name not in out, f"{row.full_name}.{field.name} sent twice"
        assert wire == WIRE_TYPE[field.type], f"{row.full_name}.{field.name}: wire type {wire}"
        if field.type == "string":
            assert isinstance(raw, bytes)
            out[field.name] = raw.decode("utf-8")
        elif field.type == "bytes":
            out[field.name] = raw
        elif field.type == "bool":
            assert raw in (0, 1)
            out[field.name] = raw == 1
        else:
            assert isinstance(raw, int)
            bits = 32 if field.type == "int32" else 64
            out[field.name] = raw - (1 << 64) if raw >= 1 << (bits - 1) else raw
    return out


def test_codec_round_trips_against_protobuf() -> None:
    """The hand codec agrees with the protobuf runtime (guards the guard)."""
    assert encode_varint(300) == b"\xac\x02"
    assert encode_varint(-1) == b"\xff" * 9 + b"\x01"
    assert decode_varint(b"\xac\x02", 0) == (300, 2)
    parsed = tools_pb2.ExecuteResponse.FromString(encode_message(RESPONSE, RESPONSE_VALUES))
    assert {f.name: v for f, v in parsed.ListFields()} == RESPONSE_VALUES
    encoded = tools_pb2.ExecuteResponse(**RESPONSE_VALUES).SerializeToString()  # type: ignore[arg-type]
    assert decode_message(RESPONSE, encoded) == RESPONSE_VALUES


# -- a real grpc.aio server from the generated stubs --


class RecordingRegistry(tools_pb2_grpc.ToolRegistryServicer):
    def __init__(self) -> None:
        self.requests: list[tools_pb2.ExecuteRequest] = []

    async def Execute(  # gRPC method name
        self,
        request: tools_pb2.ExecuteRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> tools_pb2.ExecuteResponse:
        self.requests.append(request)
        return tools_pb2.ExecuteResponse(**RESPONSE_VALUES)  # type: ignore[arg-type]


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "registry.sock"
    if len(str(path)) < 100:  # sun_path holds 108 bytes
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="aios-wire-") as short:
        yield Path(short) / "registry.sock"


@pytest.fixture
async def registry(socket_path: Path) -> AsyncIterator[tuple[RecordingRegistry, str]]:
    # Only Execute is implemented; the generated base answers UNIMPLEMENTED for the rest.
    servicer = RecordingRegistry()  # type: ignore[abstract]
    server = grpc.aio.server()
    tools_pb2_grpc.add_ToolRegistryServicer_to_server(servicer, server)
    target = f"unix:{socket_path}"
    assert server.add_insecure_port(target) != 0
    await server.start()
    try:
        yield servicer, target
    finally:
        await server.stop(None)


async def test_execute_raw_bytes_both_ways(registry: tuple[RecordingRegistry, str]) -> None:
    servicer, target = registry
    assert set(REQUEST_VALUES) == {f.name for f in REQUEST.fields}, "a value for every field"
    assert set(RESPONSE_VALUES) == {f.name for f in RESPONSE.fields}, "a value for every field"
    raw_request = encode_message(REQUEST, REQUEST_VALUES)

    async with grpc.aio.insecure_channel(target) as channel:
        execute: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            METHOD, request_serializer=None, response_deserializer=None
        )
        raw_response = await execute(raw_request, timeout=10)

    assert len(servicer.requests) == 1
    received = servicer.requests[0]
    assert {f.name: v for f, v in received.ListFields()} == REQUEST_VALUES
    for name, value in REQUEST_VALUES.items():
        assert getattr(received, name) == value, f"ExecuteRequest.{name}"

    assert isinstance(raw_response, bytes)
    assert decode_message(RESPONSE, raw_response) == RESPONSE_VALUES
