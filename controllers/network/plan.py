"""The network rules planner: changes -> net write steps, in a safe order. Pure.

One step per change (a step may satisfy several changes of one object: a
route_replace covers all of a route's fields), each with a reason. Order:
  1. links that must be created again are deleted (ports and children
     before masters and parents; one delete per veth pair);
  2. new links, parents and masters first (a macvlan/vlan/vxlan parent, the
     bridge or bond a port joins); a veth pair is one link_add, created from
     the end declared first, with the other end's settings right after it;
  3. settings of existing links, masters and parents first: mtu, mac,
     bridge options, master, then the admin state (up/down);
  4. addresses: new ones before old ones go (see plan_addresses for the
     IPv4 subnet and IPv6 prefix cases the kernel makes special);
  5. routes, device routes before gateway routes (the gateways must be
     reachable: their addresses and links are up by now), and declared
     routes the address steps made the kernel flush (a link's last IPv4
     address went, or a route's src) are added again;
  6. rules (the kernel has no replace: a changed rule is deleted, then
     added);
  7. sysctls, global keys before per-interface ones (the links exist);
  8. dns, last of the writes;
  9. removals: rules, routes, the remaining addresses (and again any
     declared route they flushed), then links (ports and children before
     masters and parents).
The transactions() of the controller folds all steps into one net.apply.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

from controllers.network import effects_ip
from controllers.network.desired import Wanted, parent_of, rule_view, wanted
from controllers.network.diff_links import view_without
from controllers.network.effects import simulate
from controllers.network.plan_addresses import plan_addresses
from controllers.network.state import CHILD_KINDS, NetState, RuleState, interface_of_sysctl
from controllers.network.steps import (
    describe,
    describe_rule,
    dns_set_args,
    link_add_args,
    link_add_reason,
    link_set_args,
    link_set_reason,
    route_delete_args,
    route_replace_args,
    rule_add_args,
    rule_delete_args,
    step,
)
from controllers.network.world import World
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.errors import PermanentError
from reconciler.sdk.plan import Change, Step
from specs.network import Link

_SETTING_ORDER = ("mtu", "mac", "bridge.stp", "bridge.forward_delay", "master", "state")


def plan(diff: Diff, desired: Desired, state: NetState) -> tuple[Step, ...]:
    want = wanted(desired)
    changes = diff.changes
    recreate = [c for c in changes if c.field == "recreate"]
    view = view_without(state, [_name(c) for c in recreate])
    addresses = plan_addresses(changes, want, view)
    steps: list[Step] = []
    steps += delete_links(recreate, state, "delete {} to create it again")
    steps += create_links(changes, want)
    steps += link_settings(changes, want)
    steps += addresses.early
    steps += route_steps(changes, want)
    steps += refill_routes(steps, desired, want, state)
    steps += rule_steps(changes, want, view)
    steps += sysctl_steps(changes, steps, state)
    steps += dns_steps(changes, want)
    steps += rule_removals(changes, view)
    steps += route_removals(changes, view)
    steps += addresses.late
    steps += refill_routes(steps, desired, want, state)
    removed = [c for c in changes if c.object.startswith("link:") and c.op == "remove"]
    steps += delete_links(removed, view, "delete link {}")
    return tuple(steps)


def _name(change: Change) -> str:
    return change.object.split(":", 1)[1]


def _links_of(changes: Iterable[Change], op: str, field: str = "") -> dict[str, Change]:
    return {
        _name(c): c
        for c in changes
        if c.object.startswith("link:") and c.op == op and c.field == field
    }


# --- links ---------------------------------------------------------------------------


def delete_links(changes: Sequence[Change], state: NetState, reason: str) -> list[Step]:
    """Ports and children first (so only a veth peer vanishes with a delete): one step
    per link, or per veth pair."""
    by_name = {_name(c): c for c in changes}
    links = state.link_dicts
    deps: dict[str, set[str]] = {}
    for name in by_name:
        link = links.get(name)
        if link is None:
            continue
        ups = [link["master"], link["parent"] if link["kind"] in CHILD_KINDS else None]
        for up in ups:
            if up in by_name:
                deps.setdefault(str(up), set()).add(name)
    steps: list[Step] = []
    done: set[str] = set()
    for name in topo_order(sorted(by_name), deps):
        if name in done or name not in links:
            continue
        peer = links[name]["parent"] if links[name]["kind"] == "veth" else None
        gone = [name, *([str(peer)] if peer else [])]
        done.update(gone)
        ids = [by_name[x].id for x in gone if x in by_name]
        detail = by_name[name].detail
        text = reason.format(name) + (f" ({detail})" if detail else "")
        steps.append(step("link_delete", {"name": name}, text, ids))
    return steps


def topo_order(nodes: Sequence[str], deps: Mapping[str, set[str]]) -> list[str]:
    """`nodes` with each after its deps (Kahn's, stable by position; a cycle is broken
    at the earliest node left)."""
    position = {n: i for i, n in enumerate(nodes)}
    waiting = {n: {d for d in deps.get(n, ()) if d in position and d != n} for n in nodes}
    users: dict[str, list[str]] = {}
    for node, needs in waiting.items():
        for dep in needs:
            users.setdefault(dep, []).append(node)
    ready = [position[n] for n in nodes if not waiting[n]]
    heapq.heapify(ready)
    out: list[str] = []
    done: set[str] = set()
    first_left = 0
    while len(out) < len(nodes):
        if not ready:
            while nodes[first_left] in done:
                first_left += 1
            ready.append(first_left)
        node = nodes[heapq.heappop(ready)]
        if node in done:
            continue
        done.add(node)
        out.append(node)
        for user in users.get(node, ()):
            waiting[user].discard(node)
            if not waiting[user] and user not in done:
                heapq.heappush(ready, position[user])
    return out


def create_links(changes: Iterable[Change], want: Wanted) -> list[Step]:
    added = _links_of(changes, "add")
    creators: dict[str, list[str]] = {}  # creating end -> the names it creates
    for name in want.links:
        if name not in added:
            continue
        link = want.links[name].link
        if link.kind == "ethernet":
            raise PermanentError(
                f"link {name} is declared kind ethernet (an existing device) and does not "
                "exist; aios never creates ethernet devices"
            )
        peer = link.veth.peer if link.veth is not None else None
        if peer in creators:
            creators[peer].append(name)
        else:
            creators[name] = [name]
    steps: list[Step] = []
    for name in _creation_order(creators, want):
        item = want.links[name]
        ids = [added[n].id for n in creators[name]]
        steps.append(step("link_add", link_add_args(item.link), link_add_reason(item.link), ids))
        for other in creators[name][1:]:
            steps += _peer_settings(want.links[other].link, added[other])
    return steps


def _creation_order(creators: dict[str, list[str]], want: Wanted) -> list[str]:
    """Parents and masters before the links that need them (declaration order otherwise)."""
    owner = {n: c for c, names in creators.items() for n in names}
    deps: dict[str, set[str]] = {}
    for creator, names in creators.items():
        found = {d for n in names for d in _depends_on(want.links[n].link) if d in owner}
        deps[creator] = {owner[d] for d in found} - {creator}
    return topo_order(list(creators), deps)


def _depends_on(link: Link) -> list[str]:
    return [x for x in (parent_of(link), link.master) if x]


def _peer_settings(link: Link, change: Change) -> list[Step]:
    """The second end of a new veth pair: created down, with no settings of its own."""
    steps: list[Step] = []
    for field in ("mtu", "mac", "master", "state"):
        value = getattr(link, field)
        if value is None or (field == "state" and value == "down"):
            continue
        reason = link_set_reason(link.name, field, None, value)
        steps.append(step("link_set", link_set_args(link.name, field, value), reason, [change.id]))
    return steps


def link_settings(changes: Iterable[Change], want: Wanted) -> list[Step]:
    settings = [
        c
        for c in changes
        if c.object.startswith("link:") and c.op == "change" and c.field in _SETTING_ORDER
    ]
    rank = _ranks(want)
    settings.sort(key=lambda c: (rank.get(_name(c), (0, 0)), _SETTING_ORDER.index(c.field)))
    return [
        step(
            "link_set",
            link_set_args(_name(c), c.field, c.new),
            link_set_reason(_name(c), c.field, c.old, c.new),
            [c.id],
        )
        for c in settings
    ]


def _ranks(want: Wanted) -> dict[str, tuple[int, int]]:
    """(depth below declared masters/parents, declaration position) per declared link."""
    names = list(want.links)
    deps = {n: {d for d in _depends_on(want.links[n].link) if d in want.links} for n in names}
    depth: dict[str, int] = {}
    for name in topo_order(names, deps):
        depth[name] = 1 + max((depth.get(d, -1) for d in deps[name]), default=-1)
    return {n: (depth[n], i) for i, n in enumerate(names)}


# --- routes, rules, sysctls, dns ------------------------------------------------------


def route_steps(changes: Iterable[Change], want: Wanted) -> list[Step]:
    """One route_replace per declared route that is missing or differs; device routes first."""
    touched: dict[str, list[Change]] = {}
    for c in changes:
        if c.object.startswith("route:") and c.op != "remove":
            touched.setdefault(c.object, []).append(c)
    position = {k: i for i, k in enumerate(want.routes)}
    order = sorted(touched, key=lambda k: (want.routes[k].route.via is not None, position[k]))
    steps: list[Step] = []
    for key in order:
        route, found = want.routes[key].route, touched[key]
        reason = f"add route {describe(route)}"
        if found[0].op == "change":
            fields = ", ".join(f"{c.field} {c.old} -> {c.new}" for c in found)
            reason = f"replace route {describe(route)} ({fields})"
        ids = [c.id for c in found]
        steps.append(step("route_replace", route_replace_args(route), reason, ids))
    return steps


def refill_routes(
    steps: Sequence[Step], desired: Desired, want: Wanted, state: NetState
) -> list[Step]:
    """Declared routes the steps so far make the kernel flush (an address removal took
    the link's last IPv4 address, or the route's src): add them again."""
    try:
        present = {r.key for r in simulate(state, steps).routes}
    except ValueError:
        return []  # the verifier reports why the plan cannot be simulated
    enforced = {r.key for r in desired.resources if r.spec.mode == "enforce"}
    observed = {r.key: r for r in state.routes}
    out: list[Step] = []
    for key, item in want.routes.items():
        route = item.route
        if route.state == "absent" or item.resource not in enforced or key in present:
            continue
        dev = route.dev or (observed[key].dev if key in observed else None)
        ids = [
            i
            for s in steps
            if s.tool == "net.addr_delete" and s.input["dev"] == dev
            for i in s.satisfies
        ]
        reason = f"add route {describe(route)} again: deleting an address of {dev} flushed it"
        out.append(step("route_replace", route_replace_args(route), reason, ids))
    return out


def _rules_at(view: NetState) -> dict[str, list[RuleState]]:
    out: dict[str, list[RuleState]] = {}
    for rule in view.rules:
        out.setdefault(rule.key, []).append(rule)
    return out


def rule_steps(changes: Iterable[Change], want: Wanted, view: NetState) -> list[Step]:
    steps: list[Step] = []
    at = _rules_at(view)
    for c in changes:
        if not c.object.startswith("rule:") or c.op == "remove":
            continue
        declared = want.rules[c.object].rule
        args, view_of = rule_add_args(declared), rule_view(declared)
        if c.op == "change":
            for rule in at.get(c.object, ()):
                if rule.selectors() != view_of:
                    old = rule_delete_args(rule)
                    text = f"delete rule {describe_rule(old)} (not the declared rule)"
                    steps.append(step("rule_delete", old, text, [c.id]))
            if any(r.selectors() == view_of for r in at.get(c.object, ())):
                continue
        steps.append(step("rule_add", args, f"add rule {describe_rule(args)}", [c.id]))
    return steps


def route_removals(changes: Iterable[Change], view: NetState) -> list[Step]:
    routes = {r.key: r for r in view.routes}
    steps: list[Step] = []
    for c in changes:
        if c.object.startswith("route:") and c.op == "remove" and c.object in routes:
            why = f" ({c.detail})" if c.detail else ""
            text = f"delete route {describe(routes[c.object])}{why}"
            steps.append(step("route_delete", route_delete_args(c.object), text, [c.id]))
    return steps


def rule_removals(changes: Iterable[Change], view: NetState) -> list[Step]:
    steps: list[Step] = []
    at = _rules_at(view)
    for c in changes:
        if c.object.startswith("rule:") and c.op == "remove":
            why = f" ({c.detail})" if c.detail else ""
            for rule in at.get(c.object, ()):
                args = rule_delete_args(rule)
                text = f"delete rule {describe_rule(args)}{why}"
                steps.append(step("rule_delete", args, text, [c.id]))
    return steps


def sysctl_steps(changes: Iterable[Change], steps: Sequence[Step], state: NetState) -> list[Step]:
    """Global keys first; a key an earlier write already set (ip_forward sets every
    interface's forwarding) needs no step of its own: that write satisfies it."""
    found = [c for c in changes if c.object.startswith("sysctl:")]
    found.sort(key=lambda c: interface_of_sysctl(_name(c)) is not None)
    try:
        world: World | None = World.of(simulate(state, steps))
    except ValueError:
        world = None  # the verifier reports why the plan cannot be simulated
    out: list[Step] = []
    for c in found:
        key = _name(c)
        if world is not None and out and world.sysctls.get(key) == c.new:
            out[-1] = out[-1].model_copy(update={"satisfies": (*out[-1].satisfies, c.id)})
            continue
        args = {"key": key, "value": c.new}
        if world is not None:
            effects_ip.sysctl_set(world, args)
        was = c.old if c.old is not None else "unset"
        out.append(step("sysctl_set", args, f"set {key} = {c.new} (was {was})", [c.id]))
    return out


def dns_steps(changes: Iterable[Change], want: Wanted) -> list[Step]:
    ids = [c.id for c in changes if c.object.startswith("dns:")]
    if not ids or want.dns is None:
        return []
    args = dns_set_args(want.dns[1])
    servers = ", ".join(args["servers"]) or "no nameservers"
    return [step("dns_set", args, f"write the resolver configuration: {servers}", ids)]
