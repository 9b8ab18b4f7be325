"""Which undeclared packages and repositories a reconcile removes, and for which resource.

Each object removed at most once, by the one rule of reconciler.sdk.removals:
1. the inventory: objects a resource in the set created (`desired.owned`)
   that it no longer declares — and no other resource declares either;
2. pruned resources (`aios apply --prune`): the objects they created;
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
from reconciler.sdk.removals import Removals


@dataclass(frozen=True)
class ToRemove:
    """A package or repository the diff removes: declared absent, or undeclared (from the
    one rule's reconciler.sdk.removals.Removal), with its force and the reason said."""

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


def undeclared(desired: Desired, wanted: Wanted, state: PackagesState) -> list[ToRemove]:
    chosen = Removals(desired, wanted.declared.__contains__)
    out: list[ToRemove] = []
    for found in chosen.inventory:
        if exists(found.object, state):
            how = "is pruned and created" if found.pruned else "created it and no longer declares"
            out.append(ToRemove(found.resource, found.object, why=f"{found.resource} {how} it"))

    def consider(owner: str, obj: str, why: str) -> None:
        if exists(obj, state) and chosen.claim(obj):
            out.append(ToRemove(owner, obj, why=why))

    if wanted.prune:
        owner = wanted.prune[0]
        for repo in state.repositories:
            consider(owner, f"repository:{repo.name}", f"prune: true on {owner}")
        for key in sorted(desired.owned):
            for obj in sorted(desired.owned[key]):
                consider(owner, obj, f"prune: true on {owner}; aios installed it")
    return out
