"""Diff the firewall: canonical text of each declared table, live against desired.

Per declared table (object `nft-table:<family>/<name>`), in resource-key
then declaration order:
  - `state: absent`: a live table is removed; none is a no-op;
  - present: nft's canonical text of the desired table (state.canonical,
    by the digest of its structured form) against the live text —
    equal (counter values ignored) is a no-op; no live table is an `add`;
    anything else is a `change` of field `ruleset` with short old/new
    ("12 rules #digest") and a detail naming what differs per chain.
    A table whose canonical text would lock the operator out (guard.py)
    makes a destructive change, forced when the table has `force: true`.
Then removals, each table once (reconciler.sdk.removals): tables in
`desired.owned[resource]` of a resource in the set that it no longer
declares (and no other resource declares), tables created by pruned
resources, and — for a resource with `prune: true` —
every table of the ruleset that no Firewall resource declares (the prune
scope: the whole nft ruleset, all families; conservative it is not, so it
is opt-in per resource). Pure; used by the controller (and so by the
verifier on simulated states).
"""

from __future__ import annotations

import re

from controllers.firewall.desired import compiled, declared, pruning
from controllers.firewall.details import difference, short, summary
from controllers.firewall.guard import lockout_of
from controllers.firewall.state import (
    Canonical,
    FirewallState,
    Ref,
    object_key,
    parse_object_key,
    ref_text,
)
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.diffing import Collector
from reconciler.sdk.removals import Removals
from specs.firewall import Table

FIELD = "ruleset"
_COUNTER = re.compile(r"\bcounter packets \d+ bytes \d+")


def same_text(live: str, desired: str) -> bool:
    """Equal canonical texts; counter values never count as a difference."""
    if live == desired:
        return True
    if "counter packets" not in live and "counter packets" not in desired:
        return False  # nothing to remove: no regex over 500 KB
    return _COUNTER.sub("counter", live) == _COUNTER.sub("counter", desired)


def diff(desired: Desired, state: FirewallState) -> Diff:
    out = Collector(sort=False)
    live = state.live()
    canon = state.canon()
    tables = declared(desired)
    for ref, (resource, table) in tables.items():
        obj = object_key(ref)
        current = live.get(ref)
        if table.state == "absent":
            if current is None:
                out.noop(resource, obj, f"table {ref_text(ref)} is absent as declared")
            else:
                _remove(out, resource, ref, current, "state: absent")
            continue
        found = canon.get(compiled(table)[1])
        wanted = found.text if found is not None else None
        if wanted is not None and current is not None and same_text(current, wanted):
            out.noop(resource, obj, _same(ref, wanted))
            continue
        _present(out, resource, ref, table, current, found)
    _removals(out, desired, state, set(tables), live)
    return out.result()


def _same(ref: Ref, text: str) -> str:
    lines = text.count("\n")  # no parsing on the no-op path
    return f"table {ref_text(ref)} matches nft's canonical form of the spec ({lines} lines)"


def _present(
    out: Collector,
    resource: str,
    ref: Ref,
    table: Table,
    current: str | None,
    found: Canonical | None,
) -> None:
    obj = object_key(ref)
    wanted = found.text if found is not None else None
    reason = None
    if found is not None:
        reason = found.lockout if found.guarded else lockout_of(found.text)
    destructive = reason is not None
    forced = destructive and table.force
    if wanted is None:
        detail = "nft's canonical form of the spec is not known (observe did not compute it)"
        new = "unknown"
    else:
        new = short(wanted)
        detail = ""
    if current is None:
        detail = detail or f"create: {summary(wanted or '')}"
        if reason:
            detail += f"; {reason}"
        out.change(
            resource, obj, "add", new=new, detail=detail, destructive=destructive, forced=forced
        )
        return
    if wanted is not None:
        detail = difference(current, wanted)
    if reason:
        detail += f"; {reason}"
    out.change(
        resource,
        obj,
        "change",
        FIELD,
        old=short(current),
        new=new,
        detail=detail,
        destructive=destructive,
        forced=forced,
    )


def _remove(out: Collector, resource: str, ref: Ref, current: str, why: str) -> None:
    detail = f"{why}; {summary(current)}"
    out.change(resource, object_key(ref), "remove", old=short(current), detail=detail)


def _removals(
    out: Collector,
    desired: Desired,
    state: FirewallState,
    declared_refs: set[Ref],
    live: dict[Ref, str],
) -> None:
    """Undeclared tables, each once (reconciler.sdk.removals), that exist."""

    def declares(key: str) -> bool:
        return parse_object_key(key) in declared_refs

    chosen = Removals(desired, declares)
    for found in chosen.inventory:
        ref, resource = parse_object_key(found.object), found.resource
        why = (
            f"{resource} is pruned"
            if found.pruned
            else f"created by aios for {resource}, no longer declared"
        )
        if ref is not None and ref in live:
            _remove(out, resource, ref, live[ref], why)
    pruner = pruning(desired)
    if pruner is not None and state.complete:
        for ref in sorted(live):
            if chosen.claim(object_key(ref)):
                why = f"prune: true on {pruner}; no Firewall resource declares it"
                _remove(out, pruner, ref, live[ref], why)
