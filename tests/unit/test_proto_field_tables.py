"""Our generated descriptors match docs/aios-contract.md §1.2-§1.4, table by table.

Expected messages, fields, enums and RPCs come from parsing the verbatim copy of
the contract in tests/fixtures/aios-contract-proto-tables.md, never from lists
typed here. Wire compatibility needs package, service, RPC names and streaming
shape, request/response type names and every field's number, name-independent
scalar type and label; names are checked too so that JSON/text forms agree.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

import pytest
from aios_contract_tables import (
    FIXTURE,
    ContractTables,
    EnumRow,
    MessageRow,
    Section,
    ServiceTable,
    load,
    raw_counts,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor

TABLES: ContractTables = load()

SCALAR_TYPES: dict[str, int] = {
    "string": FieldDescriptor.TYPE_STRING,
    "bool": FieldDescriptor.TYPE_BOOL,
    "bytes": FieldDescriptor.TYPE_BYTES,
    "int32": FieldDescriptor.TYPE_INT32,
    "int64": FieldDescriptor.TYPE_INT64,
    "uint32": FieldDescriptor.TYPE_UINT32,
    "uint64": FieldDescriptor.TYPE_UINT64,
    "float": FieldDescriptor.TYPE_FLOAT,
    "double": FieldDescriptor.TYPE_DOUBLE,
}
_MAP_RE = re.compile(r"^map<(?P<key>\w+), ?(?P<value>[\w.]+)>$")
_MESSAGE_TYPE_RE = re.compile(r"^aios\.\w+\.\w+$")


def _file_descriptor(section: Section) -> FileDescriptor:
    module: ModuleType = importlib.import_module(section.module_name)
    fd = module.DESCRIPTOR
    assert isinstance(fd, FileDescriptor)
    return fd


def _message_descriptor(row: MessageRow) -> Descriptor:
    fd = _file_descriptor(TABLES.section_of(row.full_name))
    assert fd.package == row.package
    assert row.name in fd.message_types_by_name, f"{row.full_name} is missing from {fd.name}"
    desc = fd.message_types_by_name[row.name]
    assert desc.full_name == row.full_name
    return desc


def _check_element_type(field: FieldDescriptor, word: str, where: str) -> None:
    """`word` is a single (non-repeated, non-map) type word from the table."""
    if word in SCALAR_TYPES:
        assert field.type == SCALAR_TYPES[word], f"{where}: type {field.type}, table says {word}"
    elif _MESSAGE_TYPE_RE.match(word):
        assert field.type == FieldDescriptor.TYPE_MESSAGE, f"{where}: not a message, table {word}"
        assert field.message_type is not None
        assert field.message_type.full_name == word, f"{where}: {field.message_type.full_name}"
    else:
        pytest.fail(f"{where}: the test does not know the table's type word {word!r}")


def _check_field(field: FieldDescriptor, type_word: str, where: str) -> None:
    assert field.containing_oneof is None, f"{where}: in a oneof; the contract uses none"
    if m := _MAP_RE.match(type_word):
        assert field.is_repeated, f"{where}: a map field is repeated on the wire"
        assert field.type == FieldDescriptor.TYPE_MESSAGE
        entry = field.message_type
        assert entry is not None and entry.GetOptions().map_entry, f"{where}: not a map"
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        assert (key.number, value.number) == (1, 2)
        _check_element_type(key, m["key"], f"{where} (map key)")
        _check_element_type(value, m["value"], f"{where} (map value)")
    elif type_word.startswith("repeated "):
        assert field.is_repeated, f"{where}: singular, table says {type_word!r}"
        _check_element_type(field, type_word.removeprefix("repeated "), where)
    else:
        assert not field.is_repeated, f"{where}: repeated, table says {type_word!r}"
        _check_element_type(field, type_word, where)
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            # proto3 implicit presence: the contract uses no `optional`
            assert not field.has_presence, f"{where}: has explicit presence (optional?)"


# -- the parser itself: a broken parser must not make the checks below vacuous --


def test_parser_counts_match_the_raw_tables() -> None:
    raw = raw_counts(FIXTURE.read_text(encoding="utf-8"))
    rpcs = sum(len(s.rpcs) for s in TABLES.services)
    parsed_rows = len(TABLES.messages) + len(TABLES.enums) + rpcs
    assert parsed_rows == raw.table_body_rows > 0
    assert sum(len(m.fields) for m in TABLES.messages) == raw.fields > 0
    assert sum(len(e.values) for e in TABLES.enums) == raw.enum_values > 0
    assert len(TABLES.sections) == raw.sections == 3
    assert len(TABLES.services) == raw.services > 0


def test_parser_found_known_anchors() -> None:
    assert [s.package for s in TABLES.sections] == ["aios.common", "aios.tools", "aios.runtime"]
    execute = TABLES.message("aios.tools.ExecuteRequest")
    assert [(f.number, f.name) for f in execute.fields][:2] == [(1, "tool_name"), (2, "agent_id")]
    assert execute.field("input_json").type == "bytes"
    assert TABLES.message("aios.common.Empty").fields == ()
    assert TABLES.message("aios.common.HealthStatus").field("details").type == "map<string,string>"
    assert {e.full_name for e in TABLES.enums} >= {"aios.common.GoalStatus"}
    services = {s.full_name: s for s in TABLES.services}
    assert set(services) == {"aios.tools.ToolRegistry", "aios.runtime.AIRuntime"}
    stream = {r.name: r for r in services["aios.runtime.AIRuntime"].rpcs}["StreamInfer"]
    assert stream.server_streaming and not stream.client_streaming
    assert TABLES.section_of("aios.runtime.AIRuntime").imports == ("common.proto",)


# -- the generated descriptors against every table row --


@pytest.mark.parametrize("row", TABLES.messages, ids=lambda r: r.full_name)
def test_message_fields(row: MessageRow) -> None:
    desc = _message_descriptor(row)
    want = {f.number: f for f in row.fields}
    have = {f.number: f for f in desc.fields}
    assert sorted(have) == sorted(want), f"{row.full_name}: field numbers differ"
    for number, spec in want.items():
        field = have[number]
        where = f"{row.full_name}.{spec.name} = {number}"
        assert field.name == spec.name, f"{where}: named {field.name!r} here"
        _check_field(field, spec.type, where)


@pytest.mark.parametrize("row", TABLES.enums, ids=lambda r: r.full_name)
def test_enum_values(row: EnumRow) -> None:
    fd = _file_descriptor(TABLES.section_of(row.full_name))
    assert row.name in fd.enum_types_by_name, f"enum {row.full_name} missing"
    enum = fd.enum_types_by_name[row.name]
    assert enum.full_name == row.full_name
    assert sorted((v.name, v.number) for v in enum.values) == sorted(row.values)


@pytest.mark.parametrize("table", TABLES.services, ids=lambda t: t.full_name)
def test_service_rpcs(table: ServiceTable) -> None:
    section = TABLES.section_of(table.full_name)
    assert table.path_prefix == f"/{table.full_name}/"
    fd = _file_descriptor(section)
    short = table.full_name.removeprefix(section.package + ".")
    assert short in fd.services_by_name, f"service {table.full_name} missing from {fd.name}"
    service = fd.services_by_name[short]
    assert service.full_name == table.full_name
    assert [m.name for m in service.methods] == [r.name for r in table.rpcs]
    for rpc in table.rpcs:
        method = service.methods_by_name[rpc.name]
        where = f"{table.full_name}/{rpc.name}"
        assert method.input_type.full_name == rpc.request, where
        assert method.output_type.full_name == rpc.response, where
        assert method.client_streaming == rpc.client_streaming, where
        assert method.server_streaming == rpc.server_streaming, where


@pytest.mark.parametrize("section", TABLES.sections, ids=lambda s: s.package)
def test_package_declares_exactly_the_tabled_types(section: Section) -> None:
    """No extra messages, enums or services in a wire-compatible package."""
    fd = _file_descriptor(section)
    assert fd.package == section.package
    assert set(fd.message_types_by_name) == {m.name for m in section.messages}
    assert set(fd.enum_types_by_name) == {e.name for e in section.enums}
    prefix = section.package + "."
    assert {prefix + s for s in fd.services_by_name} == {t.full_name for t in section.services}
    assert sorted(d.name for d in fd.dependencies) == sorted(section.imports)
