"""Effect model of the firewall: what the ruleset looks like after a plan, without nft.

`simulate(state, steps)` models `firewall.apply {tables, patch, delete}`, the
only write the planner emits. A patched table must exist with the text the
patch expects (its digest) and its handles listed; its ops run in order on
that text (controllers.firewall.patch.apply_ops: a handle not in the chain,
or one of a rule the patch itself added, is a ValueError — the kernel would
refuse the transaction). Every table listed whole is replaced by nft's
canonical text of that exact structured table — looked up in
`state.canonical` by its digest (observe computed it for the desired
tables) — and every deleted table disappears (absent ones are fine, as in
the tool). A table whose canonical form is unknown (it is not one of the
desired tables: a mutated rule, a renamed chain, an LLM's own table) cannot
be predicted: ValueError, which the verifier turns into a finding. So do
unknown tools, unknown input fields, and a table listed twice across the
plan (the steps run as ONE nft transaction, where the tool refuses that).
`destructive(state, step)` is the lockout guard on the predicted text.
Pure; MUST NOT import specs (import-linter contract).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.firewall.guard import lockout, lockout_of
from controllers.firewall.parse import ParsedTable, from_structured, parse_table
from controllers.firewall.patch import apply_ops
from controllers.firewall.state import (
    FirewallState,
    Ref,
    build_state,
    ref_text,
    table_digest,
    table_ref,
    text_digest,
)
from reconciler.sdk.plan import Step

APPLY = "firewall.apply"
INPUT_FIELDS = frozenset(("tables", "patch", "delete"))
UNMODELLED_WRITES = frozenset(("firewall.add_rule", "firewall.delete_rule"))


def simulate(state: FirewallState, steps: Sequence[Step]) -> FirewallState:
    live = state.live()
    handles = state.handles()
    canon = state.canon()
    touched: set[Ref] = set()
    for number, step in enumerate(steps, start=1):
        where = f"step {number}"
        tables, patches, delete = _inputs(step, where)
        for table in tables:
            ref = _once(_ref(table, where), touched, where)
            found = canon.get(table_digest(table))
            if found is None or (found.family, found.name) != ref:
                raise ValueError(
                    f"{where}: cannot predict table {ref_text(ref)}: it is not the table "
                    "the specs declare, so nft's canonical form of it is unknown"
                )
            live[ref] = found.text
            handles.pop(ref, None)  # a table loaded whole gets new handles
        for entry in patches:
            ref = _once(_ref(entry, where), touched, where)
            live[ref], handles[ref] = patched(live, handles, ref, entry, where)
        for item in delete:
            ref = _once(_ref(item, where), touched, where)
            live.pop(ref, None)
            handles.pop(ref, None)
    return build_state(live, canon, complete=state.complete, handles=handles)


def patched(
    live: Mapping[Ref, str],
    handles: Mapping[Ref, Mapping[str, tuple[int, ...]]],
    ref: Ref,
    entry: Mapping[str, Any],
    where: str,
) -> tuple[str, dict[str, tuple[int, ...]]]:
    """Text and handles of table `ref` after the patch `entry` (ValueError: cannot run)."""
    text = live.get(ref)
    if text is None or ref not in handles:
        raise ValueError(f"{where}: cannot patch table {ref_text(ref)}: no live table with handles")
    if entry.get("expect") != text_digest(text):
        raise ValueError(
            f"{where}: the patch of table {ref_text(ref)} expects another text than the live one"
        )
    ops = entry.get("ops")
    if not isinstance(ops, list) or not ops:
        raise ValueError(f"{where}: the patch of table {ref_text(ref)} has no ops")
    try:
        return apply_ops(text, handles[ref], ops)
    except ValueError as exc:
        raise ValueError(f"{where}: patch of table {ref_text(ref)}: {exc}") from None


Inputs = tuple[list[Mapping[str, Any]], list[Mapping[str, Any]], list[Mapping[str, Any]]]


def _inputs(step: Step, where: str) -> Inputs:
    if step.tool != APPLY:
        raise ValueError(f"{where}: the firewall effect model knows only {APPLY}, not {step.tool}")
    extra = set(step.input) - INPUT_FIELDS
    if extra:
        raise ValueError(f"{where}: unknown {APPLY} input field(s) {', '.join(sorted(extra))}")
    tables, delete = step.input.get("tables", []), step.input.get("delete", [])
    patches = step.input.get("patch", [])
    if not all(isinstance(x, list) for x in (tables, patches, delete)):
        raise ValueError(f"{where}: tables, patch and delete must be lists")
    return tables, patches, delete


def _ref(table: object, where: str) -> Ref:
    if not isinstance(table, Mapping) or not isinstance(table.get("name"), str):
        raise ValueError(f"{where}: a table must be an object with a name")
    return table_ref(table)


def _once(ref: Ref, touched: set[Ref], where: str) -> Ref:
    if ref in touched:
        raise ValueError(
            f"{where}: table {ref_text(ref)} appears twice in the plan's one nft transaction"
        )
    touched.add(ref)
    return ref


def destructive(state: FirewallState, step: Step) -> str | None:
    """The lockout guard on the tables `step` would load (None: safe)."""
    if step.tool != APPLY:
        if step.tool in UNMODELLED_WRITES:
            return f"{step.tool} is not modelled: its effect on the management path is unknown"
        return None
    canon = state.canon()
    reasons: list[str] = []
    tables = step.input.get("tables", [])
    for table in tables if isinstance(tables, list) else []:
        if not isinstance(table, Mapping):
            continue
        reason = lockout(predicted(table, canon))
        if reason:
            reasons.append(reason)
    patches = step.input.get("patch", [])
    live, handles = state.live(), state.handles()
    for entry in patches if isinstance(patches, list) else []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            continue
        try:
            text, _ = patched(live, handles, table_ref(entry), entry, "patch")
            known = next((c for c in canon.values() if c.guarded and c.text == text), None)
            reason = known.lockout if known is not None else lockout_of(text)
        except ValueError as exc:
            reason = f"the patch's result cannot be predicted ({exc})"
        if reason:
            reasons.append(reason)
    return "; ".join(reasons) or None


def predicted(table: Mapping[str, Any], canon: Mapping[str, Any]) -> ParsedTable:
    """nft's canonical form of `table` when known, else the table as written (conservative)."""
    found = canon.get(table_digest(table))
    if found is not None:
        try:
            return parse_table(found.text)
        except ValueError:
            pass
    return from_structured(table)
