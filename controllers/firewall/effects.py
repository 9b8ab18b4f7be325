"""Effect model of the firewall: what the ruleset looks like after a plan, without nft.

`simulate(state, steps)` models `firewall.apply {tables, delete}`, the only
write the planner emits: every listed table is replaced whole by nft's
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

from controllers.firewall.guard import lockout
from controllers.firewall.parse import ParsedTable, from_structured, parse_table
from controllers.firewall.state import (
    FirewallState,
    Ref,
    build_state,
    ref_text,
    table_digest,
    table_ref,
)
from reconciler.sdk.plan import Step

APPLY = "firewall.apply"
INPUT_FIELDS = frozenset(("tables", "delete"))
UNMODELLED_WRITES = frozenset(("firewall.add_rule", "firewall.delete_rule"))


def simulate(state: FirewallState, steps: Sequence[Step]) -> FirewallState:
    live = state.live()
    canon = state.canon()
    touched: set[Ref] = set()
    for number, step in enumerate(steps, start=1):
        where = f"step {number}"
        tables, delete = _inputs(step, where)
        for table in tables:
            ref = _once(_ref(table, where), touched, where)
            found = canon.get(table_digest(table))
            if found is None or (found.family, found.name) != ref:
                raise ValueError(
                    f"{where}: cannot predict table {ref_text(ref)}: it is not the table "
                    "the specs declare, so nft's canonical form of it is unknown"
                )
            live[ref] = found.text
        for item in delete:
            live.pop(_once(_ref(item, where), touched, where), None)
    return build_state(live, canon, complete=state.complete)


def _inputs(step: Step, where: str) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    if step.tool != APPLY:
        raise ValueError(f"{where}: the firewall effect model knows only {APPLY}, not {step.tool}")
    extra = set(step.input) - INPUT_FIELDS
    if extra:
        raise ValueError(f"{where}: unknown {APPLY} input field(s) {', '.join(sorted(extra))}")
    tables, delete = step.input.get("tables", []), step.input.get("delete", [])
    if not isinstance(tables, list) or not isinstance(delete, list):
        raise ValueError(f"{where}: tables and delete must be lists")
    return tables, delete


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
