"""Short human summaries of tables and of the difference between two of their texts.

`summary(text)` says "3 chains, 12 rules, 2 sets"; `short(text)` is the
value a Change carries ("12 rules #1a2b3c4d5e6f": a count and the text's
digest, never the text); `difference(live, desired)` describes what a
replace changes, chain by chain — "+3 -1 rules in chain input", "chain
input: policy accept → drop", "+set blocklist" — followed, when at most
three rule lines differ, by the lines themselves (`+ tcp dport 80 accept`).
Rules are compared as multisets per chain (linear), so a pure reordering
reads "rules reordered in chain X". Pure; called by the diff only for
tables that differ (the no-op path never parses). MUST NOT import specs.
"""

from __future__ import annotations

from collections import Counter

from controllers.firewall.parse import ParsedChain, ParsedTable, parse_table
from controllers.firewall.state import text_digest

MAX_LINES = 3
MAX_DETAIL = 400


def _parsed(text: str) -> ParsedTable | None:
    try:
        return parse_table(text)
    except ValueError:
        return None


def summary(text: str) -> str:
    table = _parsed(text)
    if table is None:
        return f"{len(text.splitlines())} lines"
    rules = sum(len(c.rules) for c in table.chains)
    parts = [_count(len(table.chains), "chain"), _count(rules, "rule")]
    if table.sets:
        parts.append(_count(len(table.sets), "set"))
    return ", ".join(parts)


def short(text: str) -> str:
    table = _parsed(text)
    rules = sum(len(c.rules) for c in table.chains) if table else len(text.splitlines())
    return f"{_count(rules, 'rule')} #{text_digest(text)[:12]}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def difference(live: str, desired: str) -> str:
    old, new = _parsed(live), _parsed(desired)
    if old is None or new is None:
        return f"{len(live.splitlines())} → {len(desired.splitlines())} lines"
    parts: list[str] = []
    lines: list[str] = []
    _sets(old, new, parts)
    old_chains = {c.name: c for c in old.chains}
    new_chains = {c.name: c for c in new.chains}
    for chain in new.chains:
        before = old_chains.get(chain.name)
        if before is None:
            parts.append(f"+chain {chain.name} ({_count(len(chain.rules), 'rule')})")
            lines.extend(f"+ {r}" for r in chain.rules)
        else:
            _chain(before, chain, parts, lines)
    for chain in old.chains:
        if chain.name not in new_chains:
            parts.append(f"-chain {chain.name} ({_count(len(chain.rules), 'rule')})")
            lines.extend(f"- {r}" for r in chain.rules)
    if not parts:
        parts.append("same chains, sets and rules; other lines differ")
    text = "; ".join(parts)
    if 0 < len(lines) <= MAX_LINES:
        text += ": " + ", ".join(lines)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _sets(old: ParsedTable, new: ParsedTable, parts: list[str]) -> None:
    before = {s.name: s for s in old.sets}
    after = {s.name: s for s in new.sets}
    for name, spec in after.items():
        if name not in before:
            parts.append(f"+set {name}")
        elif spec != before[name]:
            gone = len(set(before[name].elements) - set(spec.elements))
            came = len(set(spec.elements) - set(before[name].elements))
            parts.append(f"set {name}: +{came} -{gone} elements" if came or gone else f"set {name}")
    parts.extend(f"-set {name}" for name in before if name not in after)


def _chain(old: ParsedChain, new: ParsedChain, parts: list[str], lines: list[str]) -> None:
    if old.head != new.head:
        if (old.policy, old.type, old.hook) != (None, None, None) and _same_but_policy(old, new):
            parts.append(f"chain {new.name}: policy {old.policy} → {new.policy}")
        else:
            parts.append(f"chain {new.name}: {old.head or 'regular'} → {new.head or 'regular'}")
    if old.rules == new.rules:
        return
    before, after = Counter(old.rules), Counter(new.rules)
    added, removed = after - before, before - after
    if not added and not removed:
        parts.append(f"rules reordered in chain {new.name}")
        return
    parts.append(f"+{sum(added.values())} -{sum(removed.values())} rules in chain {new.name}")
    lines.extend(f"+ {r}" for r in added.elements())
    lines.extend(f"- {r}" for r in removed.elements())


def _same_but_policy(old: ParsedChain, new: ParsedChain) -> bool:
    return (old.type, old.hook, old.priority, old.device) == (
        new.type,
        new.hook,
        new.priority,
        new.device,
    )
