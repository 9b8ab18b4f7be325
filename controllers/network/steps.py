"""Build the plan steps of the network domain: one net write per change, with a reason.

Inputs follow the tools' JSON Schemas exactly (contract.catalogue.netschema,
contract.catalogue.links): kind options in a block named after the kind, only
the fields the spec sets (so every input field is something the effect
model and the diff can check). The engine stamps each step's risk from the
live catalogue. Pure.
Called by controllers.network.plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controllers.network.desired import options_view
from controllers.network.state import RouteState, RuleState, parse_route_key
from reconciler.sdk.plan import Step
from specs.network import Dns, Link, Route, Rule


def step(op: str, args: dict[str, Any], reason: str, satisfies: Iterable[str]) -> Step:
    return Step(
        tool=f"net.{op}",
        input=args,
        reason=reason,
        satisfies=tuple(dict.fromkeys(satisfies)),
    )


# --- links ------------------------------------------------------------------------


def link_add_args(link: Link) -> dict[str, Any]:
    args: dict[str, Any] = {"name": link.name, "kind": link.kind}
    if link.mtu is not None:
        args["mtu"] = link.mtu
    if link.mac is not None:
        args["mac"] = link.mac
    args["state"] = link.state
    if link.master is not None:
        args["master"] = link.master
    options = options_view(link)
    if options:
        block = "tun" if link.kind in ("tun", "tap") else link.kind
        if block != "ifb":
            args[block] = options
    return args


def link_add_reason(link: Link) -> str:
    what = f"create {link.kind} {link.name}"
    if link.veth is not None:
        what = f"create veth pair {link.name}/{link.veth.peer}"
    for block in (link.macvlan, link.vlan, link.vxlan):
        parent = getattr(block, "parent", None)
        if parent:
            what += f" on {parent}"
    if link.master:
        what += f" as a port of {link.master}"
    return f"{what}, {link.state}"


def link_set_reason(name: str, field: str, old: Any, new: Any) -> str:
    if field == "state":
        return f"bring {name} {new}"
    if field == "master":
        return f"make {name} a port of {new}" if new else f"detach {name} from {old}"
    return (
        f"set {field} of {name}: {old} -> {new}"
        if old is not None
        else f"set {field} of {name}: {new}"
    )


def link_set_args(name: str, field: str, new: Any) -> dict[str, Any]:
    if field.startswith("bridge."):
        return {"name": name, "bridge": {field.split(".", 1)[1]: new}}
    return {"name": name, field: new}


# --- routes and rules ---------------------------------------------------------------


def route_replace_args(route: Route) -> dict[str, Any]:
    args: dict[str, Any] = {"to": route.to}
    if route.to == "default":
        args["family"] = route.family
    for name in ("via", "dev"):
        value = getattr(route, name)
        if value is not None:
            args[name] = value
    args["table"] = route.table
    if route.metric is not None:
        args["metric"] = route.metric
    for name in ("src", "scope"):
        value = getattr(route, name)
        if value is not None:
            args[name] = value
    if route.type != "unicast":
        args["type"] = route.type
    if route.onlink:
        args["onlink"] = True
    return args


def route_delete_args(obj: str) -> dict[str, Any]:
    family, table, to, metric = parse_route_key(obj)
    args: dict[str, Any] = {"to": to}
    if to == "default":
        args["family"] = family
    args["table"] = table
    args["metric"] = metric
    return args


def describe(route: RouteState | Route) -> str:
    parts = [route.to] if route.type == "unicast" else [route.type, route.to]
    for name in ("via", "dev"):
        value = getattr(route, name)
        if value:
            parts += [name, value]
    return " ".join(parts) + f" in table {route.table}"


def rule_add_args(rule: Rule) -> dict[str, Any]:
    args: dict[str, Any] = {"priority": rule.priority, "family": rule.resolved_family}
    for name, value in (
        ("from", rule.from_),
        ("to", rule.to),
        ("iif", rule.iif),
        ("oif", rule.oif),
        ("fwmark", rule.fwmark),
        ("table", rule.table),
    ):
        if value is not None:
            args[name] = value
    if rule.action != "lookup":
        args["action"] = rule.action
    return args


def rule_delete_args(rule: RuleState) -> dict[str, Any]:
    """Every selector of the observed rule, so the delete matches exactly that rule."""
    args: dict[str, Any] = {"priority": rule.priority, "family": rule.family}
    for name, value in rule.selectors().items():
        if name == "action":
            if value != "lookup":
                args["action"] = value
        elif name == "table":
            if isinstance(value, int) or value in ("main", "default"):
                args["table"] = value
        elif value is not None:
            args[name] = value
    return args


def describe_rule(args: dict[str, Any]) -> str:
    parts = [f"{args['family']} priority {args['priority']}"]
    for name in ("from", "to", "iif", "oif", "fwmark"):
        if name in args:
            parts.append(f"{name} {args[name]}")
    if "table" in args:
        parts.append(f"lookup {args['table']}")
    if "action" in args:
        parts.append(str(args["action"]))
    return " ".join(parts)


# --- dns ----------------------------------------------------------------------------


def dns_set_args(dns: Dns) -> dict[str, Any]:
    args: dict[str, Any] = {"resolver": dns.resolver, "servers": list(dns.servers)}
    if dns.search:
        args["search"] = list(dns.search)
    if dns.options:
        args["options"] = list(dns.options)
    if dns.path is not None:
        args["path"] = dns.path
    return args
