"""Parser for the proto tables of docs/aios-contract.md §1.2-§1.4 (tests/fixtures copy).

The fixture is a verbatim copy of the contract's markdown; tests derive every
expected message, field, enum and RPC from it rather than from hand-typed
lists, so the contract text stays the single source of truth. The parser is
strict: a table row or heading it does not understand raises ValueError
instead of being skipped, and `raw_counts` recounts the rows with independent,
cruder regexes so a parser that silently drops rows cannot pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "aios-contract-proto-tables.md"

_SECTION_RE = re.compile(
    r"^### (?P<num>1\.\d+) `(?P<file>\w+\.proto)` — package `(?P<pkg>[\w.]+)` "
    r"\((?:no imports|imports (?P<imports>[\w.]+\.proto(?:, [\w.]+\.proto)*))\)$"
)
_SERVICE_RE = re.compile(
    r"^Service `(?P<name>[\w.]+)` \(gRPC path prefix `(?P<prefix>/[\w.]+/)`\):$"
)
_MESSAGE_CELL_RE = re.compile(r"^`(?P<name>\w+)`$")
_ENUM_CELL_RE = re.compile(r"^enum `(?P<name>\w+)`$")
_FIELD_RE = re.compile(r"^(?P<num>\d+): (?P<name>\w+) `(?P<type>[^`]+)`$")
_ENUM_VALUE_RE = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)=(?P<num>\d+)$")
_RPC_NAME_RE = re.compile(r"^[A-Z]\w*$")
_RPC_TYPE_RE = re.compile(r"^`(?P<stream>stream )?(?P<type>[\w.]+)`$")
_SEPARATOR_RE = re.compile(r"^\|(?:-+\|)+$")

MESSAGE_HEADER = ("message", "fields (number: name type)")
RPC_HEADER = ("RPC", "request", "response")


@dataclass(frozen=True)
class FieldRow:
    number: int
    name: str
    type: str  # as written: "string", "repeated string", "map<string,string>", "aios.x.Y"


@dataclass(frozen=True)
class MessageRow:
    package: str
    name: str
    fields: tuple[FieldRow, ...]

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}"

    def field(self, name: str) -> FieldRow:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.full_name} has no field {name!r} in the contract table")


@dataclass(frozen=True)
class EnumRow:
    package: str
    name: str
    values: tuple[tuple[str, int], ...]

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}"


@dataclass(frozen=True)
class RpcRow:
    name: str
    request: str
    response: str
    client_streaming: bool
    server_streaming: bool


@dataclass(frozen=True)
class ServiceTable:
    full_name: str
    path_prefix: str
    rpcs: tuple[RpcRow, ...]


@dataclass(frozen=True)
class Section:
    number: str
    proto_file: str
    package: str
    imports: tuple[str, ...]
    messages: tuple[MessageRow, ...]
    enums: tuple[EnumRow, ...]
    services: tuple[ServiceTable, ...]

    @property
    def module_name(self) -> str:
        """Generated module for this file: common.proto -> contract._gen.common_pb2."""
        return "contract._gen." + self.proto_file.removesuffix(".proto") + "_pb2"


@dataclass(frozen=True)
class ContractTables:
    sections: tuple[Section, ...]

    @property
    def messages(self) -> tuple[MessageRow, ...]:
        return tuple(m for s in self.sections for m in s.messages)

    @property
    def enums(self) -> tuple[EnumRow, ...]:
        return tuple(e for s in self.sections for e in s.enums)

    @property
    def services(self) -> tuple[ServiceTable, ...]:
        return tuple(t for s in self.sections for t in s.services)

    def message(self, full_name: str) -> MessageRow:
        for m in self.messages:
            if m.full_name == full_name:
                return m
        raise KeyError(f"no message {full_name} in the contract tables")

    def section_of(self, full_name: str) -> Section:
        for s in self.sections:
            names = [x.full_name for x in s.messages]
            names += [x.full_name for x in s.enums]
            names += [x.full_name for x in s.services]
            if full_name in names:
                return s
        raise KeyError(f"{full_name} is in no section of the contract tables")


def _cells(line: str) -> tuple[str, ...]:
    if not (line.startswith("| ") and line.endswith(" |")):
        raise ValueError(f"malformed table row: {line!r}")
    return tuple(c.strip() for c in line[2:-2].split(" | "))


def _parse_fields(text: str, where: str) -> tuple[FieldRow, ...]:
    if text == "(no fields)":
        return ()
    out = []
    for part in text.split("; "):
        m = _FIELD_RE.match(part)
        if not m:
            raise ValueError(f"{where}: cannot parse field {part!r}")
        out.append(FieldRow(int(m["num"]), m["name"], m["type"]))
    return tuple(out)


def _parse_enum_values(text: str, where: str) -> tuple[tuple[str, int], ...]:
    out = []
    for part in text.split("; "):
        m = _ENUM_VALUE_RE.match(part)
        if not m:
            raise ValueError(f"{where}: cannot parse enum value {part!r}")
        out.append((m["name"], int(m["num"])))
    return tuple(out)


def _parse_rpc(cells: tuple[str, ...], where: str) -> RpcRow:
    if len(cells) != 3 or not _RPC_NAME_RE.match(cells[0]):
        raise ValueError(f"{where}: cannot parse RPC row {cells!r}")
    req = _RPC_TYPE_RE.match(cells[1])
    resp = _RPC_TYPE_RE.match(cells[2])
    if not req or not resp:
        raise ValueError(f"{where}: cannot parse RPC types in {cells!r}")
    return RpcRow(
        name=cells[0],
        request=req["type"],
        response=resp["type"],
        client_streaming=req["stream"] is not None,
        server_streaming=resp["stream"] is not None,
    )


class _SectionBuilder:
    def __init__(self, number: str, proto_file: str, package: str, imports: tuple[str, ...]):
        self.number = number
        self.proto_file = proto_file
        self.package = package
        self.imports = imports
        self.messages: list[MessageRow] = []
        self.enums: list[EnumRow] = []
        self.services: list[ServiceTable] = []
        self.pending_service: tuple[str, str] | None = None

    def add_table(self, header: tuple[str, ...], rows: list[tuple[str, ...]], where: str) -> None:
        if header == MESSAGE_HEADER:
            for cells in rows:
                self._add_message_row(cells, where)
        elif header == RPC_HEADER:
            if self.pending_service is None:
                raise ValueError(f"{where}: RPC table without a preceding 'Service `...`' line")
            name, prefix = self.pending_service
            self.pending_service = None
            rpcs = tuple(_parse_rpc(cells, where) for cells in rows)
            self.services.append(ServiceTable(name, prefix, rpcs))
        else:
            raise ValueError(f"{where}: unknown table header {header!r}")

    def _add_message_row(self, cells: tuple[str, ...], where: str) -> None:
        if len(cells) != 2:
            raise ValueError(f"{where}: message row needs 2 cells, got {cells!r}")
        if m := _MESSAGE_CELL_RE.match(cells[0]):
            self.messages.append(
                MessageRow(self.package, m["name"], _parse_fields(cells[1], f"{where} {m['name']}"))
            )
        elif e := _ENUM_CELL_RE.match(cells[0]):
            values = _parse_enum_values(cells[1], f"{where} enum {e['name']}")
            self.enums.append(EnumRow(self.package, e["name"], values))
        else:
            raise ValueError(f"{where}: cannot parse first cell {cells[0]!r}")

    def build(self) -> Section:
        if self.pending_service is not None:
            raise ValueError(f"§{self.number}: service {self.pending_service[0]} has no RPC table")
        return Section(
            number=self.number,
            proto_file=self.proto_file,
            package=self.package,
            imports=self.imports,
            messages=tuple(self.messages),
            enums=tuple(self.enums),
            services=tuple(self.services),
        )


def parse(text: str) -> ContractTables:
    """Parse the fixture's markdown into sections of messages, enums and services."""
    lines = text.splitlines()
    sections: list[Section] = []
    current: _SectionBuilder | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        where = f"fixture line {i + 1}"
        if line.startswith("### "):
            m = _SECTION_RE.match(line)
            if not m:
                raise ValueError(f"{where}: unrecognised section heading {line!r}")
            if current is not None:
                sections.append(current.build())
            imports = tuple(m["imports"].split(", ")) if m["imports"] else ()
            current = _SectionBuilder(m["num"], m["file"], m["pkg"], imports)
        elif line.startswith("Service "):
            s = _SERVICE_RE.match(line)
            if not s or current is None:
                raise ValueError(f"{where}: unrecognised service line {line!r}")
            current.pending_service = (s["name"], s["prefix"])
        elif line.startswith("|"):
            if current is None:
                raise ValueError(f"{where}: table outside a section")
            header = _cells(line)
            if i + 1 >= len(lines) or not _SEPARATOR_RE.match(lines[i + 1]):
                raise ValueError(f"{where}: table header not followed by a |---| separator")
            i += 2
            rows: list[tuple[str, ...]] = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            current.add_table(header, rows, where)
            continue
        i += 1
    if current is not None:
        sections.append(current.build())
    return ContractTables(tuple(sections))


def load() -> ContractTables:
    return parse(FIXTURE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class RawCounts:
    """Counts taken from the raw text with simple regexes, independent of parse()."""

    table_body_rows: int
    fields: int
    enum_values: int
    sections: int
    services: int


def raw_counts(text: str) -> RawCounts:
    table_lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    separators = sum(1 for ln in table_lines if set(ln) <= {"|", "-"})
    return RawCounts(
        # every table is one header line + one separator line + body rows
        table_body_rows=len(table_lines) - 2 * separators,
        fields=len(re.findall(r"\b\d+: \w+ `", text)),
        enum_values=len(re.findall(r"\b[A-Z][A-Z_]+=\d+\b", text)),
        sections=len(re.findall(r"(?m)^### ", text)),
        services=len(re.findall(r"(?m)^Service `", text)),
    )
