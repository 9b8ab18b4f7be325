"""The canonical text assembled from cached pieces equals nft's own, on a real registry.

controllers.firewall.canonrules lets observe ask firewall.canonicalize only for
the rules an edit introduced. For tables from the examples and the 1,000-rule
peer table, and edits of each kind (a rule changed, added, removed, moved, a
duplicate, a set-referencing rule, a chain head changed), the text observe
builds with a warm cache must be byte-equal to canonicalizing the edited table
whole; and the warm call must send only the new rules.
"""

from __future__ import annotations

import asyncio
import copy
import sys
from pathlib import Path
from typing import Any

import pytest

from controllers.firewall.desired import structured
from controllers.firewall.observe import CANONICALIZE, canonical_forms
from controllers.firewall.state import table_digest
from reconciler.client import RegistryClient
from specs.loader import load_paths
from tests.system.engine_support import REPO, Box, box

__all__ = ["box"]
sys.path.insert(0, str(REPO / "bench" / "peers"))


class Reader:
    """A StateReader over a real RegistryClient with an in-memory cache (the double is
    the cache only), recording what firewall.canonicalize was sent."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client
        self.cache: dict[str, str] = {}
        self.sent: list[list[dict[str, Any]]] = []

    async def read(self, tool: str, args: dict[str, Any]) -> Any:
        if tool == CANONICALIZE:
            self.sent.append(copy.deepcopy(args["tables"]))
        return (await self.client.call(tool, args, reason="test")).output

    def cache_get(self, key: str) -> str | None:
        return self.cache.get(key)

    def cache_put(self, key: str, value: str) -> None:
        self.cache[key] = value

    def has_tool(self, tool: str) -> bool:
        return True


def tables() -> list[dict[str, Any]]:
    import gen_spec

    found = []
    for example in ("quickstart", "edge-router"):
        specset = load_paths([REPO / "examples" / example])
        for resource in specset.by_kind("Firewall"):
            found += [structured(t) for t in resource.spec.tables]  # type: ignore[attr-defined]
    peers = Path(gen_spec.__file__)
    assert peers.exists()
    chain = {"name": "input", "type": "filter", "hook": "input", "priority": "filter",
             "policy": "drop", "rules": [*gen_spec.FIXED_RULES, *gen_spec.rules(1000)]}  # fmt: skip
    found.append({"family": "inet", "name": "peers", "chains": [chain]})
    return found


def edits(table: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    rules = table["chains"][0]["rules"]
    changed = copy.deepcopy(table)
    changed["chains"][0]["rules"][len(rules) // 2] = "tcp dport 4242 counter accept"
    out.append(("changed", changed))
    added = copy.deepcopy(table)
    added["chains"][0]["rules"].insert(1, "ip saddr 192.0.2.0/24 tcp dport { 1, 2, 3 } drop")
    out.append(("added", added))
    removed = copy.deepcopy(table)
    del removed["chains"][0]["rules"][0]
    out.append(("removed", removed))
    moved = copy.deepcopy(table)
    moved["chains"][0]["rules"].append(moved["chains"][0]["rules"].pop(0))
    out.append(("moved", moved))
    dup = copy.deepcopy(table)
    dup["chains"][0]["rules"].append(rules[-1])
    out.append(("duplicate", dup))
    if table.get("sets"):
        uses = copy.deepcopy(table)
        uses["chains"][0]["rules"].append(f"ip saddr @{table['sets'][-1]['name']} drop")
        out.append(("set rule", uses))
    head = copy.deepcopy(table)
    head["chains"][0]["policy"] = "accept" if head["chains"][0].get("policy") == "drop" else "drop"
    out.append(("chain head", head))
    return out


@pytest.mark.parametrize("index", range(len(tables())))
def test_assembled_canonical_text_is_nfts_own(box: Box, index: int) -> None:
    table = tables()[index]

    async def go() -> None:
        async with RegistryClient(f"unix://{box.record.socket}") as client:
            warm = Reader(client)
            await canonical_forms(warm, [(table, table_digest(table))])
            for label, edited in edits(table):
                digest = table_digest(edited)
                warm.sent.clear()
                got = (await canonical_forms(warm, [(edited, digest)]))[digest].text
                cold = Reader(client)
                want = (await canonical_forms(cold, [(edited, digest)]))[digest].text
                assert got == want, f"{label}: assembled text differs from nft's"
                sent_rules = sum(
                    len(c["rules"]) for call in warm.sent for t in call for c in t["chains"]
                )
                full_rules = sum(len(c["rules"]) for c in edited["chains"])
                if label in ("changed", "added", "set rule") and full_rules > 10:
                    assert sent_rules <= 2, f"{label}: sent {sent_rules} of {full_rules} rules"
                if label in ("removed", "moved", "duplicate"):
                    assert warm.sent == [], f"{label}: every rule was known, yet nft was asked"

    asyncio.run(go())
