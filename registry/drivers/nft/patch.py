"""Patches of live tables: a few rules deleted or put in place by handle, in one transaction.

A patch names a table, the digest of the canonical text it was planned against
(`expect`: firewall.ruleset's text, handles and counter values removed) and its
ops, run in order inside the one `nft -f` transaction of firewall.apply:

  {"op": "delete", "chain": C, "handle": H}            delete rule F T C handle H
  {"op": "insert", "chain": C, "handle": H, "rule": R}  insert rule F T C position H R
                                                         (before rule H; no handle: first)
  {"op": "add", "chain": C, "handle": H, "rule": R}     add rule F T C position H R
                                                         (after rule H; no handle: last)

Every handle an op names must exist when the transaction commits, or the kernel
refuses the whole transaction (nothing changes): a patch never lands on a
table that lost a rule it depends on. Before loading, the tool checks that the
table's text is still the one planned against (`check`), from the listing
observe just made when the nf_tables generation has not moved (no second listing).

`render_ops` writes the script lines (every value checked: identifiers, handles
as numbers, rules by check_rule). After the commit, `listed_after` computes
what `nft -a list table` prints now — the listing the patch was checked
against, with the ops applied and each new rule as nft echoed it (`nft -e -a`:
its printed text and new handle) — so the verify that follows is answered from
memory instead of listing the table again. It is used only when the commit was
the one transaction since that listing (generation + 1, same interfaces).
Used by registry.drivers.nft.ruleset and registry.handlers.firewall.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from contract.tooldef import JSON
from contract.vocab.nft import check_rule_text, is_nft_ident
from registry.core.errors import ToolError

Ref = tuple[str, str]

OPS = ("delete", "insert", "add")
_CHAIN = re.compile(r"^\tchain (\S+) \{ # handle \d+$")
_ECHO = re.compile(r"^(add|insert) rule (\S+) (\S+) (\S+) (?:handle \d+ )?(.*) # handle (\d+)$")
_GENERATION = re.compile(r"^# new generation (\d+) ", re.MULTILINE)


def _handle(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**64:
        raise ToolError(f"{where}: handle {value!r} is not a rule handle")
    return value


def render_ops(r: Ref, patch: JSON) -> list[tuple[str, str]]:
    """(script line, origin) of each op of one table's patch, in order."""
    table = f"{r[0]} {r[1]}"
    out: list[tuple[str, str]] = []
    ops = patch.get("ops")
    if not isinstance(ops, list) or not ops:
        raise ToolError(f"patch of table {table}: ops must be a non-empty list")
    for i, op in enumerate(ops):
        where = f"patch of table {table}, op {i}"
        if not isinstance(op, dict) or op.get("op") not in OPS:
            raise ToolError(f"{where}: op must be one of {', '.join(OPS)}")
        kind, chain = op["op"], op.get("chain")
        if not is_nft_ident(chain):
            raise ToolError(f"{where}: invalid chain name {chain!r}")
        if kind == "delete":
            handle = _handle(op.get("handle"), where)
            out.append((f"delete rule {table} {chain} handle {handle}", where))
            continue
        try:
            rule = check_rule_text(op.get("rule"))  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise ToolError(f"{where}: rule: {exc}") from None
        position = ""
        if op.get("handle") is not None:
            position = f"position {_handle(op['handle'], where)} "
        out.append((f"{kind} rule {table} {chain} {position}{rule}", f"{where} (`{rule}`)"))
    return out


def echoed(out: str) -> tuple[list[tuple[Ref, str, str, int]], int | None]:
    """`nft -e -a` output -> (table, chain, printed rule, new handle) of each added rule, in
    order, and the new generation id (None when not printed)."""
    added: list[tuple[Ref, str, str, int]] = []
    for line in out.splitlines():
        m = _ECHO.match(line)
        if m:
            added.append(((m.group(2), m.group(3)), m.group(4), m.group(5), int(m.group(6))))
    generation = _GENERATION.search(out)
    return added, int(generation.group(1)) if generation else None


def _chains(lines: Sequence[str]) -> dict[str, tuple[int, int]] | None:
    """Each chain's rule lines (start, end) in an `nft -a list table` text; None when a
    chain's rules are not its last lines (then nothing is predicted)."""
    found: dict[str, tuple[int, int]] = {}
    i = 0
    while i < len(lines):
        m = _CHAIN.match(lines[i])
        i += 1
        if not m:
            continue
        start = i
        while i < len(lines) and lines[i] != "\t}":
            i += 1
        if i == len(lines):
            return None
        first = start
        while first < i and " # handle " not in lines[first]:
            first += 1
        if any(" # handle " not in line for line in lines[first:i]):
            return None
        found[m.group(1)] = (first, i)
    return found


def listed_after(text: str, ops: Iterable[JSON], added: Sequence[tuple[str, int]]) -> str | None:
    """`nft -a list table` text after `ops` ran on the table listed as `text`; `added`: the
    (printed rule, handle) of each insert/add op, in order. None: cannot tell."""
    lines = text.split("\n")
    spans = _chains(lines)
    if spans is None:
        return None
    rules = {name: lines[a:b] for name, (a, b) in spans.items()}
    handles = {
        name: [line.rpartition(" # handle ")[2] for line in chain] for name, chain in rules.items()
    }
    pending = list(added)
    for op in ops:
        name = str(op.get("chain"))
        if name not in rules:
            return None
        chain, known = rules[name], handles[name]
        kind, handle = op.get("op"), op.get("handle")
        at: int | None = None
        if handle is not None:
            if str(handle) not in known:
                return None
            at = known.index(str(handle))
        if kind == "delete":
            if at is None:
                return None
            del chain[at], known[at]
            continue
        if not pending:
            return None
        printed, new = pending.pop(0)
        line = f"\t\t{printed} # handle {new}"
        where = (
            (0 if at is None else at)
            if kind == "insert"
            else (len(chain) if at is None else at + 1)
        )
        chain.insert(where, line)
        known.insert(where, str(new))
    if pending:
        return None
    out: list[str] = []
    last = 0
    for name, (a, b) in sorted(spans.items(), key=lambda item: item[1]):
        out.extend(lines[last:a])
        out.extend(rules[name])
        last = b
    out.extend(lines[last:])
    return "\n".join(out)
