"""The network domain's actual state: typed, normalised, deterministic.

`NetState` is what observe() returns and what effects.simulate() predicts:
links (admin state, mtu, mac, master, parent, kind options, global
addresses), routes (non-kernel, not table local), policy rules (not the
kernel defaults), the net.* sysctls the specs declare and the resolver file.
Every list is sorted, so the JSON dump is a stable fingerprint.

Also here, because diff, plan, effects and export all need them: the object
keys (`link:br0`, `address:br0/10.0.0.1/24`, `route:inet/main/default/100`,
`rule:inet/1000`, `sysctl:net.ipv4.ip_forward`, `dns:/etc/resolv.conf`) and
the canonical forms values are compared in. Must not import specs (the
effect model uses it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import ConfigDict, Field

# Link kinds (contract.vocab.links): VIRTUAL_KINDS aios may create and delete (everything
# else is an existing device), CHILD_KINDS whose `parent` is a lower device they die
# with, MASTER_KINDS that take ports.
from contract.vocab.links import CHILD_KINDS as CHILD_KINDS
from contract.vocab.links import MASTER_KINDS as MASTER_KINDS
from contract.vocab.links import VIRTUAL_KINDS as VIRTUAL_KINDS
from reconciler.sdk.plan import Frozen

Family = Literal["inet", "inet6"]
Table = int | str
DEFAULT_RULE_PRIORITIES = frozenset({0, 32766, 32767})
MANAGED_ROUTE_TYPES = ("unicast", "blackhole", "unreachable", "prohibit")
RESOLV_CONF = "/etc/resolv.conf"
UNBOUND_FORWARD = "/etc/unbound/unbound.conf.d/aios-forward.conf"


class LinkState(Frozen):
    """One link. `mtu` None: not known (a predicted new link whose mtu no step sets).

    `addresses`: global addresses, canonical and sorted (IPv6 link-local and
    dynamic ones are not managed and left out); `secondaries`: the IPv4
    addresses among them the kernel holds as secondary (a second address in
    the subnet of another one; deleting the primary takes them along).
    `options`: kind facts with the keys of the kind's option block.
    """

    name: str
    kind: str
    state: Literal["up", "down"]
    mtu: int | None = None
    mac: str | None = None
    master: str | None = None
    parent: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    addresses: tuple[str, ...] = ()
    secondaries: tuple[str, ...] = ()


class RouteState(Frozen):
    """A route; identified by family, table, destination and metric."""

    family: Family
    table: Table
    to: str
    metric: int
    type: str = "unicast"
    via: str | None = None
    dev: str | None = None
    src: str | None = None
    scope: str | None = None
    onlink: bool = False

    @property
    def key(self) -> str:
        return route_key(self.family, self.table, self.to, self.metric)


class RuleState(Frozen):
    """A policy rule; identified by family and priority (`from` is `from_` here)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True
    )

    family: Family
    priority: int
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: str | None = None
    table: Table | None = None
    action: str = "lookup"

    @property
    def key(self) -> str:
        return rule_key(self.family, self.priority)

    def selectors(self) -> dict[str, Any]:
        """Everything that tells this rule from another at the same priority."""
        return {
            "from": self.from_,
            "to": self.to,
            "iif": self.iif,
            "oif": self.oif,
            "fwmark": self.fwmark,
            "table": self.table,
            "action": self.action,
        }


class DnsState(Frozen):
    path: str
    exists: bool
    servers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


class NetState(Frozen):
    links: tuple[LinkState, ...] = ()
    routes: tuple[RouteState, ...] = ()
    rules: tuple[RuleState, ...] = ()
    sysctls: dict[str, str | None] = Field(default_factory=dict)
    dns: DnsState | None = None

    def link(self, name: str) -> LinkState | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, LinkState]:
        return {x.name: x for x in self.links}

    @cached_property
    def link_dicts(self) -> dict[str, dict[str, Any]]:
        """Links as plain dicts (the effect model's form), by name."""
        return {x.name: x.model_dump(mode="json") for x in self.links}

    @cached_property
    def children(self) -> dict[str, list[str]]:
        return children_index(self.link_dicts)


