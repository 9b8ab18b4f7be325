"""Which domain runs after which: the declared defaults plus the specs' dependsOn.

The default edges come from the domain declarations the engine is given
(specs.domains.Domains, built by the composition root from
controllers.DEFAULT_DOMAINS): storage before packages before models
(packages may need a mounted filesystem; models live on mounts), network
before firewall (rules name interfaces). `metadata.dependsOn` between
resources adds an edge between their domains. A domain-level cycle is a spec
error. Used by the engine to schedule domains: each runs when the domains it
depends on have finished, independent ones concurrently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise

from specs.base import Resource
from specs.domains import Domains
from specs.errors import SpecError


def dependencies(resources: Iterable[Resource], domains: Domains) -> dict[str, frozenset[str]]:
    """Domain -> domains it waits for; raises SpecError on a domain cycle."""
    deps = {d: set(v) for d, v in domains.dependencies.items()}
    reasons: dict[tuple[str, str], str] = {}
    for resource in resources:
        mine = domains.kind_domain[resource.kind]
        for ref in resource.metadata.depends_on:
            theirs = domains.domain_of(ref)
            if theirs != mine:
                deps[mine].add(theirs)
                reasons.setdefault((mine, theirs), f"{resource.key} dependsOn {ref}")
    cycle = _find_cycle(deps)
    if cycle:
        why = [reasons.get((a, b), f"{a} runs after {b} by default") for a, b in pairwise(cycle)]
        chain = " -> ".join(cycle)
        raise SpecError(
            [f"dependsOn makes domains wait for each other: {chain} ({'; '.join(why)})"]
        )
    return {d: frozenset(v) for d, v in deps.items()}


def _find_cycle(deps: Mapping[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(deps.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(deps):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []
