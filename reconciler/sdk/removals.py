"""Which objects aios created that no resource declares any more: one rule for every domain.

`Removals(desired, declared)` chooses, each object at most once, the
undeclared objects a domain's diff removes (or, where the domain never
deletes implicitly — model weights, non-empty directories, images —
keeps with a no-op saying why). `declared(obj)` says whether any resource
of the domain declares the object (in any state); a declared object is
never a candidate. The candidates, in this order (the first claim wins):

1. `desired.owned` of resources still in the set: objects aios created for
   a resource that it no longer declares (`Removal.pruned` False);
2. `desired.pruned`: objects created by resources being removed with
   `--prune` / `--replace` (`Removal.pruned` True);
3. then the domain's own `prune: true` scope, offered through `claim(obj)`
   after the inventory (network: virtual links, routes and rules; firewall:
   the whole ruleset; packages: managed repositories and the target's
   inventory; storage: managed fstab entries; models: files in the
   directory, kept).
Each candidate is attributed to the resource it came from (`resource`).

Why owned before pruned (the order matters only when two resources'
inventories hold the same object — one created it, later the other did
too): the removal is then attributed to the resource that is still in the
set, so its mode governs — a resource in `audit` or `propose` mode has its
changes reported, not planned, and an object it created is not removed
behind its back because another resource that also created it is pruned.
Network, firewall, storage and models did this already; packages took
pruned first (no test pinned that).

Why only the inventory of resources in the set (an owner that is neither in
the set nor being pruned — e.g. a new resource whose first apply failed,
so it never joined a generation, and which the operator then dropped):
no resource in the set vouches for removing those objects and no `--prune`
asked for it, so they stay until a `prune: true` scope or a `state: absent`
covers them. Packages did this (tests/controllers/packages/plan/
prune-true-scope.yaml pins it: Packages/gone's package goes only through
prune: true); network, firewall, storage and models used to remove (or,
for models, keep with a no-op) such orphans too.

Pure. Used by every controller's diff (controllers/<domain>/diff*.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.sdk.controller import Desired


@dataclass(frozen=True)
class Removal:
    """One undeclared object from the inventory, and the resource it is attributed to."""

    resource: str  # Kind/name
    object: str
    pruned: bool  # True: the resource is being pruned; False: it no longer declares it


class Removals:
    """The inventory's removal candidates of one diff, and claims for a prune scope."""

    def __init__(self, desired: Desired, declared: Callable[[str], bool]) -> None:
        self._declared = declared
        self._claimed: set[str] = set()
        live = {r.key for r in desired.resources}
        found: list[Removal] = []
        for key, objects in sorted(desired.owned.items()):
            if key in live:
                found += [Removal(key, o, False) for o in sorted(objects) if self.claim(o)]
        for key, objects in sorted(desired.pruned.items()):
            found += [Removal(key, o, True) for o in sorted(objects) if self.claim(o)]
        self.inventory: tuple[Removal, ...] = tuple(found)

    def claim(self, obj: str) -> bool:
        """True the first time `obj` is offered, unless a resource declares it."""
        if obj in self._claimed or self._declared(obj):
            return False
        self._claimed.add(obj)
        return True
