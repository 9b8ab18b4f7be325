"""Export the live ruleset as Firewall spec documents.

One document per table, named `<family>-<name>` (lowercased, other
characters as '-', de-duplicated), whose spec holds that one table as read
back from its canonical text: named sets (type, flags, elements, comment)
and chains (type, hook, priority, policy, device for base chains; rules as
nft prints them, one string each). Applying the documents to the same
machine plans nothing: nft's canonical form of each exported table is the
text it was read from. Tables the spec language cannot express — maps,
named counters or quotas, flowtables, table flags or comments, chain
comments, set timeouts or sizes, concatenated set types, bridge priority
names — are left out rather than exported wrong (each table is validated
with the spec model first). Used by the controller's export().
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from contract.tooldef import JSON
from controllers.firewall.parse import ParsedChain, ParsedSet, ParsedTable, parse_table
from controllers.firewall.state import FirewallState
from specs.base import API_VERSION
from specs.firewall import Table


def export(state: FirewallState) -> list[JSON]:
    documents: list[JSON] = []
    names: set[str] = set()
    for live in state.tables:
        table = exported_table(live.text)
        if table is None:
            continue
        name = _unique(_doc_name(live.family, live.name), names)
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "Firewall",
                "metadata": {"name": name},
                "spec": {"tables": [table]},
            }
        )
    return documents


def exported_table(text: str) -> JSON | None:
    """The spec form of one table's canonical text, or None if specs cannot express it."""
    try:
        parsed = parse_table(text)
    except ValueError:
        return None
    if _unexpressible(parsed):
        return None
    table: JSON = {"family": parsed.family, "name": parsed.name}
    if parsed.sets:
        table["sets"] = [_set(s) for s in parsed.sets]
    table["chains"] = [_chain(c) for c in parsed.chains]
    try:
        Table.model_validate(table)
    except (ValidationError, ValueError):
        return None
    return table


def _unexpressible(table: ParsedTable) -> bool:
    return bool(
        table.unknown or any(s.unknown for s in table.sets) or any(c.unknown for c in table.chains)
    )


def _set(spec: ParsedSet) -> JSON:
    out: JSON = {"name": spec.name, "type": spec.type}
    if spec.flags:
        out["flags"] = list(spec.flags)
    if spec.elements:
        out["elements"] = [_element(spec.type, e) for e in spec.elements]
    if spec.comment is not None:
        out["comment"] = spec.comment
    return out


def _element(set_type: str, element: str) -> str | int:
    if set_type == "ifname":
        return element.strip('"')
    if set_type == "inet_service" and element.isdigit():
        return int(element)
    return element


def _chain(chain: ParsedChain) -> JSON:
    out: JSON = {"name": chain.name}
    if chain.hook is not None:
        out["type"] = chain.type
        out["hook"] = chain.hook
        if chain.device is not None:
            out["device"] = chain.device
        out["priority"] = _priority(chain.priority or "")
        if chain.policy is not None:
            out["policy"] = chain.policy
    if chain.rules:
        out["rules"] = list(chain.rules)
    return out


def _priority(text: str) -> int | str:
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _doc_name(family: str, name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", f"{family}-{name}".lower()).strip("-")
    return slug[:63].rstrip("-") or "table"


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        suffix = f"-{n}"
        candidate = name[: 63 - len(suffix)] + suffix
        n += 1
    taken.add(candidate)
    return candidate
