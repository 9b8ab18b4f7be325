"""Observe the firewall: one ruleset listing, and nft's canonical form of the desired tables.

Reads, per reconcile:
  1. ONE `firewall.ruleset {tables, format: text}` call for the tables the
     resources declare, the inventory owns and pruned resources created —
     or without `tables` (the whole ruleset) when a resource has
     `prune: true` or when nothing is declared at all (export, get);
  2. for every declared present table, its structured form's digest
     (state.table_digest) and nft's canonical text of it from the reader's
     persistent cache (`nft-canon:<digest>`); the tables the cache misses
     go to ONE `firewall.canonicalize` call (nft loads them in a throwaway
     namespace), and their texts are cached; so is the lockout guard's verdict on
     each text (`nft-guard:<guard code>:<text digest>`).
So a no-op reconcile is one listing plus cache hits. Used by
controllers.firewall.controller.
"""

from __future__ import annotations

import asyncio
import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from controllers.firewall import canonrules, guard, parse, rules
from controllers.firewall.desired import compiled, declared, pruning
from controllers.firewall.guard import lockout_of
from controllers.firewall.state import (
    CACHE_PREFIX,
    GUARD_PREFIX,
    Canonical,
    FirewallState,
    Ref,
    build_state,
    parse_object_key,
    table_ref,
    text_digest,
)
from reconciler.sdk.controller import Desired, StateReader
from reconciler.sdk.errors import ToolFailed

RULESET = "firewall.ruleset"
CANONICALIZE = "firewall.canonicalize"


def wanted_refs(desired: Desired) -> list[Ref] | None:
    """Tables to list (sorted), or None for the whole ruleset."""
    if pruning(desired) is not None:
        return None
    refs = set(declared(desired))
    for objects in (*desired.owned.values(), *desired.pruned.values()):
        refs.update(r for r in map(parse_object_key, objects) if r is not None)
    if not refs and not desired.resources and not desired.owned and not desired.pruned:
        return None  # nothing declared: export / get want everything
    return sorted(refs)


async def observe(reader: StateReader, desired: Desired) -> FirewallState:
    refs = wanted_refs(desired)
    # the live listing and nft's canonical form of a changed spec are independent reads
    output, canonical = await asyncio.gather(
        read_live(reader, refs), canonical_forms(reader, desired_tables(desired))
    )
    return build_state(
        parse_ruleset(output), canonical, complete=refs is None, handles=parse_handles(output)
    )


async def read_live(reader: StateReader, refs: list[Ref] | None) -> dict[str, Any]:
    """firewall.ruleset's output for `refs` (None: every table), with rule handles."""
    if refs == []:
        return {}
    args: dict[str, Any] = {"format": "text", "handles": True}
    if refs is not None:
        args["tables"] = [{"family": f, "name": n} for f, n in refs]
    return await reader.read(RULESET, args)


def parse_ruleset(output: dict[str, Any]) -> dict[Ref, str]:
    """firewall.ruleset's output -> text of every existing table."""
    live: dict[Ref, str] = {}
    for entry in output.get("tables", ()):
        if entry.get("exists") and isinstance(entry.get("text"), str):
            live[(str(entry["family"]), str(entry["name"]))] = entry["text"]
    return live


def parse_handles(output: dict[str, Any]) -> dict[Ref, dict[str, tuple[int, ...]]]:
    """firewall.ruleset's output -> each chain's rule handles per table (when listed)."""
    found: dict[Ref, dict[str, tuple[int, ...]]] = {}
    for entry in output.get("tables", ()):
        chains = entry.get("handles")
        if not entry.get("exists") or not isinstance(chains, dict):
            continue
        try:
            found[(str(entry["family"]), str(entry["name"]))] = {
                str(c): tuple(int(h) for h in str(hs).split()) for c, hs in chains.items()
            }
        except ValueError:
            continue  # unreadable: no patch for this table
    return found


def desired_tables(desired: Desired) -> list[tuple[dict[str, Any], str]]:
    """Structured form and digest of every declared table that should exist."""
    return [compiled(t) for _, t in declared(desired).values() if t.state == "present"]


async def canonical_forms(
    reader: StateReader, tables: list[tuple[dict[str, Any], str]]
) -> dict[str, Canonical]:
    """nft's canonical text of every desired table: cached by digest; else assembled
    from the cached skeleton and rule lines (controllers.firewall.canonrules), asking
    firewall.canonicalize only for the rules not seen before; else the whole table."""
    found: dict[str, Canonical] = {}
    asks: list[_Ask] = []
    for table, digest in tables:
        family, name = table_ref(table)
        text = reader.cache_get(CACHE_PREFIX + digest)
        if text is None:
            text, ask = _from_pieces(reader, table, digest)
            if ask is not None:
                asks.append(ask)
                continue
        found[digest] = Canonical(digest=digest, family=family, name=name, text=text)
    again: list[_Ask] = []
    for ask, listed in await _canonicalize(reader, asks):
        text = ask.take(reader, listed)
        if text is None:  # the pieces did not fit: the whole table, once more
            again.append(_Ask(ask.table, ask.digest, ask.table, ask.skeleton, ask.rules))
        else:
            found[ask.digest] = _remember(reader, ask, text)
    for ask, listed in await _canonicalize(reader, again):
        found[ask.digest] = _remember(reader, ask, listed)
    return {d: guarded(reader, c) for d, c in found.items()}


