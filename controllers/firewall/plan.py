"""Rules planner of the firewall: one firewall.apply step per table, folded into one call.

A changed table whose live text differs from nft's canonical form of the
desired table by a few rules — chains and sets intact, its handles listed —
gets a `firewall.apply {patch: [{family, name, expect, ops}]}` step: only the
rules that drifted, deleted or put in place by handle (controllers.firewall.patch;
`expect` is the digest of the live text it was planned against). Any other
added or changed table gets a `firewall.apply {tables: [table]}` step with
the structured table (services compiled, desired.structured), replaced whole;
each removed table a `firewall.apply {delete: [{family, name}]}` step. Order:
replaced/created/patched tables first (by family, name), then deletions —
the order they take in the one nft transaction `transactions()` folds them
into (`firewall.apply {tables, patch, delete}`), which is atomic: any refused
table or op changes nothing. The engine stamps the risk from the live
catalogue.
Pure; used by controllers.firewall.controller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controllers.firewall.desired import compiled, declared, structured
from controllers.firewall.patch import Op, plan_patch
from controllers.firewall.state import FirewallState, Ref, parse_object_key, ref_text, text_digest
from reconciler.sdk.controller import Call, Desired, Diff
from reconciler.sdk.plan import Change, Step
from specs.firewall import Table

APPLY = "firewall.apply"


def plan(diff: Diff, desired: Desired, state: FirewallState | None = None) -> tuple[Step, ...]:
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
        ops = _patch(ref, tables[ref][1], changes, state)
        if ops is not None and state is not None:
            expect = text_digest(state.live()[ref])
            entry = {"family": ref[0], "name": ref[1], "expect": expect, "ops": ops}
            steps.append(_step({"patch": [entry]}, changes, _patch_reason(ref, changes, ops)))
            continue
        table = structured(tables[ref][1])
        steps.append(_step({"tables": [table]}, changes, _write_reason(ref, changes)))
    for ref in sorted(deletes):
        changes = deletes[ref]
        reason = f"delete table {ref_text(ref)} in the same transaction ({changes[0].detail})"
        steps.append(_step({"delete": [{"family": ref[0], "name": ref[1]}]}, changes, reason))
    return tuple(steps)


def _patch(
    ref: Ref, table: Table, changes: list[Change], state: FirewallState | None
) -> list[Op] | None:
    """The ops of an incremental repair of `ref`, or None (replace it whole)."""
    if state is None or any(c.op != "change" for c in changes):
        return None
    live, handles = state.live().get(ref), state.handles().get(ref)
    found = state.canon().get(compiled(table)[1])
    if live is None or handles is None or found is None:
        return None
    return plan_patch(live, handles, found.text)


def _patch_reason(ref: Ref, changes: list[Change], ops: list[Op]) -> str:
    gone = sum(1 for op in ops if op["op"] == "delete")
    came = len(ops) - gone
    return (
        f"patch table {ref_text(ref)} in one nft transaction: -{gone} +{came} rules by "
        f"handle, the rest untouched ({changes[0].detail})"
    )


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
        patches = [t for i in folded for t in steps[i].input.get("patch", ())]
        delete = [t for i in folded for t in steps[i].input.get("delete", ())]
        payload: dict[str, Any] = {}
        if tables:
            payload["tables"] = tables
        if patches:
            payload["patch"] = patches
        if delete:
            payload["delete"] = delete
        calls.append(Call(APPLY, payload, tuple(folded)))
    calls.extend(Call(s.tool, s.input, (i,)) for i, s in enumerate(steps) if s.tool != APPLY)
    return tuple(calls)
