"""The packages controller: kind Packages on apt/dpkg or apk, one transaction per reconcile.

Wires observe (one pkg.state read), diff, the rules planner (pkg.repos then
one pkg.ensure), the effect model, the destructive/forced rules and export.
Object keys: `package:<name>`, `repository:<name>`; aios's inventory holds
the packages and repositories it added (the base rule: a satisfied `add`
of a whole object).

Destructive: a pkg.ensure that removes a package which installed packages
(not removed in the same transaction) depend on — judged from the observed
depends lists, whatever the step claims. It runs only when EVERY package the
transaction removes is declared `state: absent` with `force: true` (force
covers the whole transaction: a removal without a spec item, e.g. of an
undeclared inventory package, cannot carry it). Used through
controllers.load_controller().
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from controllers.packages import diff as diff_mod
from controllers.packages import effects, export, observe, plan
from controllers.packages.desired import Wanted
from controllers.packages.domain import DOMAIN
from controllers.packages.state import PackagesState
from reconciler.sdk.controller import JSON, Controller, Desired, Diff, StateReader
from reconciler.sdk.plan import Step
from specs.base import Resource


class PackagesController(Controller[PackagesState]):
    domain: ClassVar[str] = DOMAIN.name  # the declaration: domain.py
    kinds: ClassVar[tuple[str, ...]] = tuple(DOMAIN.kinds)
    namespaces: ClassVar[tuple[str, ...]] = ("pkg",)
    state_model = PackagesState

    async def observe(self, reader: StateReader, desired: Desired) -> PackagesState:
        return await observe.observe(reader, desired)

    def diff(self, desired: Desired, state: PackagesState) -> Diff:
        return diff_mod.diff(desired, state)

    def plan(self, diff: Diff, desired: Desired, state: PackagesState) -> tuple[Step, ...]:
        return plan.plan(diff, desired, state)

    def simulate(self, state: PackagesState, steps: Sequence[Step]) -> PackagesState:
        return effects.simulate(state, steps)

    def destructive(self, state: PackagesState, step: Step) -> str | None:
        if step.tool != "pkg.ensure":
            return None
        removed = [str(n) for n in step.input.get("remove", ())]
        gone = frozenset(removed)
        broken = [
            f"{name} (needed by {', '.join(needed)})"
            for name in sorted(removed)
            if (needed := state.dependents(name, gone))
        ]
        return "removes " + "; ".join(broken) if broken else None

    def forced(self, desired: Desired, step: Step) -> bool:
        removed = (
            [str(n) for n in step.input.get("remove", ())] if step.tool == "pkg.ensure" else []
        )
        wanted = Wanted.of(desired)
        items = [wanted.package(name) for name in removed]
        return bool(items) and all(i is not None and i.absent and i.force for i in items)

    def export(self, state: PackagesState) -> list[JSON]:
        return export.export(state)

    def scope(self, state: PackagesState, resources: Sequence[Resource]) -> JSON:
        wanted = Wanted.of(Desired(self.domain, tuple(resources)))
        names = {p.name for p in wanted.packages}
        repos = {r.name for r in wanted.repos}
        out: dict[str, Any] = {
            "backend": state.backend,
            "packages": [p.model_dump(mode="json") for p in state.packages if p.name in names],
            "repositories": [
                r.model_dump(mode="json") for r in state.repositories if r.name in repos
            ],
            "available": {n: list(v) for n, v in state.available.items() if n in names},
        }
        return out

