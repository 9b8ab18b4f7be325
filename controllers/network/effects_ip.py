"""Effect model of the address, route, rule, sysctl and DNS writes (see effects.py).

Each function changes a World in place the way the tool and the kernel
would, or raises ValueError where the tool or the kernel would refuse.
Must not import specs (used by the effect model).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from controllers.network.state import (
    canon_fwmark,
    canon_interface,
    canon_network,
    canon_sysctl,
    canon_table,
    default_metric,
    dns_path_for,
    in_subnet,
    interface_of_sysctl,
    subnet,
)
from controllers.network.world import World

# --- addresses ------------------------------------------------------------------


def addr_add(world: World, args: dict[str, Any]) -> None:
    link = world.need_link(str(args["dev"]))
    cidr = canon_interface(str(args["address"]))
    iface = ipaddress.ip_interface(cidr)
    present = link["addresses"]
    if cidr in present:
        return  # ip addr replace
    if iface.version == 6 and any(ipaddress.ip_interface(a).ip == iface.ip for a in present):
        return  # replace keeps an IPv6 address's prefix length
    if iface.version == 4 and any(subnet(a) == str(iface.network) for a in present if ":" not in a):
        link["secondaries"].append(cidr)
    present.append(cidr)


def addr_delete(world: World, args: dict[str, Any]) -> None:
    link = world.need_link(str(args["dev"]))
    cidr = canon_interface(str(args["address"]))
    if cidr not in link["addresses"]:
        raise ValueError(f"{link['name']} has no address {cidr}")
    gone = [cidr, *_secondaries_gone(world, link, cidr)]
    for address in gone:
        link["addresses"].remove(address)
        if address in link["secondaries"]:
            link["secondaries"].remove(address)
    ips = {a.split("/")[0] for a in gone}
    last_v4 = not any(":" not in a for a in link["addresses"])
    world.routes = [
        r
        for r in world.routes
        if r["src"] not in ips
        and not (last_v4 and r["family"] == "inet" and r["dev"] == link["name"])
    ]


def _secondaries_gone(world: World, link: dict[str, Any], cidr: str) -> list[str]:
    """IPv4 secondaries that die with `cidr` (its primary), unless they are promoted."""
    if ":" in cidr or cidr in link["secondaries"]:
        return []
    same = [a for a in link["secondaries"] if subnet(a) == subnet(cidr)]
    if same and promotes(world, link["name"]):
        link["secondaries"].remove(same[0])
        return []
    return same


def promotes(world: World, dev: str) -> bool:
    keys = ("net.ipv4.conf.all.promote_secondaries", f"net.ipv4.conf.{dev}.promote_secondaries")
    return any(world.sysctls.get(k) == "1" for k in keys)


# --- routes -------------------------------------------------------------------------


def _family(args: dict[str, Any], fields: tuple[str, ...]) -> str:
    versions = set()
    for name in fields:
        value = args.get(name)
        if value and value != "default":
            versions.add(ipaddress.ip_network(str(value), strict=False).version)
    if len(versions) > 1:
        raise ValueError(f"{', '.join(fields)} mix IPv4 and IPv6")
    derived = {4: "inet", 6: "inet6"}[versions.pop()] if versions else None
    explicit = args.get("family")
    if explicit and derived and explicit != derived:
        raise ValueError(f"family {explicit} does not match the addresses ({derived})")
    return str(explicit or derived or "inet")


def _dest(value: str) -> str:
    return "default" if value == "default" else canon_network(value)


def route_replace(world: World, args: dict[str, Any]) -> None:
    family = _family(args, ("to", "via", "src"))
    kind = str(args.get("type", "unicast"))
    via = str(ipaddress.ip_address(args["via"])) if args.get("via") else None
    dev = args.get("dev")
    onlink = bool(args.get("onlink", False))
    if kind == "unicast":
        dev = _nexthop_dev(world, family, via, dev, onlink)
    route = {
        "family": family,
        "table": canon_table(args.get("table", "main")),
        "to": _dest(str(args["to"])),
        "metric": int(args.get("metric", default_metric(family))),
        "type": kind,
        "via": via,
        "dev": dev,
        "src": str(ipaddress.ip_address(args["src"])) if args.get("src") else None,
        "scope": args.get("scope") or _default_scope(family, kind, via),
        "onlink": onlink,
    }
    world.routes = [r for r in world.routes if not _same_route(r, route)] + [route]


def _same_route(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in ("family", "table", "to", "metric"))


def _default_scope(family: str, kind: str, via: str | None) -> str:
    return "link" if family == "inet" and kind == "unicast" and via is None else "global"


def _nexthop_dev(
    world: World, family: str, via: str | None, dev: str | None, onlink: bool
) -> str | None:
    """The route's device (given, or found from the gateway); refuse what the kernel refuses."""
    if dev is not None:
        link = world.need_link(str(dev))
        if link["state"] != "up":
            raise ValueError(f"device {dev} of the route is not up")
    if via is None or onlink:
        if onlink and dev is None:
            raise ValueError("an onlink route needs dev")
        return str(dev) if dev is not None else None
    if ipaddress.ip_address(via).is_link_local and family == "inet6":
        if dev is None:
            raise ValueError(f"link-local gateway {via} needs dev")
        return str(dev)
    for name in _reachers(world, via, dev):
        return name
    where = f" on {dev}" if dev else ""
    raise ValueError(f"gateway {via} is not reachable{where}: no address or route covers it")


