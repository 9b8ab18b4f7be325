"""The firewall domain's observed state, and the keys and digests everything else shares.

`FirewallState` holds, for the tables one reconcile looks at, their live
canonical text (what `firewall.ruleset` prints: `nft list table` without
handles, counter values removed), whether that listing is the whole ruleset
(`complete`: the prune scope and export need it), and nft's own canonical
form of every declared table (`canonical`, keyed by the digest of the
structured table the planner would send to `firewall.apply`), so that the
effect model can predict the live text after an apply without nft.

Object keys are `nft-table:<family>/<name>`. `table_digest` is the digest of
a structured table (firewall.apply's input form); it is computed from the
data as is (one JSON dump and one sha256), so the no-op path stays linear.
Used by every module of controllers.firewall; MUST NOT import specs (the
effect model imports it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from reconciler.sdk.plan import Frozen, canonical_json

Ref = tuple[str, str]  # (family, name)
OBJECT_PREFIX = "nft-table:"
CACHE_PREFIX = "nft-canon:"
GUARD_PREFIX = "nft-guard:"  # + the guard's code digest + the canonical text's digest
# Bump when the structured form the planner sends (or its rendering) changes meaning:
# it is part of every digest, so cached canonical texts of the old form are never used.
FORM_VERSION = 1


ChainHandles = tuple[tuple[str, tuple[int, ...]], ...]  # (chain, its rule handles in order)


class LiveTable(Frozen):
    """A table that exists, as canonical text, and its chains' rule handles when listed
    (what a patch names; 0: a rule a simulated patch added, its handle not known yet)."""

    family: str
    name: str
    text: str
    handles: ChainHandles = ()


class Canonical(Frozen):
    """nft's canonical text of a desired table, loaded in a throwaway namespace, and the
    lockout guard's verdict on it when observe knew it (`guarded`; `lockout` None: safe)."""

    digest: str  # table_digest of the structured table
    family: str
    name: str
    text: str
    guarded: bool = False
    lockout: str | None = None


class FirewallState(Frozen):
    """Live tables (sorted by family, name) and the desired tables' canonical forms."""

    tables: tuple[LiveTable, ...] = ()
    complete: bool = False  # True: `tables` is every table of the ruleset
    canonical: tuple[Canonical, ...] = ()  # sorted by digest

    def live(self) -> dict[Ref, str]:
        return {(t.family, t.name): t.text for t in self.tables}

    def handles(self) -> dict[Ref, dict[str, tuple[int, ...]]]:
        """Per live table whose handles were listed, each chain's rule handles."""
        return {(t.family, t.name): dict(t.handles) for t in self.tables if t.handles}

    def canon(self) -> dict[str, Canonical]:
        return {c.digest: c for c in self.canonical}


def object_key(ref: Ref) -> str:
    return f"{OBJECT_PREFIX}{ref[0]}/{ref[1]}"


def parse_object_key(key: str) -> Ref | None:
    """(family, name) of an `nft-table:F/N` key; None for keys of other kinds."""
    if not key.startswith(OBJECT_PREFIX):
        return None
    family, sep, name = key[len(OBJECT_PREFIX) :].partition("/")
    return (family, name) if sep and family and name else None


def ref_text(ref: Ref) -> str:
    return f"{ref[0]}/{ref[1]}"


def table_ref(table: Mapping[str, Any]) -> Ref:
    """(family, name) of a structured table (family defaults to inet, as in the tool)."""
    return (str(table.get("family", "inet")), str(table["name"]))


def table_digest(table: Mapping[str, Any]) -> str:
    """Digest of a structured table (firewall.apply's input form), as given.

    Each chain's rule list is hashed as one newline-joined string (rules are
    single lines; a list where that would be ambiguous is hashed as JSON), so
    a 10,000-rule table costs one join and one sha256, not a JSON walk.
    """
    chains = table.get("chains")
    if isinstance(chains, list):
        table = {
            **table,
            "chains": [
                {**c, "rules": _rules_digest(c["rules"])}
                if isinstance(c, Mapping) and "rules" in c
                else c
                for c in chains
            ],
        }
    text = canonical_json({"form": FORM_VERSION, "table": table})
    return hashlib.sha256(text.encode()).hexdigest()


def _rules_digest(rules: object) -> str:
    if isinstance(rules, list) and rules:
        try:
            joined = "\n".join(rules)
        except TypeError:
            joined = None
        if joined is not None and joined.count("\n") == len(rules) - 1:
            return "lines:" + hashlib.sha256(joined.encode()).hexdigest()
    return "json:" + hashlib.sha256(canonical_json(rules).encode()).hexdigest()


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build_state(
    live: Mapping[Ref, str],
    canonical: Mapping[str, Canonical],
    *,
    complete: bool,
    handles: Mapping[Ref, Mapping[str, tuple[int, ...]]] | None = None,
) -> FirewallState:
    """A state with its lists in the one deterministic order."""
    known = handles or {}
    return FirewallState(
        tables=tuple(
            LiveTable(
                family=r[0],
                name=r[1],
                text=live[r],
                handles=tuple(known.get(r, {}).items()),
            )
            for r in sorted(live)
        ),
        complete=complete,
        canonical=tuple(canonical[d] for d in sorted(canonical)),
    )
