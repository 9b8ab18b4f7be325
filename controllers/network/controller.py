"""NetworkController: kind Network wired to observe, diff, plan, effects and export.

Transactions: every step is a net write; all of a plan's steps run as ONE
`net.apply {"commands": [{"op", "args"}, ...]}` call, in order, which the
tool runs all-or-nothing (snapshot, restore on the first failure); a plan
longer than net.apply's 10,000 commands is split, and the engine rolls
back the earlier calls if a later one fails. Inventory: aios records the
links, routes and rules it creates (addresses are exact lists, sysctls and
dns are values: never in the inventory). Destructive: nothing in this
domain destroys data, and the Network spec has no `force` field; deleting
links, addresses, routes and rules happens only when a spec says so
(`state: absent`, exact lists, the inventory, prune).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from controllers.network import diff as diff_mod
from controllers.network import effects, export, observe
from controllers.network import plan as plan_mod
from controllers.network.desired import wanted
from controllers.network.domain import DOMAIN
from controllers.network.state import NetState, dns_path_for
from reconciler.sdk.controller import JSON, Call, Controller, Desired, Diff, StateReader
from reconciler.sdk.plan import Change, Step
from specs.base import Resource

APPLY_LIMIT = 10000
_INVENTORIED = ("link:", "route:", "rule:")


class NetworkController(Controller[NetState]):
    domain: ClassVar[str] = DOMAIN.name  # the declaration: domain.py
    kinds: ClassVar[tuple[str, ...]] = tuple(DOMAIN.kinds)
    namespaces: ClassVar[tuple[str, ...]] = ("net",)
    state_model: ClassVar[type[BaseModel]] = NetState

    async def observe(self, reader: StateReader, desired: Desired) -> NetState:
        return await observe.observe(reader, desired)

    def diff(self, desired: Desired, state: NetState) -> Diff:
        return diff_mod.diff(desired, state)

    def plan(self, diff: Diff, desired: Desired, state: NetState) -> tuple[Step, ...]:
        return plan_mod.plan(diff, desired, state)

    def simulate(self, state: NetState, steps: Sequence[Step]) -> NetState:
        return effects.simulate(state, steps)

    def export(self, state: NetState) -> list[JSON]:
        return export.export(state)

    def transactions(self, steps: Sequence[Step]) -> tuple[Call, ...]:
        calls: list[Call] = []
        batch: list[int] = []

        def flush() -> None:
            if batch:
                commands = [
                    {"op": steps[i].tool.removeprefix("net."), "args": steps[i].input}
                    for i in batch
                ]
                calls.append(Call("net.apply", {"commands": commands}, tuple(batch)))
                batch.clear()

        for index, step in enumerate(steps):
            if step.tool == "net.apply":
                flush()
                calls.append(Call(step.tool, step.input, (index,)))
                continue
            batch.append(index)
            if len(batch) == APPLY_LIMIT:
                flush()
        flush()
        return tuple(calls)

    def created(self, change: Change) -> bool:
        return change.op == "add" and not change.field and change.object.startswith(_INVENTORIED)

    def scope(self, state: NetState, resources: Sequence[Resource]) -> JSON:
        """The links (and veth peers), routes, rules, sysctls and dns the resources declare."""
        want = wanted(Desired(self.domain, tuple(resources)))
        names = set(want.links) | set(want.peers)
        dns = want.dns[1] if want.dns is not None else None
        dns_path = dns_path_for(dns.resolver, dns.path) if dns is not None else None
        out: dict[str, Any] = {
            "links": [x.model_dump(mode="json") for x in state.links if x.name in names],
            "routes": [r.model_dump(mode="json") for r in state.routes if r.key in want.routes],
            "rules": [r.model_dump(mode="json") for r in state.rules if r.key in want.rules],
            "sysctls": {k: v for k, v in state.sysctls.items() if k in want.sysctls},
        }
        if state.dns is not None and state.dns.path == dns_path:
            out["dns"] = state.dns.model_dump(mode="json")
        return out
