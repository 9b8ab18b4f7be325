"""The firewall Controller: nftables tables owned whole, compared in nft's canonical form.

Wires observe (one `firewall.ruleset` listing with rule handles + nft's
canonical form of the desired tables, cached by digest), diff (canonical text
per table), the rules planner (one `firewall.apply` step per table — a patch
of the few rules that drifted, or the table whole — folded by
`transactions()` into one nft transaction), the effect model (simulate,
lockout guard) and export. Kind: Firewall; tool namespace: firewall.
Object keys: `nft-table:<family>/<name>`; the inventory holds the tables
aios created (an `add` it applied). `forced(desired, step)` is true when
every table the step loads is declared with `force: true`. Instantiated
once as controllers.firewall.CONTROLLER for the engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from controllers.firewall import effects, export, observe, plan
from controllers.firewall.desired import declared
from controllers.firewall.diff import diff
from controllers.firewall.domain import DOMAIN
from controllers.firewall.state import FirewallState, table_ref
from reconciler.sdk.controller import JSON, Call, Controller, Desired, Diff, StateReader
from reconciler.sdk.plan import Step
from specs.base import Resource
from specs.firewall import Firewall


class FirewallController(Controller[FirewallState]):
    domain: ClassVar[str] = DOMAIN.name  # the declaration: domain.py
    kinds: ClassVar[tuple[str, ...]] = tuple(DOMAIN.kinds)
    namespaces: ClassVar[tuple[str, ...]] = ("firewall",)
    state_model: ClassVar[type[BaseModel]] = FirewallState

    async def observe(self, reader: StateReader, desired: Desired) -> FirewallState:
        return await observe.observe(reader, desired)

    def diff(self, desired: Desired, state: FirewallState) -> Diff:
        return diff(desired, state)

    def plan(self, diff: Diff, desired: Desired, state: FirewallState) -> tuple[Step, ...]:
        return plan.plan(diff, desired, state)

    def simulate(self, state: FirewallState, steps: Sequence[Step]) -> FirewallState:
        return effects.simulate(state, steps)

    def destructive(self, state: FirewallState, step: Step) -> str | None:
        return effects.destructive(state, step)

    def forced(self, desired: Desired, step: Step) -> bool:
        tables = declared(desired)
        refs = [
            table_ref(t)
            for field in ("tables", "patch")
            for t in step.input.get(field, [])
            if isinstance(t, dict) and isinstance(t.get("name"), str)
        ]
        return bool(refs) and all(r in tables and tables[r][1].force for r in refs)

    def transactions(self, steps: Sequence[Step]) -> tuple[Call, ...]:
        return plan.transactions(steps)

    def export(self, state: FirewallState) -> list[JSON]:
        return export.export(state)

    def scope(self, state: FirewallState, resources: Sequence[Resource]) -> JSON:
        refs = {
            (t.family, t.name) for r in resources if isinstance(r, Firewall) for t in r.spec.tables
        }
        live = state.live()
        tables: list[dict[str, Any]] = [
            {"family": f, "name": n, "exists": (f, n) in live, "text": live.get((f, n), "")}
            for f, n in sorted(refs)
        ]
        return {"tables": tables}

    def fingerprint(self, state: FirewallState) -> str:
        """Digest of the live texts and the canonical forms' digests (cheap at 10,000 rules)."""
        h = hashlib.sha256(b"firewall-state-v2\0" + (b"1" if state.complete else b"0"))
        for table in state.tables:
            h.update(f"\0{table.family}\0{table.name}\0".encode())
            h.update(table.text.encode())
            for chain, handles in table.handles:  # a patch names them
                h.update(f"\0{chain}\0{' '.join(map(str, handles))}".encode())
        for canonical in state.canonical:
            h.update(f"\0{canonical.digest}\0".encode())
            h.update(canonical.text.encode())
        return h.hexdigest()