def _reachers(world: World, via: str, dev: str | None) -> list[str]:
    """Up links whose addresses or device routes cover `via` (dev first when given)."""
    found: list[str] = []
    for link in sorted(world.links.values(), key=lambda x: str(x["name"])):
        if link["state"] != "up" or (dev is not None and link["name"] != dev):
            continue
        if any(in_subnet(via, a) for a in link["addresses"]):
            found.append(str(link["name"]))
    for route in world.routes:
        covers = route["to"] != "default" and route["via"] is None and route["dev"]
        if covers and (dev is None or route["dev"] == dev):
            up = world.links.get(route["dev"], {}).get("state") == "up"
            if up and in_subnet(via, route["to"]):
                found.append(str(route["dev"]))
    return found


def route_delete(world: World, args: dict[str, Any]) -> None:
    family = _family(args, ("to", "via"))
    table = canon_table(args.get("table", "main"))
    to = _dest(str(args["to"]))
    for i, route in enumerate(world.routes):
        if (route["family"], route["table"], route["to"]) != (family, table, to):
            continue
        if "metric" in args and route["metric"] != int(args["metric"]):
            continue
        if any(
            k in args and route[k] != (str(args[k]) if k != "via" else _ip(args[k]))
            for k in ("via", "dev", "type")
        ):
            continue
        del world.routes[i]
        return
    raise ValueError(f"no route to {to} in table {table} matches")


def _ip(value: Any) -> str:
    return str(ipaddress.ip_address(str(value)))


# --- rules ----------------------------------------------------------------------------


def _rule(args: dict[str, Any]) -> dict[str, Any]:
    mark = args.get("fwmark")
    return {
        "family": _family(args, ("from", "to")),
        "priority": int(args["priority"]),
        "from": canon_network(str(args["from"])) if args.get("from") else None,
        "to": canon_network(str(args["to"])) if args.get("to") else None,
        "iif": args.get("iif"),
        "oif": args.get("oif"),
        "fwmark": canon_fwmark(hex(mark) if isinstance(mark, int) else str(mark))
        if mark is not None
        else None,
        "table": canon_table(args["table"]) if args.get("table") is not None else None,
        "action": str(args.get("action", "lookup")),
    }


def rule_add(world: World, args: dict[str, Any]) -> None:
    rule = _rule(args)
    if rule["action"] == "lookup" and rule["table"] is None:
        raise ValueError("a lookup rule needs a table")
    if rule["action"] != "lookup" and rule["table"] is not None:
        raise ValueError(f"a {rule['action']} rule takes no table")
    if rule in world.rules:
        raise ValueError(f"an identical rule at priority {rule['priority']} exists")
    world.rules.append(rule)


def rule_delete(world: World, args: dict[str, Any]) -> None:
    wanted = _rule(args)
    selectors = ("from", "to", "iif", "oif", "fwmark", "table", "action")
    given = {"family", "priority"} | {k for k in selectors if args.get(k) is not None}
    for i, rule in enumerate(world.rules):
        if all(rule[k] == wanted[k] for k in given):
            del world.rules[i]
            return
    raise ValueError(f"no {wanted['family']} rule at priority {wanted['priority']} matches")


# --- sysctls and dns ----------------------------------------------------------------------

_V4_FORWARDING = ("net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding")


def sysctl_set(world: World, args: dict[str, Any]) -> None:
    key, raw = str(args["key"]), args["value"]
    value = ("1" if raw else "0") if isinstance(raw, bool) else canon_sysctl(str(raw))
    dev = interface_of_sysctl(key)
    if dev is not None and dev not in world.links:
        raise ValueError(f"{key}: link {dev} does not exist")
    changed = world.sysctls.get(key) != value
    world.sysctls[key] = value
    if changed:
        for other in _propagates_to(world, key):
            world.sysctls[other] = value


def _propagates_to(world: World, key: str) -> list[str]:
    """Keys the kernel rewrites along with `key` (only those the state holds)."""
    if key in _V4_FORWARDING:
        prefix, extra = "net.ipv4.conf.", [*_V4_FORWARDING]
    elif key == "net.ipv6.conf.all.forwarding":
        prefix, extra = "net.ipv6.conf.", []
    else:
        return []
    return [
        k
        for k in world.sysctls
        if k != key and (k in extra or (k.startswith(prefix) and k.endswith(".forwarding")))
    ]


def dns_set(world: World, args: dict[str, Any]) -> None:
    resolver = str(args.get("resolver", "resolvconf"))
    servers = [_ip(s) for s in args.get("servers", ())]
    search, options = list(args.get("search", ())), list(args.get("options", ()))
    if resolver == "unbound" and (search or options):
        raise ValueError("search and options apply to resolver resolvconf only")
    if resolver != "unbound" and len(servers) > 3:
        raise ValueError("resolv.conf honours at most 3 nameservers")
    world.dns = {
        "path": dns_path_for(resolver, args.get("path")),
        "exists": True,
        "servers": servers,
        "search": search,
        "options": options,
    }


OPS: dict[str, Callable[[World, dict[str, Any]], None]] = {
    "addr_add": addr_add,
    "addr_delete": addr_delete,
    "route_replace": route_replace,
    "route_delete": route_delete,
    "rule_add": rule_add,
    "rule_delete": rule_delete,
    "sysctl_set": sysctl_set,
    "dns_set": dns_set,
}
