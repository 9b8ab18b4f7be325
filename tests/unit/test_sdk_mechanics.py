"""The controller SDK's shared mechanics: the removal rule, the diff collector, the ABC.

reconciler.sdk.removals is the one rule every domain's diff uses for
undeclared objects (owned before pruned, only the inventory of resources in
the set, each object once, declared objects never); reconciler.sdk.diffing's
Collector makes change ids and orders the Diff (sorted, or as written);
reconciler.sdk.controller.Controller refuses a subclass missing an abstract
method. The per-domain consequences are plan cases under tests/controllers
(network/plan/owned_before_pruned.yaml, packages/plan/owned-before-pruned.yaml).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from reconciler.sdk.controller import Controller, Desired, Diff, StateReader
from reconciler.sdk.diffing import Collector
from reconciler.sdk.plan import Step
from reconciler.sdk.removals import Removal, Removals
from specs.loader import load_documents


def _resources(*names: str) -> tuple[Any, ...]:
    docs = "\n---\n".join(
        f"apiVersion: aios.dev/v1\nkind: Network\nmetadata: {{name: {n}}}\nspec: {{}}\n"
        for n in names
    )
    return tuple(load_documents([("t.yaml", docs.encode())]).resources)


def _desired(
    live: tuple[str, ...],
    owned: dict[str, list[str]] | None = None,
    pruned: dict[str, list[str]] | None = None,
) -> Desired:
    return Desired(
        domain="network",
        resources=_resources(*live),
        owned={k: frozenset(v) for k, v in (owned or {}).items()},
        pruned={k: frozenset(v) for k, v in (pruned or {}).items()},
    )


def test_owned_by_a_resource_in_the_set_wins_over_a_pruned_one() -> None:
    desired = _desired(
        ("b",), owned={"Network/b": ["link:x", "link:y"]}, pruned={"Network/a": ["link:x", "z:1"]}
    )
    chosen = Removals(desired, lambda obj: False)
    assert chosen.inventory == (
        Removal("Network/b", "link:x", False),
        Removal("Network/b", "link:y", False),
        Removal("Network/a", "z:1", True),
    )


def test_declared_objects_and_orphans_are_never_candidates() -> None:
    desired = _desired(
        ("b",),
        owned={"Network/b": ["link:kept", "link:x"], "Network/gone": ["link:orphan"]},
        pruned={"Network/a": ["link:kept"]},
    )
    chosen = Removals(desired, {"link:kept"}.__contains__)
    assert chosen.inventory == (Removal("Network/b", "link:x", False),)
    # the orphan is not claimed by the inventory: a prune: true scope may still take it
    assert chosen.claim("link:orphan")


def test_claim_is_once_per_object_and_never_for_a_declared_one() -> None:
    chosen = Removals(_desired(("b",), owned={"Network/b": ["link:x"]}), {"link:d"}.__contains__)
    assert not chosen.claim("link:x")  # the inventory took it
    assert not chosen.claim("link:d")  # declared
    assert chosen.claim("link:new") and not chosen.claim("link:new")


def test_collector_sorts_or_keeps_the_order_written() -> None:
    for sort in (True, False):
        out = Collector(sort=sort)
        out.change("R/b", "o:2", "add", new=1)
        out.change("R/a", "o:1", "change", "mtu", old=1, new=2)
        out.noop("R/b", "o:2", "z reason")
        out.noop("R/b", "o:2", "a reason")
        diff = out.result()
        ids = [c.id for c in diff.changes]
        reasons = [n.reason for n in diff.noops]
        if sort:
            assert ids == ["R/a|o:1|mtu", "R/b|o:2"] and reasons == ["a reason", "z reason"]
        else:
            assert ids == ["R/b|o:2", "R/a|o:1|mtu"] and reasons == ["z reason", "a reason"]


class _State(BaseModel):
    pass


class _NoExport(Controller[_State]):
    domain = "toy"

    async def observe(self, reader: StateReader, desired: Desired) -> _State:
        return _State()

    def diff(self, desired: Desired, state: _State) -> Diff:
        return Diff()

    def plan(self, diff: Diff, desired: Desired, state: _State) -> tuple[Step, ...]:
        return ()

    def simulate(self, state: _State, steps: Sequence[Step]) -> _State:
        return state


def test_a_controller_missing_an_abstract_method_cannot_be_made() -> None:
    with pytest.raises(TypeError, match="export"):
        _NoExport()  # type: ignore[abstract]
