"""The declared network objects of all Network resources, flattened and canonical.

`wanted(desired)` indexes every declared link, route, rule, sysctl and the
DNS file by object key, with the resource that declares it, in a
deterministic order (resources by key, items in declaration order). The
`*_view` functions give the canonical form diff compares: only what the spec
sets (None: not managed), defaults that mean something (a macvlan's mode,
a vxlan's port) included. Used by diff, plan and export's round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract.catalogue.links import LINK_SET
from contract.vocab.links import LINK_KINDS
from controllers.network.state import (
    canon_fwmark,
    canon_interface,
    canon_network,
    canon_sysctl,
    canon_table,
    default_metric,
    dns_obj,
    dns_path_for,
    route_key,
    rule_key,
)
from reconciler.sdk.controller import Desired
from specs.network import Dns, Link, Network, Route, Rule

# Option keys net.link_set can change in place, by kind: the blocks its schema takes
# (bridge: stp, forward_delay). Every other option needs a new link. The registry's
# restore reads the same schema (registry.drivers.net.revert).
MUTABLE_OPTIONS: dict[str, tuple[str, ...]] = {
    row.name: tuple(LINK_SET["properties"][row.block]["properties"])
    for row in LINK_KINDS
    if row.block is not None and row.block in LINK_SET["properties"]
}


@dataclass(frozen=True)
class Declared:
    resource: str  # Kind/name
    index: int  # position in its list (plan order)


@dataclass(frozen=True)
class WantLink(Declared):
    link: Link


@dataclass(frozen=True)
class WantRoute(Declared):
    route: Route
    key: str


@dataclass(frozen=True)
class WantRule(Declared):
    rule: Rule
    key: str


@dataclass
class Wanted:
    links: dict[str, WantLink] = field(default_factory=dict)
    peers: dict[str, str] = field(default_factory=dict)  # unlisted veth peer -> listed end
    routes: dict[str, WantRoute] = field(default_factory=dict)
    rules: dict[str, WantRule] = field(default_factory=dict)
    sysctls: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (resource, v)
    dns: tuple[str, Dns] | None = None
    prune: tuple[Network, ...] = ()  # resources with prune: true

    def declares_link(self, name: str) -> bool:
        return name in self.links or name in self.peers

    def declares(self, obj: str) -> bool:
        """Whether any resource declares the object (any state, for links)."""
        kind, _, ident = obj.partition(":")
        if kind == "link":
            return self.declares_link(ident)
        if kind == "route":
            return obj in self.routes
        if kind == "rule":
            return obj in self.rules
        if kind == "sysctl":
            return ident in self.sysctls
        return kind == "dns" and self.dns is not None and dns_obj(dns_path(self.dns[1])) == obj


def wanted(desired: Desired) -> Wanted:
    out = Wanted()
    networks = sorted((r for r in desired.resources if isinstance(r, Network)), key=lambda r: r.key)
    for res in networks:
        for i, link in enumerate(res.spec.links):
            out.links[link.name] = WantLink(res.key, i, link)
        for i, route in enumerate(res.spec.routes):
            key = route_obj(route)
            out.routes[key] = WantRoute(res.key, i, route, key)
        for i, rule in enumerate(res.spec.rules):
            key = rule_key(rule.resolved_family, rule.priority)
            out.rules[key] = WantRule(res.key, i, rule, key)
        for k, v in res.spec.sysctls.items():
            out.sysctls[k] = (res.key, canon_sysctl(v))
        if res.spec.dns is not None:
            out.dns = (res.key, res.spec.dns)
    for name, want in out.links.items():
        peer = want.link.veth.peer if want.link.veth is not None else None
        if peer and peer not in out.links and want.link.state != "absent":
            out.peers[peer] = name
    out.prune = tuple(r for r in networks if r.spec.prune)
    return out


# --- canonical views -----------------------------------------------------------


def route_obj(route: Route) -> str:
    family = route.family
    metric = route.metric if route.metric is not None else default_metric(family)
    return route_key(family, canon_table(route.table), route.to, metric)


def route_view(route: Route) -> dict[str, Any]:
    """The attributes of a declared route diff compares (dev/src/scope only when set)."""
    view: dict[str, Any] = {"type": route.type, "via": route.via, "onlink": route.onlink}
    for name in ("dev", "src", "scope"):
        value = getattr(route, name)
        if value is not None:
            view[name] = value
    return view


def rule_view(rule: Rule) -> dict[str, Any]:
    """A declared rule's selectors and action in the observed state's canonical form."""
    return {
        "from": canon_network(rule.from_) if rule.from_ else None,
        "to": canon_network(rule.to) if rule.to else None,
        "iif": rule.iif,
        "oif": rule.oif,
        "fwmark": canon_fwmark(rule.fwmark) if rule.fwmark else None,
        "table": canon_table(rule.table) if rule.table is not None else None,
        "action": rule.action,
    }


def addresses_view(link: Link) -> tuple[str, ...] | None:
    if link.addresses is None:
        return None
    return tuple(sorted(canon_interface(a) for a in link.addresses))


def options_view(link: Link) -> dict[str, Any]:
    """Kind options the spec manages, keyed like the observed `options`."""
    if link.veth is not None:
        return {"peer": link.veth.peer}
    if link.bridge is not None:
        return link.bridge.model_dump(exclude_none=True)
    if link.macvlan is not None:
        return {"parent": link.macvlan.parent, "mode": link.macvlan.mode}
    if link.vxlan is not None:
        return link.vxlan.model_dump(exclude_none=True)
    if link.vlan is not None:
        return {"parent": link.vlan.parent, "id": link.vlan.id}
    if link.bond is not None:
        return link.bond.model_dump(exclude_none=True)
    if link.tun is not None:
        return link.tun.model_dump(exclude_none=True)
    if link.wireguard is not None:
        return wireguard_options(link)
    return {}


def wireguard_options(link: Link) -> dict[str, Any]:
    """The tool's wireguard block: the key by path (secretRef file:/...), never its value."""
    assert link.wireguard is not None
    wg = link.wireguard
    out: dict[str, Any] = {"private_key_file": wg.private_key.secret_ref.removeprefix("file:")}
    if wg.listen_port is not None:
        out["listen_port"] = wg.listen_port
    peers: list[dict[str, Any]] = []
    for spec in wg.peers:
        peer: dict[str, Any] = {"public_key": spec.public_key}
        if spec.endpoint is not None:
            peer["endpoint"] = spec.endpoint
        if spec.allowed_ips:
            peer["allowed_ips"] = list(spec.allowed_ips)
        if spec.persistent_keepalive is not None:
            peer["persistent_keepalive"] = spec.persistent_keepalive
        peers.append(peer)
    out["peers"] = peers
    return out


def parent_of(link: Link) -> str | None:
    """The lower device a link is created on (macvlan, vlan, vxlan with a parent)."""
    for block in (link.macvlan, link.vlan, link.vxlan):
        if block is not None:
            return block.parent
    return None


def dns_path(dns: Dns) -> str:
    return dns_path_for(dns.resolver, dns.path)
