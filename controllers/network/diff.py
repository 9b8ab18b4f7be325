"""Diff the declared network against the observed NetState. Pure; deterministic order.

Order of the result (a Collector that keeps the order written): links to
recreate, then per declared item (links with their addresses, routes, rules,
sysctls, dns), then removals, each object once (reconciler.sdk.removals):
objects aios created for a resource in the set that no resource declares
any more (the inventory), objects of resources removed with --prune, and —
for resources with `prune: true` — undeclared objects of the prune scope:
  - links of virtual kinds (never ethernet or lo, never a parent or master
    a declared link needs);
  - non-kernel routes in the tables the resource declares routes in;
  - rules at priorities 1-32765 (the kernel's defaults are never observed);
  never a link whose name is outside the interface-name allow-list
  (contract.vocab.netvalues.IFNAME_RE), nor a route or rule naming one: no tool call can
  name it, so it is left alone (as it cannot be declared either).
Addresses are covered by exact lists, so they are never in the inventory.
Every declared item that needs nothing gets a NoOp with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from contract.vocab.netvalues import is_ifname
from controllers.network.desired import (
    Wanted,
    dns_path,
    parent_of,
    route_view,
    rule_view,
    wanted,
)
from controllers.network.diff_links import (
    link_changes,
    recreate_changes,
    recreations,
    summary,
    takes_along,
    view_without,
)
from controllers.network.state import (
    VIRTUAL_KINDS,
    NetState,
    RouteState,
    canon_table,
    dns_obj,
    parse_route_key,
    sysctl_obj,
)
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.diffing import Collector
from reconciler.sdk.removals import Removals


def diff(desired: Desired, state: NetState) -> Diff:
    want = wanted(desired)
    recreate = recreations(want, state)
    view = view_without(state, list(recreate))
    out = Collector(sort=False)
    recreate_changes(want, recreate, state, out)
    link_changes(want, view, out)
    route_changes(want, view, out)
    rule_changes(want, view, out)
    sysctl_changes(want, view, out)
    dns_changes(want, view, out)
    removals(desired, want, view, out)
    return out.result()


# --- routes -------------------------------------------------------------------------


def describe_route(to: str, view: Mapping[str, Any], key: str) -> str:
    """`default via 198.51.100.1 dev wan0 (table main, metric 100)`."""
    _, table, _, metric = parse_route_key(key)
    parts = [to] if view.get("type", "unicast") == "unicast" else [str(view["type"]), to]
    for name in ("via", "dev"):
        if view.get(name):
            parts += [name, str(view[name])]
    return " ".join(parts) + f" (table {table}, metric {metric})"


def route_changes(want: Wanted, state: NetState, out: Collector) -> None:
    actual = {r.key: r for r in state.routes}
    for key, item in want.routes.items():
        route, res, have = item.route, item.resource, actual.get(key)
        view = route_view(route)
        text = describe_route(route.to, view, key)
        if route.state == "absent":
            if have is None:
                out.noop(res, key, f"route {text} is absent")
            else:
                out.change(res, key, "remove", old=route_summary(have))
            continue
        if have is None:
            new = {"to": route.to, **{k: v for k, v in view.items() if v not in (None, False)}}
            out.change(res, key, "add", new=new)
            continue
        found = [(k, v) for k, v in view.items() if getattr(have, k) != v]
        for k, v in found:
            out.change(res, key, "change", k, old=getattr(have, k), new=v)
        if not found:
            out.noop(res, key, f"route {text} is in place")


def route_summary(route: RouteState) -> dict[str, Any]:
    return route.model_dump(exclude={"family", "table", "metric"}, exclude_none=True)


# --- rules ----------------------------------------------------------------------------


def rule_changes(want: Wanted, state: NetState, out: Collector) -> None:
    actual: dict[str, list[dict[str, Any]]] = {}
    for observed in state.rules:
        actual.setdefault(observed.key, []).append(observed.selectors())
    for key, item in want.rules.items():
        rule, res, have = item.rule, item.resource, actual.get(key, [])
        view = rule_view(rule)
        what = f"rule {rule.resolved_family} priority {rule.priority}"
        olds = [compact(r) for r in have]
        if rule.state == "absent":
            if have:
                out.change(res, key, "remove", old=olds)
            else:
                out.noop(res, key, f"{what} is absent")
        elif not have:
            out.change(res, key, "add", new=compact(view))
        elif have == [view]:
            out.noop(res, key, f"{what} ({describe_selectors(view)}) is in place")
        else:
            out.change(res, key, "change", "rule", old=olds, new=compact(view))


def compact(selectors: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in selectors.items() if v is not None}


def describe_selectors(selectors: Mapping[str, Any]) -> str:
    """`from 10.0.0.0/25 fwmark 0x1 lookup 100` (a rule's selectors and action)."""
    parts = [
        f"{k} {selectors[k]}" for k in ("from", "to", "iif", "oif", "fwmark") if selectors.get(k)
    ]
    action = selectors.get("action", "lookup")
    parts.append(f"lookup {selectors.get('table')}" if action == "lookup" else str(action))
    return " ".join(parts)


# --- sysctls and dns --------------------------------------------------------------------


def sysctl_changes(want: Wanted, state: NetState, out: Collector) -> None:
    for key, (res, value) in want.sysctls.items():
        have = state.sysctls.get(key)
        obj = sysctl_obj(key)
        if have == value:
            out.noop(res, obj, f"{key} is {value}")
        else:
            out.change(res, obj, "change", "value", old=have, new=value)


def dns_changes(want: Wanted, state: NetState, out: Collector) -> None:
    if want.dns is None:
        return
    res, dns = want.dns
    path = dns_path(dns)
    obj = dns_obj(path)
    view = {"servers": list(dns.servers), "search": list(dns.search), "options": list(dns.options)}
    have = state.dns
    if have is None or have.path != path or not have.exists:
        out.change(res, obj, "add", new=view)
        return
    found = [(k, v) for k, v in view.items() if list(getattr(have, k)) != v]
    for k, v in found:
        out.change(res, obj, "change", k, old=list(getattr(have, k)), new=v)
    if not found:
        servers = ", ".join(dns.servers) or "no nameservers"
        out.noop(res, obj, f"{path} lists {servers} as declared")


# --- removals ---------------------------------------------------------------------------


def removals(desired: Desired, want: Wanted, state: NetState, out: Collector) -> None:
    """Inventory, --prune and `prune: true` removals, each object once (sdk.removals)."""
    chosen = Removals(desired, want.declares)
    for found in chosen.inventory:
        res = found.resource
        why = "which is pruned" if found.pruned else "no longer declared"
        _remove(out, state, res, found.object, f"created by aios for {res}, {why}")
    for network in want.prune:
        why = f"not declared; {network.key} has prune: true"
        for obj in prune_scope(network.key, want, state):
            if chosen.claim(obj):
                _remove(out, state, network.key, obj, why)


def _remove(out: Collector, state: NetState, res: str, obj: str, why: str) -> None:
    kind, _, ident = obj.partition(":")
    old: Any = None
    if kind == "link":
        link = state.link(ident)
        if link is None:
            return
        old = summary(link)
        also = takes_along(state, ident)
        why += f"; {also}" if also else ""
    elif kind == "route":
        route = next((r for r in state.routes if r.key == obj), None)
        if route is None:
            return
        old = route_summary(route)
    elif kind == "rule":
        old = [compact(r.selectors()) for r in state.rules if r.key == obj]
        if not old:
            return
    else:
        return
    out.change(res, obj, "remove", old=old, detail=why)


def prune_scope(res: str, want: Wanted, state: NetState) -> Iterable[str]:
    """Undeclared objects a `prune: true` resource removes (see the module doc)."""
    needed: set[str] = set()
    for name, item in want.links.items():
        needed.update(x for x in (parent_of(item.link), item.link.master) if x)
        actual = state.link(name)
        if actual is not None:
            needed.update(x for x in (actual.parent, actual.master) if x)
    for link in state.links:
        if link.kind in VIRTUAL_KINDS and link.name not in needed and is_ifname(link.name):
            yield f"link:{link.name}"
    network = next(i for i in want.prune if i.key == res)
    tables = {canon_table(r.table) for r in network.spec.routes}
    for route in state.routes:
        if route.table in tables and _nameable(route.dev):
            yield route.key
    for rule in state.rules:
        if _nameable(rule.iif) and _nameable(rule.oif):
            yield rule.key


def _nameable(name: str | None) -> bool:
    """No interface, or one a tool call may name (see the module docstring)."""
    return name is None or is_ifname(name)
