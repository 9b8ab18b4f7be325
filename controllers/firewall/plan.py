"""Rules planner of the firewall: one firewall.apply step per table, folded into one call.

Each added or changed table gets a `firewall.apply {tables: [table]}` step
with the structured table (services compiled, desired.structured); each
removed table a `firewall.apply {delete: [{family, name}]}` step. Order:
replaced/created tables first (by family, name), then deletions — the
order they take in the one nft transaction `transactions()` folds them
into (`firewall.apply {tables: [...], delete: [...]}`), which is atomic:
any refused table changes nothing. The engine stamps the risk from the
live catalogue.
Pure; used by controllers.firewall.controller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controllers.firewall.desired import declared, structured
from controllers.firewall.state import Ref, parse_object_key, ref_text
from reconciler.sdk.controller import Call, Desired, Diff
from reconciler.sdk.plan import Change, Step

APPLY = "firewall.apply"


def plan(diff: Diff, desired: Desired) -> tuple[Step, ...]:
    tables = declared(desired)
    writes: dict[Ref, list[Change]] = {}
    deletes: dict[Ref, list[Change]] = {}
    for change in diff.changes:
        ref = parse_object_key(change.object)
        if ref is None:
            continue
        (deletes if change.op == "remove" else writes).setdefault(ref, []).append(change)
    steps: list[Step] = []
    for ref in sorted(writes):
        if ref not in tables:
            continue
        changes = writes[ref]
        table = structured(tables[ref][1])
        steps.append(_step({"tables": [table]}, changes, _write_reason(ref, changes)))
    for ref in sorted(deletes):
        changes = deletes[ref]
        reason = f"delete table {ref_text(ref)} in the same transaction ({changes[0].detail})"
        steps.append(_step({"delete": [{"family": ref[0], "name": ref[1]}]}, changes, reason))
    return tuple(steps)


def _write_reason(ref: Ref, changes: list[Change]) -> str:
    change = changes[0]
    verb = "create" if change.op == "add" else "replace"
    detail = change.detail.removeprefix("create: ")
    return f"{verb} table {ref_text(ref)} whole in one nft transaction ({detail})"


def _step(payload: dict[str, Any], changes: list[Change], reason: str) -> Step:
    return Step(
        tool=APPLY,
        input=payload,
        reason=reason,
        satisfies=tuple(c.id for c in changes),
        destructive=any(c.destructive for c in changes),
    )


def transactions(steps: Sequence[Step]) -> tuple[Call, ...]:
    """Every firewall.apply step folded into ONE call (one nft transaction)."""
    folded = [i for i, s in enumerate(steps) if s.tool == APPLY]
    calls: list[Call] = []
    if folded:
        tables = [t for i in folded for t in steps[i].input.get("tables", ())]
        delete = [t for i in folded for t in steps[i].input.get("delete", ())]
        payload: dict[str, Any] = {}
        if tables:
            payload["tables"] = tables
        if delete:
            payload["delete"] = delete
        calls.append(Call(APPLY, payload, tuple(folded)))
    calls.extend(Call(s.tool, s.input, (i,)) for i, s in enumerate(steps) if s.tool != APPLY)
    return tuple(calls)
