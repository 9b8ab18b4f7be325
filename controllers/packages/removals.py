"""Which undeclared packages and repositories a reconcile removes, and for which resource.

Three sources, each object removed at most once (first one wins):
1. pruned resources (`aios apply --prune`): the objects they created;
2. the inventory: objects a resource created (`desired.owned`) that it no
   longer declares — and no other resource declares either;
3. `prune: true` on a resource widens that, conservatively: every
   repository in a managed file (apt: sources.list.d/aios-<name>.list; apk:
   the managed block) that no resource declares, and every package in the
   target's inventory (installed by aios for ANY Packages resource, also
   one no longer in the set) that no resource declares. Packages aios did
   not install — the base system, dependencies apt pulled in, packages an
   operator installed by hand — are never in that scope. The removals are
   attributed to the first (by key) resource with `prune: true`.
Only objects that exist are removed. Used by controllers.packages.diff.
"""

from __future__ import annotations

from dataclasses import dataclass

from controllers.packages.desired import Wanted
from controllers.packages.state import PackagesState
from reconciler.sdk.controller import Desired


@dataclass(frozen=True)
class Removal:
    resource: str
    object: str  # package:<name> | repository:<name>
    forced: bool = False
    why: str = ""


def exists(obj: str, state: PackagesState) -> bool:
    kind, name = obj.split(":", 1)
    if kind == "package":
        return state.package(name) is not None
    if kind == "repository":
        return state.repository(name) is not None
    return False


def undeclared(desired: Desired, wanted: Wanted, state: PackagesState) -> list[Removal]:
    declared = wanted.declared
    chosen: dict[str, Removal] = {}

    def consider(resource: str, obj: str, why: str) -> None:
        if obj not in declared and obj not in chosen and exists(obj, state):
            chosen[obj] = Removal(resource, obj, why=why)

    for key, objects in sorted(desired.pruned.items()):
        for obj in sorted(objects):
            consider(key, obj, f"{key} is pruned and created it")
    live = {r.key for r in desired.resources}
    for key, objects in sorted(desired.owned.items()):
        if key in live:
            for obj in sorted(objects):
                consider(key, obj, f"{key} created it and no longer declares it")
    if wanted.prune:
        owner = wanted.prune[0]
        for repo in state.repositories:
            consider(owner, f"repository:{repo.name}", f"prune: true on {owner}")
        for key in sorted(desired.owned):
            for obj in sorted(desired.owned[key]):
                consider(owner, obj, f"prune: true on {owner}; aios installed it")
    return list(chosen.values())
