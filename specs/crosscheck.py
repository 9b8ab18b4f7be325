"""Checks across resources: duplicates, conflicting claims, dependsOn.

Called by specs.loader once every document is validated, with the resources
in load order (files in the order given, directories walked sorted,
documents in file order). Each problem is one Issue at the *second*
occurrence, naming the first place:

- the same Kind/name twice: at the second `metadata.name`;
- two resources (or two items of one) claiming the same object (interface,
  nft table, package, mount target, model name or path, route, rule, ...;
  see `Resource.claims()`): at the second claim's field;
- `dependsOn` naming a resource that is not in the set: at that list item;
- a dependsOn cycle: one issue per cycle, at the dependsOn item of the
  cycle's first resource (by Kind/name), spelled `A -> B -> A`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from specs.base import Loc, Resource
from specs.errors import Issue
from specs.positions import Entry, field_path, locate

_CLAIM_WORDS = {
    "interface": "interface",
    "nft-table": "nft table",
    "package": "package",
    "repository": "repository",
    "mount": "mount target",
    "model": "model",
    "model-path": "model path",
    "filesystem": "filesystem on",
    "directory": "directory",
    "swapfile": "swap file",
    "route": "route",
    "rule": "policy rule",
    "sysctl": "sysctl",
}


@dataclass(frozen=True, slots=True)
class Placed:
    """A validated resource and the document it came from."""

    resource: Resource
    path: str
    root: Entry

    def at(self, loc: Loc) -> tuple[int, int]:
        return locate(self.root, loc)

    def where(self, loc: Loc) -> str:
        line, col = self.at(loc)
        return f"{self.path}:{line}:{col}"

    def issue(self, loc: Loc, message: str) -> Issue:
        line, col = self.at(loc)
        return Issue(self.path, line, col, self.resource.key, field_path(loc), message)


def claim_words(key: str) -> str:
    """`interface:br0` -> `interface br0`, for messages."""
    kind, _, what = key.partition(":")
    if kind == "dns":
        return "the DNS configuration"
    return f"{_CLAIM_WORDS.get(kind, kind)} {what}"


def check(placed: Sequence[Placed], *, known: Iterable[str] = ()) -> list[Issue]:
    """Every cross-resource problem. `known`: keys of documents that failed
    validation (so a dependsOn naming them is not reported as missing)."""
    issues: list[Issue] = []
    first: dict[str, Placed] = {}
    for item in placed:
        key = item.resource.key
        if key in first:
            where = first[key].where(("metadata", "name"))
            issues.append(item.issue(("metadata", "name"), f"{key} is already defined at {where}"))
        else:
            first[key] = item
    unique = list(first.values())
    issues += _claim_conflicts(unique)
    issues += _dependencies(unique, set(first) | set(known))
    return issues


def _claim_conflicts(placed: Sequence[Placed]) -> list[Issue]:
    issues = []
    owners: dict[str, tuple[Placed, Loc]] = {}
    for item in placed:
        for claim in item.resource.claims():
            if claim.key not in owners:
                owners[claim.key] = (item, claim.loc)
                continue
            owner, loc = owners[claim.key]
            message = (
                f"{claim_words(claim.key)} is already claimed by {owner.resource.key} "
                f"at {owner.where(loc)}"
            )
            issues.append(item.issue(claim.loc, message))
    return issues


def _dependencies(placed: Sequence[Placed], existing: set[str]) -> list[Issue]:
    issues = []
    by_key = {item.resource.key: item for item in placed}
    graph: dict[str, list[str]] = {}
    for item in placed:
        refs = item.resource.metadata.depends_on
        for i, ref in enumerate(refs):
            if ref not in existing:
                loc = ("metadata", "dependsOn", i)
                issues.append(item.issue(loc, f"dependsOn {ref}: no such resource"))
        graph[item.resource.key] = [ref for ref in refs if ref in by_key]
    for cycle in find_cycles(graph):
        start = by_key[cycle[0]]
        index = start.resource.metadata.depends_on.index(cycle[1])
        text = " -> ".join(cycle)
        issues.append(start.issue(("metadata", "dependsOn", index), f"dependsOn cycle: {text}"))
    return issues


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, each as
    [first, ..., first] starting at the component's smallest key."""
    cycles = []
    for component in _components(graph):
        start = min(component)
        path = _shortest_cycle(graph, start, component)
        if path:
            cycles.append(path)
    return sorted(cycles)


def _shortest_cycle(graph: dict[str, list[str]], start: str, within: set[str]) -> list[str]:
    parents: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph.get(node, ()):
            if nxt not in within:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    return []


def _components(graph: dict[str, list[str]]) -> list[set[str]]:
    """Strongly connected components (iterative Tarjan; no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(graph.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                out.append(component)
    return out
