"""Export the observed network as one Network spec document (`aios export Network`).

What it writes: every link but lo — virtual kinds with their kind options,
anything else (ethernet, a veth whose peer is in another namespace, a
wireguard link whose key aios cannot know, dummy) as `kind: ethernet`, the
existing-device kind — with admin state, mtu, mac, master and the exact list
of its (global, static) addresses; routes (non-kernel, not table local; in
tables a spec can name) with an explicit metric; rules (not the kernel
defaults); and dns when resolv.conf exists and fits the spec's limits. No
sysctls (there is no way to tell configured values from defaults), and
nothing that names an interface outside the allow-list of
contract.vocab.netvalues (IFNAME_RE): a spec could not say it. The
document validates with the loader and re-plans to nothing against the same
machine. Called by the controller.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from contract.catalogue.links import BLOCKS
from contract.vocab.links import CREATABLE_KINDS, DECLARABLE_KINDS, block_of
from contract.vocab.netvalues import is_ifname
from controllers.network.state import (
    RESOLV_CONF,
    DnsState,
    LinkState,
    NetState,
    RouteState,
    RuleState,
)
from specs.network import Dns

EXPORT_NAME = "exported"
_SCOPES = ("global", "link", "host")
# Kinds exported as themselves: what a spec declares and aios creates (contract.vocab.links),
# but wireguard, whose private key aios cannot know.
_EXPORTED_KINDS = frozenset(DECLARABLE_KINDS) & frozenset(CREATABLE_KINDS) - {"wireguard"}
# The options a kind's block cannot do without (net.link_add's schema, which the spec
# models follow): a link whose observed options lack one is exported as kind: ethernet.
_REQUIRED: dict[str, tuple[str, ...]] = {
    kind: tuple(BLOCKS[block].get("required", ()))
    for kind in _EXPORTED_KINDS
    if (block := block_of(kind)) is not None
}


def export(state: NetState) -> list[dict[str, Any]]:
    rules: dict[tuple[str, int], dict[str, Any]] = {}
    for rule in state.rules:  # one rule per family and priority (the spec's identity)
        found = export_rule(rule) if _nameable(rule.iif, rule.oif) else None
        if found is not None:
            rules.setdefault((rule.family, rule.priority), found)
    links = [x for x in state.links if x.kind != "loopback" and x.name != "lo"]
    spec: dict[str, Any] = {
        "links": [export_link(x) for x in links if _nameable_link(x)],
        "routes": [
            r for r in (export_route(x) for x in state.routes if _nameable(x.dev)) if r is not None
        ],
        "rules": list(rules.values()),
    }
    dns = export_dns(state.dns)
    if dns is not None:
        spec["dns"] = dns
    return [
        {
            "apiVersion": "aios.dev/v1",
            "kind": "Network",
            "metadata": {"name": EXPORT_NAME},
            "spec": {k: v for k, v in spec.items() if v},
        }
    ]


def _nameable(*names: str | None) -> bool:
    return all(n is None or is_ifname(n) for n in names)


def _nameable_link(link: LinkState) -> bool:
    """The link and every link it names (master, peer, parent) can be written in a spec."""
    named = (link.options.get(k) for k in ("peer", "parent"))
    return _nameable(link.name, link.master, *(n for n in named if isinstance(n, str)))


def export_link(link: LinkState) -> dict[str, Any]:
    kind = link.kind if _exportable(link) else "ethernet"
    out: dict[str, Any] = {"name": link.name, "kind": kind, "state": link.state}
    if link.mtu is not None:
        out["mtu"] = link.mtu
    if link.mac is not None and kind != "tun":
        out["mac"] = link.mac
    if link.master is not None:
        out["master"] = link.master
    out["addresses"] = list(link.addresses)
    block = _options(kind, link.options)
    if block is not None:
        out["tun" if kind in ("tun", "tap") else kind] = block
    return out


def _exportable(link: LinkState) -> bool:
    if link.kind not in _EXPORTED_KINDS:
        return False
    return all(link.options.get(k) is not None for k in _REQUIRED.get(link.kind, ()))


def _options(kind: str, options: dict[str, Any]) -> dict[str, Any] | None:
    if kind in ("ethernet", "ifb"):
        return None
    if kind == "bridge":
        return {
            "stp": bool(options.get("stp")),
            **_some(options, ("forward_delay",), {"forward_delay": "forwardDelay"}),
        }
    if kind == "vxlan":
        return _some(options, ("id", "parent", "local", "remote", "group", "port"))
    if kind == "bond":
        return _some(options, ("mode", "miimon"))
    if kind in ("tun", "tap"):
        out = _some(options, ("owner", "group"))
        out["multiQueue"] = bool(options.get("multi_queue"))
        return out
    keys = {"veth": ("peer",), "macvlan": ("parent", "mode"), "vlan": ("parent", "id")}[kind]
    return _some(options, keys)


def _some(
    options: dict[str, Any], keys: tuple[str, ...], names: dict[str, str] | None = None
) -> dict[str, Any]:
    return {(names or {}).get(k, k): options[k] for k in keys if options.get(k) is not None}


def export_route(route: RouteState) -> dict[str, Any] | None:
    if not (isinstance(route.table, int) or route.table in ("main", "default")):
        return None
    if route.to == "default" and route.family == "inet6" and not (route.via or route.src):
        return None  # a spec tells a route's family from via/src; this one has neither
    out: dict[str, Any] = {"to": route.to}
    if route.via:
        out["via"] = route.via
    if route.dev:
        out["dev"] = route.dev
    if route.table != "main":
        out["table"] = route.table
    out["metric"] = route.metric
    if route.src:
        out["src"] = route.src
    if route.scope and route.scope != _default_scope(route) and route.scope in _SCOPES:
        out["scope"] = route.scope
    if route.type != "unicast":
        out["type"] = route.type
    if route.onlink:
        out["onlink"] = True
    return out


def _default_scope(route: RouteState) -> str:
    """The scope the kernel picks when none is given (ip route add without scope)."""
    device_route = route.family == "inet" and route.type == "unicast" and not route.via
    return "link" if device_route else "global"


def export_rule(rule: RuleState) -> dict[str, Any] | None:
    table = rule.table
    if table is not None and not (isinstance(table, int) or table in ("main", "default")):
        return None
    if rule.action not in ("lookup", "blackhole", "unreachable", "prohibit"):
        return None
    out: dict[str, Any] = {"priority": rule.priority, "family": rule.family}
    for name, value in (
        ("from", rule.from_),
        ("to", rule.to),
        ("iif", rule.iif),
        ("oif", rule.oif),
        ("fwmark", rule.fwmark),
        ("table", table),
    ):
        if value is not None:
            out[name] = value
    if rule.action != "lookup":
        out["action"] = rule.action
    return out


def export_dns(dns: DnsState | None) -> dict[str, Any] | None:
    """resolv.conf as a dns block, when it exists and the spec can say it."""
    if dns is None or not dns.exists or dns.path != RESOLV_CONF:
        return None
    out: dict[str, Any] = {"servers": list(dns.servers)}
    if dns.search:
        out["search"] = list(dns.search)
    if dns.options:
        out["options"] = list(dns.options)
    try:
        Dns.model_validate(out)
    except ValidationError:
        return None
    return out