def route_order(route: RouteState) -> tuple[str, str, str, int]:
    return (route.family, str(route.table), route.to, route.metric)


def rule_order(rule: RuleState) -> tuple[str, int, str]:
    return (rule.family, rule.priority, repr(sorted(rule.selectors().items(), key=str)))


def dns_path_for(resolver: str, path: str | None) -> str:
    """The file net.dns_set manages: `path`, or the resolver's default."""
    return path or (UNBOUND_FORWARD if resolver == "unbound" else RESOLV_CONF)


def children_index(links: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Lower device -> the macvlan/vlan/vxlan links on it (they die with it)."""
    out: dict[str, list[str]] = {}
    for link in links.values():
        if link["kind"] in CHILD_KINDS and link["parent"]:
            out.setdefault(str(link["parent"]), []).append(str(link["name"]))
    return out


# --- object keys -------------------------------------------------------------


def link_key(name: str) -> str:
    return f"link:{name}"


def address_key(dev: str, cidr: str) -> str:
    return f"address:{dev}/{cidr}"


def route_key(family: str, table: Table, to: str, metric: int) -> str:
    return f"route:{family}/{table}/{to}/{metric}"


def rule_key(family: str, priority: int) -> str:
    return f"rule:{family}/{priority}"


def sysctl_obj(key: str) -> str:
    return f"sysctl:{key}"


def dns_obj(path: str) -> str:
    return f"dns:{path}"


def parse_route_key(obj: str) -> tuple[Family, Table, str, int]:
    """`route:inet6/100/2001:db8::/32/1024` -> (family, table, to, metric)."""
    body = obj.removeprefix("route:")
    family, rest = body.split("/", 1)
    table_text, rest = rest.split("/", 1)
    to, metric = rest.rsplit("/", 1)
    fam: Family = "inet6" if family == "inet6" else "inet"
    table: Table = int(table_text) if table_text.isdigit() else table_text
    return fam, table, to, int(metric)


def parse_rule_key(obj: str) -> tuple[Family, int]:
    family, priority = obj.removeprefix("rule:").split("/", 1)
    return ("inet6" if family == "inet6" else "inet"), int(priority)


# --- canonical values ----------------------------------------------------------


def canon_interface(value: str) -> str:
    """10.0.0.1/24, 2001:db8::1/64 (compressed, lowercase)."""
    return str(ipaddress.ip_interface(value))


def canon_network(value: str) -> str:
    """A network with its prefix length: a bare address becomes /32 or /128."""
    return str(ipaddress.ip_network(value, strict=False))


def canon_fwmark(value: str) -> str:
    """Hex mark, with the mask only when it is not the full 0xffffffff."""
    mark, _, mask = value.partition("/")
    text = hex(int(mark, 0))
    if mask and int(mask, 0) != 0xFFFFFFFF:
        text += "/" + hex(int(mask, 0))
    return text


def canon_sysctl(value: str) -> str:
    """Multi-value keys print with tabs; compare them with single spaces."""
    return " ".join(value.split())


def family_of_address(value: str) -> Family:
    return "inet6" if ":" in value else "inet"


def default_metric(family: str) -> int:
    """What the kernel gives a route without a metric."""
    return 1024 if family == "inet6" else 0


def subnet(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).network)


def in_subnet(address: str, cidr: str) -> bool:
    iface = ipaddress.ip_interface(cidr)
    ip = ipaddress.ip_address(address)
    return ip.version == iface.version and ip in iface.network


def interface_of_sysctl(key: str) -> str | None:
    """The interface a per-interface key names (net.ipv4.conf.br0.forwarding -> br0)."""
    parts = key.split(".")
    if len(parts) >= 5 and parts[2] in ("conf", "neigh") and parts[3] not in ("all", "default"):
        return parts[3]
    return None


_TABLE_NAMES = {254: "main", 253: "default", 255: "local"}


def canon_table(value: Table) -> Table:
    """main/default/local for their numbers, as the tool reports them."""
    if isinstance(value, int):
        return _TABLE_NAMES.get(value, value)
    return value
