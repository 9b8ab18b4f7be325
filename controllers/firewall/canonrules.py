"""nft's canonical text of a table assembled from cached pieces: its skeleton and its rules.

controllers.firewall.observe.canonical_forms asks the registry's
firewall.canonicalize for every desired table whose digest it has not seen.
Loading a 1,000-rule table into a throwaway namespace and listing it costs
nft ~65 ms (and the registry ~35 ms more), paid again for every edit of one
rule. The canonical listing is regular, though: a table's sets and chain heads
(its *skeleton*), then in each chain block one line per rule, each a function
of the rule's own text and the skeleton it lives in (the sets it names, the
family). So canonical_forms caches, per skeleton digest, the skeleton's
listing and a map rule text -> canonical line, and after a one-rule edit asks
nft only for a table of the skeleton plus the rules it has not seen
(`partial`), then `assemble`s the whole text. Any surprise while cutting a
listing into pieces (a chain missing, fewer lines than rules sent) makes
`split` answer None and the caller canonicalizes the whole table instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.firewall.state import table_digest

SKELETON_PREFIX = "nft-skel:"
RULES_PREFIX = "nft-rules:"
MAX_RULES = 50_000  # remembered canonical lines per skeleton

_CHAIN = re.compile(r"^\tchain (\S+) \{$")


def skeleton(table: Mapping[str, Any]) -> dict[str, Any]:
    """The table without its rules (sets and chain heads only)."""
    out = dict(table)
    out["chains"] = [{**c, "rules": []} for c in table.get("chains", ())]
    return out


def skeleton_digest(table: Mapping[str, Any]) -> str:
    return table_digest(skeleton(table))


def chain_rules(table: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    return [(str(c["name"]), [str(r) for r in c.get("rules", ())]) for c in table["chains"]]


def partial(table: Mapping[str, Any], missing: set[str]) -> dict[str, Any]:
    """The skeleton with only the `missing` rules, each once, in their chains' order."""
    out = skeleton(table)
    seen: set[str] = set()
    for chain, source in zip(out["chains"], table["chains"], strict=True):
        keep = []
        for rule in source.get("rules", ()):
            if rule in missing and rule not in seen:
                seen.add(rule)
                keep.append(rule)
        chain["rules"] = keep
    return out


def split(text: str, sent: Sequence[tuple[str, list[str]]]) -> tuple[str, dict[str, str]] | None:
    """A listing of a table whose chains held `sent` rules -> (skeleton text, rule ->
    canonical line); None when the listing does not cut as expected."""
    lines = text.split("\n")
    wanted = dict(sent)
    out: list[str] = []
    found: dict[str, str] = {}
    body: list[str] | None = None
    chain = ""
    seen: set[str] = set()
    for line in lines:
        match = _CHAIN.match(line)
        if match and body is None:
            chain = match.group(1)
            if chain not in wanted or chain in seen:
                return None
            seen.add(chain)
            out.append(line)
            body = []
            continue
        if body is not None:
            if line != "\t}":
                body.append(line)
                continue
            rules = wanted[chain]
            if len(body) < len(rules) or any(not b.startswith("\t\t") for b in body):
                return None
            head, listed = body[: len(body) - len(rules)], body[len(body) - len(rules) :]
            for rule, canon in zip(rules, listed, strict=True):
                found[rule] = canon[2:]
            out.extend(head)
            out.append(line)
            body = None
            continue
        out.append(line)
    if body is not None or seen != set(wanted):
        return None
    return "\n".join(out), found


def assemble(skeleton_text: str, chains: Sequence[tuple[str, list[str]]]) -> str | None:
    """The skeleton's listing with each chain's canonical rule lines put back in."""
    wanted = dict(chains)
    out: list[str] = []
    current: str | None = None
    placed: set[str] = set()
    for line in skeleton_text.split("\n"):
        match = _CHAIN.match(line)
        if match:
            current = match.group(1)
            if current not in wanted:
                return None
        elif line == "\t}" and current is not None:
            out.extend("\t\t" + r for r in wanted[current])
            placed.add(current)
            current = None
        out.append(line)
    return "\n".join(out) if placed == set(wanted) else None


def load_rules(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def dump_rules(rules: Mapping[str, str]) -> str:
    if len(rules) > MAX_RULES:  # keep the newest half (dicts keep insertion order)
        rules = dict(list(rules.items())[-MAX_RULES // 2 :])
    return json.dumps(rules, separators=(",", ":"))
