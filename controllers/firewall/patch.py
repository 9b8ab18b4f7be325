"""Incremental repair of a table: the few rules that drifted, put back by handle.

`plan_patch(live, handles, wanted)` answers, for a live table (canonical text and
each chain's rule handles, as firewall.ruleset {handles: true} lists them) and
nft's canonical text of the desired table, the ops of a firewall.apply patch
that turn one into the other — or None, when a whole-table replace is the
answer: the sets, the chains (names, order, heads) or anything the parser does
not know differ, a chain's handles are unknown, no rule stays, or the drift is
large (more ops than max(MIN_OPS, MAX_SHARE of the rules), at most MAX_OPS).

Per chain, the live and desired rule lists are aligned (common head and tail
trimmed, difflib on the rest); each run that differs becomes deletes of the
live rules (by handle) and inserts of the desired ones, anchored on a rule
that stays: `insert` before the next kept rule, or — at the chain's end —
`add` after the previous kept one (in reverse order, each lands right after
the anchor), or a plain `add` (append) in a chain where nothing stays. Rules
are sent as nft's canonical text (what the desired table lists), which nft
prints back unchanged. The result is checked with `apply_ops`, the model of
the ops the effect model simulates with (controllers.firewall.effects):
ops run in order, as the kernel runs them in one transaction; a handle that
is not in the chain is a ValueError (the kernel would refuse the transaction).
Pure; MUST NOT import specs (the effect model imports it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

from contract.vocab.nft import check_rule_text
from controllers.firewall.parse import parse_table

Handles = Mapping[str, Sequence[int]]
Op = dict[str, Any]

MIN_OPS = 16
MAX_SHARE = 0.05
MAX_OPS = 512
NEW = 0  # the handle of a rule the patch adds (nft picks it on commit)


def limit(rules: int) -> int:
    return min(MAX_OPS, max(MIN_OPS, int(rules * MAX_SHARE)))


def plan_patch(live: str, handles: Handles, wanted: str) -> list[Op] | None:
    try:
        old, new = parse_table(live), parse_table(wanted)
    except ValueError:
        return None
    if (old.family, old.name) != (new.family, new.name) or old.unknown or new.unknown:
        return None
    if old.sets != new.sets or [c.name for c in old.chains] != [c.name for c in new.chains]:
        return None
    ops: list[Op] = []
    total = sum(len(c.rules) for c in new.chains)
    for before, after in zip(old.chains, new.chains, strict=True):
        if before.head != after.head or before.unknown or after.unknown:
            return None
        chain_handles = handles.get(before.name)
        if chain_handles is None or len(chain_handles) != len(before.rules):
            return None
        if before.rules != after.rules:
            ops.extend(_chain_ops(before.name, before.rules, chain_handles, after.rules))
        if len(ops) > limit(total):
            return None
    added = sum(1 for op in ops if op["op"] != "delete")
    if not ops or added == total or any(_unsendable(op) for op in ops):
        return None  # nothing drifted, nothing stays (replace it whole), or unsendable
    try:
        if apply_ops(live, handles, ops)[0] != wanted:
            return None
    except ValueError:
        return None
    return ops


def _unsendable(op: Op) -> bool:
    if "rule" not in op:
        return False
    try:
        return bool(check_rule_text(op["rule"]) != op["rule"])
    except ValueError:
        return True


def _chain_ops(
    chain: str, old: Sequence[str], handles: Sequence[int], new: Sequence[str]
) -> list[Op]:
    head = 0
    while head < len(old) and head < len(new) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < len(old) - head and tail < len(new) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    a, b = old[head : len(old) - tail], new[head : len(new) - tail]
    ops: list[Op] = []
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        i1, i2, j1, j2 = i1 + head, i2 + head, j1 + head, j2 + head
        ops.extend({"op": "delete", "chain": chain, "handle": handles[i]} for i in range(i1, i2))
        rules = new[j1:j2]
        if i2 < len(old):  # the next live rule stays: insert before it, in order
            anchor = handles[i2]
            ops.extend({"op": "insert", "chain": chain, "handle": anchor, "rule": r} for r in rules)
        elif i1 > 0:  # the chain's end: after the last rule that stays, in reverse order
            anchor = handles[i1 - 1]
            ops.extend(
                {"op": "add", "chain": chain, "handle": anchor, "rule": r} for r in reversed(rules)
            )
        else:  # nothing stays in this chain
            ops.extend({"op": "add", "chain": chain, "rule": r} for r in rules)
    return ops


def _spans(lines: Sequence[str], handles: Handles) -> dict[str, tuple[int, int]]:
    """Each chain's rule lines (start, end) in a canonical table text: the last
    len(handles[chain]) lines of its block, after at most its base chain head."""
    spans: dict[str, tuple[int, int]] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not (line.startswith("\tchain ") and line.endswith(" {")):
            continue
        name = line[len("\tchain ") : -2]
        start = i
        while i < len(lines) and lines[i] != "\t}":
            i += 1
        if i == len(lines):
            raise ValueError(f"chain {name} is not closed")
        count = len(handles.get(name, ()))
        first = i - count
        if first < start or first - start > 1 or (first > start and " hook " not in lines[start]):
            raise ValueError(f"the rules of chain {name} do not match its handles")
        spans[name] = (first, i)
    return spans


def apply_ops(
    text: str, handles: Handles, ops: Sequence[Mapping[str, Any]]
) -> tuple[str, dict[str, tuple[int, ...]]]:
    """The canonical text and handles after `ops` ran on the table (new rules: handle NEW)."""
    lines = text.split("\n")
    spans = _spans(lines, handles)
    rules = {name: lines[a:b] for name, (a, b) in spans.items()}
    known = {name: list(handles.get(name, ())) for name in spans}
    for number, op in enumerate(ops):
        where = f"op {number}"
        name = op.get("chain")
        if not isinstance(name, str) or name not in rules:
            raise ValueError(f"{where}: no chain {name!r} in the table")
        chain, chain_handles = rules[name], known[name]
        kind, handle = op.get("op"), op.get("handle")
        at: int | None = None
        if handle is not None:
            if isinstance(handle, bool) or not isinstance(handle, int) or handle == NEW:
                raise ValueError(f"{where}: {handle!r} is not a handle")
            try:
                at = chain_handles.index(handle)
            except ValueError:
                raise ValueError(f"{where}: no rule with handle {handle} in chain {name}") from None
        if kind == "delete":
            if at is None:
                raise ValueError(f"{where}: a delete names the rule's handle")
            del chain[at], chain_handles[at]
            continue
        if kind not in ("insert", "add"):
            raise ValueError(f"{where}: unknown op {kind!r}")
        rule = op.get("rule")
        if not isinstance(rule, str) or check_rule_text(rule) != rule:
            raise ValueError(f"{where}: rule {rule!r} is not one statement as nft prints it")
        if kind == "insert":
            position = 0 if at is None else at
        else:
            position = len(chain) if at is None else at + 1
        chain.insert(position, f"\t\t{rule}")
        chain_handles.insert(position, NEW)
    out: list[str] = []
    last = 0
    for name, (a, b) in sorted(spans.items(), key=lambda item: item[1]):
        out.extend(lines[last:a])
        out.extend(rules[name])
        last = b
    out.extend(lines[last:])
    return "\n".join(out), {name: tuple(h) for name, h in known.items()}
