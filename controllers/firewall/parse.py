"""Read nft's canonical table text (and structured tables) into one small model.

`parse_table(text)` reads what `nft list table` prints (and firewall.ruleset
returns): named sets (type, flags, elements, comment), chains (the base
chain head: type, hook, device, priority, policy; the rules as one string
per line). Lines it does not understand (maps, counters, flowtables, table
flags, chain comments, set timeouts …) are kept in `unknown`, so callers can
refuse to reason about them. `from_structured(table)` gives the same model
for a firewall.apply input table (the lockout guard's fallback when nft's
canonical form is not known). Pure; used by the lockout guard, the diff's
change details and export. MUST NOT import specs (the effect model's guard
uses it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_TABLE = re.compile(r"^table (\S+) (\S+) \{$")
_SET = re.compile(r"^set (\S+) \{$")
_CHAIN = re.compile(r"^chain (\S+) \{$")
_HEAD = re.compile(
    r"^type (\w+) hook (\w+)(?: device \"?([^\";]+)\"?)? priority ([^;]+);(?: policy (\w+);)?$"
)


@dataclass(frozen=True)
class ParsedSet:
    name: str
    type: str = ""
    flags: tuple[str, ...] = ()
    elements: tuple[str, ...] = ()
    comment: str | None = None
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedChain:
    name: str
    head: str = ""  # the base chain line as printed ("" for a regular chain)
    type: str | None = None
    hook: str | None = None
    priority: str | None = None
    policy: str | None = None
    device: str | None = None
    rules: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedTable:
    family: str
    name: str
    sets: tuple[ParsedSet, ...] = ()
    chains: tuple[ParsedChain, ...] = ()
    unknown: tuple[str, ...] = ()

    def set_elements(self) -> dict[str, tuple[str, ...]]:
        return {s.name: s.elements for s in self.sets}

    def chain(self, name: str) -> ParsedChain | None:
        return next((c for c in self.chains if c.name == name), None)


@dataclass
class _Block:
    kind: str  # "set" | "chain" | other block keyword
    name: str
    lines: list[str] = field(default_factory=list)


@lru_cache(maxsize=16)
def parse_table(text: str) -> ParsedTable:
    """The canonical text of one table (ValueError if it is not one); the last few
    results are remembered (diff, details and the guard read the same texts)."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines or not (head := _TABLE.match(lines[0])) or lines[-1] != "}":
        raise ValueError("not the text of one nft table")
    blocks, unknown = _blocks(lines[1:-1])
    sets = tuple(_parse_set(b) for b in blocks if b.kind == "set")
    chains = tuple(_parse_chain(b) for b in blocks if b.kind == "chain")
    unknown += [f"{b.kind} {b.name}" for b in blocks if b.kind not in ("set", "chain")]
    return ParsedTable(head.group(1), head.group(2), sets, chains, tuple(unknown))


def _blocks(lines: list[str]) -> tuple[list[_Block], list[str]]:
    blocks: list[_Block] = []
    unknown: list[str] = []
    current: _Block | None = None
    depth = 0
    for line in lines:
        if current is None:
            opened = re.match(r"^(\S+) (\S+) \{$", line)
            if opened:
                current, depth = _Block(opened.group(1), opened.group(2)), 1
            else:
                unknown.append(line)
            continue
        depth += _brace_delta(line)
        if depth <= 0:
            blocks.append(current)
            current = None
        else:
            current.lines.append(line)
    if current is not None:
        raise ValueError(f"unterminated {current.kind} {current.name}")
    return blocks, unknown


def _brace_delta(line: str) -> int:
    if '"' not in line:  # the common case, at C speed
        return line.count("{") - line.count("}")
    delta, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            delta += (ch == "{") - (ch == "}")
    return delta


def _parse_set(block: _Block) -> ParsedSet:
    values: dict[str, Any] = {"name": block.name}
    unknown: list[str] = []
    joined = _join_continuations(block.lines)
    for line in joined:
        word, _, rest = line.partition(" ")
        if word == "type" and "type" not in values:
            values["type"] = rest
        elif word == "flags":
            values["flags"] = tuple(f.strip() for f in rest.split(","))
        elif word == "comment" and rest.startswith('"') and rest.endswith('"'):
            values["comment"] = rest[1:-1]
        elif word == "elements" and rest.startswith("= {") and rest.endswith("}"):
            values["elements"] = tuple(split_elements(rest[3:-1]))
        else:
            unknown.append(line)
    return ParsedSet(**values, unknown=tuple(unknown))


def _join_continuations(lines: list[str]) -> list[str]:
    """Element lists that nft wraps over several lines, joined back into one."""
    out: list[str] = []
    depth = 0
    for line in lines:
        if depth > 0:
            out[-1] += " " + line
        else:
            out.append(line)
        depth += _brace_delta(line)
    return out


def split_top_level(text: str, separator: Callable[[str], bool]) -> list[str]:
    """Pieces of `text` between separator characters that stand outside quotes and
    outside `{ … }` / `( … )` groups; pieces are stripped, empty ones dropped."""
    items: list[str] = []
    buf: list[str] = []
    depth, quoted = 0, False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "{(":
            depth += 1
        elif not quoted and ch in "})":
            depth -= 1
        elif not quoted and depth == 0 and separator(ch):
            items.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    items.append("".join(buf).strip())
    return [i for i in items if i]


def split_elements(inner: str) -> list[str]:
    """`a, b, "c"` (the inside of `{ … }`) split at top-level commas, quotes kept."""
    return split_top_level(inner, lambda ch: ch == ",")


def _parse_chain(block: _Block) -> ParsedChain:
    lines = block.lines
    unknown = tuple(line for line in lines if line.startswith("comment "))
    lines = [line for line in lines if line not in unknown]
    if not lines or not lines[0].startswith("type "):
        return ParsedChain(block.name, rules=tuple(lines), unknown=unknown)
    head, rules = lines[0], tuple(lines[1:])
    match = _HEAD.match(head)
    if match is None:
        return ParsedChain(block.name, head=head, rules=rules, unknown=(*unknown, head))
    kind, hook, device, priority, policy = match.groups()
    return ParsedChain(
        block.name,
        head=head,
        type=kind,
        hook=hook,
        priority=priority.strip(),
        policy=policy,
        device=device,
        rules=rules,
        unknown=unknown,
    )


def from_structured(table: Mapping[str, Any]) -> ParsedTable:
    """The same model for a structured table (firewall.apply's input form)."""
    sets = tuple(
        ParsedSet(
            name=str(s.get("name", "")),
            type=str(s.get("type", "")),
            flags=tuple(str(f) for f in s.get("flags", ())),
            elements=tuple(str(e) for e in s.get("elements", ())),
            comment=s.get("comment"),
        )
        for s in table.get("sets", ())
    )
    chains = tuple(
        ParsedChain(
            name=str(c.get("name", "")),
            type=c.get("type"),
            hook=c.get("hook"),
            priority=None if c.get("priority") is None else str(c.get("priority")),
            policy=c.get("policy", "accept" if c.get("hook") else None),
            device=c.get("device"),
            rules=tuple(str(r).strip() for r in c.get("rules", ())),
        )
        for c in table.get("chains", ())
    )
    return ParsedTable(str(table.get("family", "inet")), str(table.get("name", "")), sets, chains)
