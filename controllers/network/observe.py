"""Observe the network domain: ONE `net.state` read, parsed into a normalised NetState.

The read asks only for the sysctl keys the specs declare (none when none
are), and names the resolver file when a spec declares dns. Normalisation,
so that a no-op is really a no-op:
  - addresses: IPv6 link-local and dynamic (SLAAC/DHCP) addresses are left
    out; IPv4 secondaries are recognised from the kernel's order (the first
    address of a subnet is its primary);
  - routes: `proto kernel` (and ra/redirect) routes, table local and the
    kernel's own route types (local, broadcast, multicast) are left out;
    non-unicast routes carry no via/dev (ip shows IPv6 blackholes on lo);
  - rules: only priorities 1-32765 (the spec's range) — the kernel defaults
    0, 32766, 32767 are not managed; selectors in canonical form;
  - sysctls: whitespace of multi-value keys collapsed.
Link admin state is the IFF_UP flag the tool reports, not the operstate
(ifb shows UNKNOWN, an empty bridge NO-CARRIER). Called by the controller.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from controllers.network.state import (
    MANAGED_ROUTE_TYPES,
    DnsState,
    LinkState,
    NetState,
    RouteState,
    RuleState,
    canon_fwmark,
    canon_interface,
    canon_network,
    canon_sysctl,
    dns_path_for,
    route_order,
    rule_order,
    subnet,
)
from reconciler.sdk.controller import Desired, StateReader
from specs.network import Network

_UNMANAGED_PROTOS = frozenset({"kernel", "ra", "redirect"})


def read_args(desired: Desired) -> dict[str, Any]:
    """net.state's input: the declared sysctl keys (sorted) and the declared DNS file."""
    keys: set[str] = set()
    dns_path: str | None = None
    for resource in desired.resources:
        if not isinstance(resource, Network):
            continue
        keys.update(resource.spec.sysctls)
        if resource.spec.dns is not None:
            dns_path = dns_path_for(resource.spec.dns.resolver, resource.spec.dns.path)
    args: dict[str, Any] = {"sysctls": sorted(keys)}
    if dns_path is not None:
        args["dns_path"] = dns_path
    return args


async def observe(reader: StateReader, desired: Desired) -> NetState:
    return parse_state(await reader.read("net.state", read_args(desired)))


def parse_state(raw: Mapping[str, Any]) -> NetState:
    dns = raw.get("dns")
    return NetState(
        links=tuple(sorted((parse_link(x) for x in raw.get("links", ())), key=lambda x: x.name)),
        routes=tuple(sorted(parse_routes(raw.get("routes", ())), key=route_order)),
        rules=tuple(sorted(parse_rules(raw.get("rules", ())), key=rule_order)),
        sysctls={
            k: (canon_sysctl(v) if v is not None else None)
            for k, v in sorted((raw.get("sysctls") or {}).items())
        },
        dns=parse_dns(dns) if dns else None,
    )


def parse_link(raw: Mapping[str, Any]) -> LinkState:
    addresses, secondaries = _addresses(raw.get("addresses", ()))
    return LinkState(
        name=str(raw["name"]),
        kind=str(raw["kind"]),
        state="up" if raw.get("state") == "up" else "down",
        mtu=int(raw["mtu"]),
        mac=raw.get("mac"),
        master=raw.get("master"),
        parent=raw.get("parent"),
        options=dict(raw.get("info") or {}),
        addresses=tuple(sorted(addresses)),
        secondaries=tuple(sorted(secondaries)),
    )


def _addresses(raw: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """Managed addresses, and which IPv4 ones are secondaries (in the kernel's order)."""
    out: list[str] = []
    secondaries: list[str] = []
    subnets: set[str] = set()
    for entry in raw:
        family, scope = entry.get("family"), entry.get("scope")
        if entry.get("dynamic") or (family == "inet6" and scope == "link"):
            continue
        cidr = canon_interface(str(entry["address"]))
        out.append(cidr)
        if family == "inet":
            net = subnet(cidr)
            if net in subnets:
                secondaries.append(cidr)
            subnets.add(net)
    return out, secondaries


def parse_routes(raw: Iterable[Mapping[str, Any]]) -> list[RouteState]:
    routes: list[RouteState] = []
    for entry in raw:
        kind = str(entry.get("type", "unicast"))
        if (
            entry.get("proto") in _UNMANAGED_PROTOS
            or entry.get("table") == "local"
            or kind not in MANAGED_ROUTE_TYPES
        ):
            continue
        to = str(entry["to"])
        unicast = kind == "unicast"
        routes.append(
            RouteState(
                family=entry["family"],
                table=entry["table"],
                to=to if to == "default" else canon_network(to),
                metric=int(entry.get("metric", 0)),
                type=kind,
                via=_address(entry.get("via")) if unicast else None,
                dev=entry.get("dev") if unicast else None,
                src=_address(entry.get("src")),
                scope=entry.get("scope"),
                onlink=bool(entry.get("onlink", False)),
            )
        )
    return routes


def parse_rules(raw: Iterable[Mapping[str, Any]]) -> list[RuleState]:
    rules: list[RuleState] = []
    for entry in raw:
        priority = int(entry.get("priority", 0))
        if not 1 <= priority <= 32765:
            continue
        mark = entry.get("fwmark")
        rules.append(
            RuleState(
                family=entry["family"],
                priority=priority,
                from_=_selector(entry.get("from")),
                to=_selector(entry.get("to")),
                iif=entry.get("iif"),
                oif=entry.get("oif"),
                fwmark=canon_fwmark(str(mark)) if mark is not None else None,
                table=entry.get("table"),
                action=str(entry.get("action", "lookup")),
            )
        )
    return rules


def parse_dns(raw: Mapping[str, Any]) -> DnsState:
    return DnsState(
        path=str(raw["path"]),
        exists=bool(raw["exists"]),
        servers=tuple(_address(s) or s for s in raw.get("servers", ())),
        search=tuple(raw.get("search", ())),
        options=tuple(raw.get("options", ())),
    )


def _address(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        return str(value)


def _selector(value: Any) -> str | None:
    return canon_network(str(value)) if value is not None else None