class _Ask:
    """One table to canonicalize: `send` is the table itself or its partial form."""

    def __init__(
        self,
        table: dict[str, Any],
        digest: str,
        send: dict[str, Any],
        skeleton: str,
        rules: dict[str, str],
    ) -> None:
        self.table, self.digest, self.send = table, digest, send
        self.skeleton, self.rules = skeleton, rules

    def take(self, reader: StateReader, listed: str) -> str | None:
        """The whole table's text from nft's listing of `send` (and the pieces cached)."""
        pieces = canonrules.split(listed, canonrules.chain_rules(self.send))
        if pieces is not None:
            skeleton_text, lines = pieces
            self.rules.update(lines)
            reader.cache_put(canonrules.SKELETON_PREFIX + self.skeleton, skeleton_text)
            reader.cache_put(
                canonrules.RULES_PREFIX + self.skeleton, canonrules.dump_rules(self.rules)
            )
        if self.send is self.table:
            return listed
        if pieces is None:
            return None
        return canonrules.assemble(pieces[0], self._lines())

    def _lines(self) -> list[tuple[str, list[str]]]:
        return [(c, [self.rules[r] for r in rs]) for c, rs in canonrules.chain_rules(self.table)]


def _from_pieces(
    reader: StateReader, table: dict[str, Any], digest: str
) -> tuple[str, None] | tuple[None, _Ask]:
    skeleton = canonrules.skeleton_digest(table)
    skeleton_text = reader.cache_get(canonrules.SKELETON_PREFIX + skeleton)
    rules = canonrules.load_rules(reader.cache_get(canonrules.RULES_PREFIX + skeleton))
    chains = canonrules.chain_rules(table)
    missing = {r for _, rs in chains for r in rs if r not in rules}
    if skeleton_text is not None and not missing:
        text = canonrules.assemble(skeleton_text, [(c, [rules[r] for r in rs]) for c, rs in chains])
        if text is not None:
            reader.cache_put(CACHE_PREFIX + digest, text)
            return text, None
    send = canonrules.partial(table, missing) if skeleton_text is not None else table
    return None, _Ask(table, digest, send, skeleton, rules)


async def _canonicalize(reader: StateReader, asks: list[_Ask]) -> list[tuple[_Ask, str]]:
    if not asks:
        return []
    output = await reader.read(CANONICALIZE, {"tables": [a.send for a in asks]})
    texts = {(str(t["family"]), str(t["name"])): t["text"] for t in output.get("tables", ())}
    out = []
    for ask in asks:
        ref = table_ref(ask.table)
        if ref not in texts or not isinstance(texts[ref], str):
            raise ToolFailed(f"{CANONICALIZE} returned no text for table {ref[0]}/{ref[1]}")
        out.append((ask, str(texts[ref])))
    return out


def _remember(reader: StateReader, ask: _Ask, text: str) -> Canonical:
    reader.cache_put(CACHE_PREFIX + ask.digest, text)
    family, name = table_ref(ask.table)
    return Canonical(digest=ask.digest, family=family, name=name, text=text)


def guarded(reader: StateReader, canonical: Canonical) -> Canonical:
    """The canonical form with the lockout guard's verdict, from the reader's persistent
    cache (keyed by the guard's code and the text: walking a 10,000-rule chain costs
    ~50 ms, and every `aios` command is a fresh process) or computed and cached."""
    key = f"{GUARD_PREFIX}{guard_code()}:{text_digest(canonical.text)}"
    verdict = reader.cache_get(key)
    if verdict is None:
        try:
            reason = lockout_of(canonical.text)
        except ValueError:
            return canonical  # not one table's text: the diff says so
        verdict = "lockout:" + reason if reason else "safe"
        reader.cache_put(key, verdict)
    reason = verdict.removeprefix("lockout:") if verdict.startswith("lockout:") else None
    return canonical.model_copy(update={"guarded": True, "lockout": reason})


@lru_cache(maxsize=1)
def guard_code() -> str:
    """Digest of the guard's source (guard, rules, parse): a changed guard judges afresh."""
    h = hashlib.sha256()
    for module in (guard, rules, parse):
        h.update(Path(str(module.__file__)).read_bytes())
    return h.hexdigest()[:16]
