"""Kind Network: links, addresses, routes, policy rules, sysctls and DNS.

Semantics (shared with controllers.network): a field left out is not managed;
a list that is set is exact (nmstate); `state: absent` removes the object.
A link's `state` is `up` or `down` (the admin flag; both mean present) or
`absent`. Kind-specific options live in a block named after the kind
(`veth: {peer: ...}`), and a block that does not match `kind` is an error.
Wireguard private keys are secret references, never values.

The vocabularies the registry shares (link kinds and their option blocks,
WireGuard endpoints and public keys, fwmarks, sysctl and resolver-file rules)
come from contract.vocab; this module wraps them as pydantic models.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from contract.vocab.links import (
    BLOCKS,
    BOND_MODES,
    DECLARABLE_KINDS,
    MACVLAN_MODES,
    REQUIRED_BLOCK,
    block_of,
)
from contract.vocab.netvalues import (
    WG_KEY_PATTERN,
    canonical_fwmark,
    check_endpoint,
    is_sysctl_key,
    is_sysctl_text,
    resolver_path_problem,
    sysctl_fields_problem,
)
from specs.base import Claim, Resource, ResourceSpec, SpecModel
from specs.types import (
    AbsPath,
    AddressOrNetwork,
    FieldError,
    IfName,
    IpAddress,
    IpInterface,
    IpNetwork,
    ItemState,
    MacAddress,
    Port,
    RouteDest,
    SecretRefStr,
)

# The link kinds a spec may declare, the option blocks and the mode words are
# contract.vocab.links' (one table for the spec language, the registry and the
# controller); the Literals below are built from it. mypy sees plain str.
if TYPE_CHECKING:
    LinkKind = str
    MacvlanMode = str
    BondMode = str
else:
    LinkKind = Literal[DECLARABLE_KINDS]
    MacvlanMode = Literal[MACVLAN_MODES]
    BondMode = Literal[BOND_MODES]
KIND_BLOCKS = BLOCKS


def _table_id(value: object) -> int | str:
    if value in ("main", "default") and isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 4294967295:
        return value
    raise ValueError("table must be a number 1-4294967295, 'main' or 'default'")


TableId = Annotated[
    int | str,
    BeforeValidator(
        _table_id,
        json_schema_input_type=Annotated[int, Field(ge=1, le=4294967295)]
        | Literal["main", "default"],
    ),
]
Mtu = Annotated[int, Field(ge=68, le=65535)]


class VethOptions(SpecModel):
    peer: IfName = Field(description="Name of the other end, created in the same namespace.")


class BridgeOptions(SpecModel):
    stp: bool | None = None
    forward_delay: Annotated[int, Field(ge=0, le=3000)] | None = Field(
        default=None, description="Centiseconds."
    )


class MacvlanOptions(SpecModel):
    parent: IfName
    mode: MacvlanMode = "bridge"


class VxlanOptions(SpecModel):
    id: Annotated[int, Field(ge=0, le=16777215)] = Field(description="VNI")
    parent: IfName | None = None
    local: IpAddress | None = None
    remote: IpAddress | None = None
    group: IpAddress | None = None
    port: Port = 4789

    @model_validator(mode="after")
    def _remote_or_group(self) -> VxlanOptions:
        if self.remote and self.group:
            raise ValueError("vxlan takes either remote (unicast) or group (multicast), not both")
        if self.group and not self.parent:
            raise ValueError("a multicast vxlan group needs a parent device")
        return self


class VlanOptions(SpecModel):
    parent: IfName
    id: Annotated[int, Field(ge=1, le=4094)]


class BondOptions(SpecModel):
    mode: BondMode = "active-backup"
    miimon: Annotated[int, Field(ge=0)] | None = None


class WireguardPeer(SpecModel):
    public_key: Annotated[str, Field(pattern=rf"^{WG_KEY_PATTERN}$")]
    endpoint: (
        Annotated[
            str,
            AfterValidator(check_endpoint),
            Field(json_schema_extra={"pattern": r"^[^\s]+:\d{1,5}$"}),  # editors' coarse hint
        ]
        | None
    ) = None
    allowed_ips: tuple[IpNetwork, ...] = ()
    persistent_keepalive: Annotated[int, Field(ge=0, le=65535)] | None = None


class SecretRef(SpecModel):
    secret_ref: SecretRefStr


class WireguardOptions(SpecModel):
    private_key: SecretRef
    listen_port: Port | None = None
    peers: tuple[WireguardPeer, ...] = ()


class TunOptions(SpecModel):
    owner: Annotated[int, Field(ge=0)] | None = None
    group: Annotated[int, Field(ge=0)] | None = None
    multi_queue: bool = False


class Link(SpecModel):
    """A network interface and its addresses."""

    name: IfName
    kind: LinkKind = Field(
        description="ethernet means an existing device: configured, never created or deleted."
    )
    state: Literal["up", "down", "absent"] = Field(
        default="up", description="up/down set the admin flag; absent deletes the link."
    )
    mtu: Mtu | None = None
    mac: MacAddress | None = None
    master: IfName | None = Field(
        default=None, description="Bridge or bond this link is a port of; null detaches it."
    )
    addresses: tuple[IpInterface, ...] | None = Field(
        default=None, description="Exact list of addresses; omit to leave addresses alone."
    )
    veth: VethOptions | None = None
    bridge: BridgeOptions | None = None
    macvlan: MacvlanOptions | None = None
    vxlan: VxlanOptions | None = None
    vlan: VlanOptions | None = None
    bond: BondOptions | None = None
    wireguard: WireguardOptions | None = None
    tun: TunOptions | None = None

    @model_validator(mode="after")
    def _kind_blocks(self) -> Link:
        own = block_of(self.kind)
        for block in KIND_BLOCKS:
            if getattr(self, block) is not None and block != own:
                raise FieldError(
                    (block,), f"option block '{block}' does not apply to a {self.kind} link"
                )
        needed = REQUIRED_BLOCK.get(self.kind)
        if needed is not None and getattr(self, needed) is None and self.state != "absent":
            raise FieldError((needed,), f"a {self.kind} link needs a '{needed}' block")
        if self.kind == "ethernet" and self.state == "absent":
            raise FieldError(("state",), "an ethernet device cannot be deleted; set state: down")
        self._unique_addresses()
        if self.master is not None and self.master == self.name:
            raise FieldError(("master",), "a link cannot be its own master")
        if self.veth is not None and self.veth.peer == self.name:
            raise FieldError(("veth", "peer"), "a veth peer needs a different name")
        return self

    def _unique_addresses(self) -> None:
        seen: dict[str, str] = {}
        for i, address in enumerate(self.addresses or ()):
            ip = address.split("/", 1)[0]
            if ip in seen:
                what = "is listed twice" if seen[ip] == address else f"repeats {seen[ip]}"
                raise FieldError(("addresses", i), f"{address} {what}")
            seen[ip] = address


class Route(SpecModel):
    to: RouteDest
    via: IpAddress | None = None
    dev: IfName | None = None
    table: TableId = "main"
    metric: Annotated[int, Field(ge=0, le=4294967295)] | None = None
    src: IpAddress | None = None
    scope: Literal["global", "link", "host"] | None = None
    type: Literal["unicast", "blackhole", "unreachable", "prohibit"] = "unicast"
    onlink: bool = False
    state: ItemState = "present"

    @property
    def family(self) -> Literal["inet", "inet6"]:
        probe = self.via or self.src or ("0.0.0.0/0" if self.to == "default" else self.to)
        return "inet6" if ipaddress.ip_network(probe, strict=False).version == 6 else "inet"

    @model_validator(mode="after")
    def _consistent(self) -> Route:
        if self.type == "unicast" and self.state == "present" and not (self.via or self.dev):
            raise ValueError("a unicast route needs via or dev")
        if self.type != "unicast" and (self.via or self.dev):
            raise ValueError(f"a {self.type} route takes no via or dev")
        versions = {
            ipaddress.ip_network(x, strict=False).version
            for x in (self.to if self.to != "default" else None, self.via, self.src)
            if x
        }
        if len(versions) > 1:
            raise ValueError("to, via and src mix IPv4 and IPv6")
        return self

    @property
    def identity(self) -> str:
        fam = "6" if self.family == "inet6" else "4"
        return f"{self.table}/{fam}/{self.to}/{self.metric or 0}"


class Rule(SpecModel):
    """A policy routing rule (`ip rule`), identified by family and priority."""

    priority: Annotated[int, Field(ge=1, le=32765)]
    family: Literal["inet", "inet6"] | None = None
    from_: AddressOrNetwork | None = Field(default=None, alias="from")
    to: AddressOrNetwork | None = None
    iif: IfName | None = None
    oif: IfName | None = None
    fwmark: (
        Annotated[str, BeforeValidator(canonical_fwmark, json_schema_input_type=int | str)] | None
    ) = None
    table: TableId | None = None
    action: Literal["lookup", "blackhole", "unreachable", "prohibit"] = "lookup"
    state: ItemState = "present"

    @property
    def resolved_family(self) -> Literal["inet", "inet6"]:
        if self.family:
            return self.family
        for value in (self.from_, self.to):
            if value and ipaddress.ip_network(value, strict=False).version == 6:
                return "inet6"
        return "inet"

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.action == "lookup" and self.table is None and self.state == "present":
            raise ValueError("a lookup rule needs a table")
        versions = {
            ipaddress.ip_network(x, strict=False).version for x in (self.from_, self.to) if x
        }
        if len(versions) > 1:
            raise ValueError("from and to mix IPv4 and IPv6")
        if self.family and versions and ({4: "inet", 6: "inet6"}[versions.pop()] != self.family):
            raise ValueError(f"family {self.family} does not match the addresses")
        return self


# net.* sysctls: the key and value rules and SYSCTL_FIELDS (how many fields a key
# takes) are contract.vocab.netvalues', shared with registry.drivers.net.system.


def _sysctl_key(value: str) -> str:
    key = value.replace("/", ".")
    if not is_sysctl_key(key):
        raise ValueError(f"sysctl {value!r} must be a net.* key like net.ipv4.ip_forward")
    return key


def _sysctl_value(value: object) -> str:
    """A number, a boolean (1/0) or one line; fields separated by single spaces."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if is_sysctl_text(value):
        return " ".join(value.split())
    raise ValueError("sysctl value must be a number or a short single-line ASCII string")


SysctlKey = Annotated[str, BeforeValidator(_sysctl_key)]
SysctlValue = Annotated[
    str, BeforeValidator(_sysctl_value, json_schema_input_type=bool | int | str)
]

# Resolver files net.dns_set may manage (RESOLVER_FILES, resolver_path_problem) are
# contract.vocab.netvalues', shared with registry.drivers.net.system.

_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DOMAIN = rf"^{_LABEL}(\.{_LABEL})*\.?$"


class Dns(SpecModel):
    """Resolver configuration: resolv.conf, or forwarders for unbound."""

    resolver: Literal["resolvconf", "unbound"] = "resolvconf"
    servers: tuple[IpAddress, ...] = ()
    search: tuple[Annotated[str, Field(pattern=_DOMAIN, max_length=253)], ...] = ()
    options: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*(:\d{1,4})?$")], ...] = ()
    # Only resolver files (RESOLVER_FILES): /etc/resolv.conf or /etc/netns/NAME/resolv.conf
    # for resolvconf, /etc/unbound/unbound.conf.d/NAME.conf for unbound.
    path: AbsPath | None = Field(
        default=None,
        description="File to manage; default /etc/resolv.conf, or "
        "/etc/unbound/unbound.conf.d/aios-forward.conf for unbound.",
    )

    @model_validator(mode="after")
    def _limits(self) -> Dns:
        if self.path is not None:
            problem = resolver_path_problem(self.resolver, self.path)
            if problem:
                raise FieldError(("path",), problem)
        if self.resolver == "resolvconf" and len(self.servers) > 3:
            raise ValueError("resolv.conf honours at most 3 nameservers")
        if len(self.search) > 6:
            raise ValueError("resolv.conf honours at most 6 search domains")
        if len(set(self.servers)) != len(self.servers):
            raise ValueError("servers lists the same address twice")
        return self


class NetworkSpec(ResourceSpec):
    links: tuple[Link, ...] = ()
    routes: tuple[Route, ...] = ()
    rules: tuple[Rule, ...] = ()
    sysctls: dict[SysctlKey, SysctlValue] = Field(default_factory=dict)
    dns: Dns | None = None

    @model_validator(mode="after")
    def _sysctl_fields(self) -> NetworkSpec:
        for key, value in self.sysctls.items():
            problem = sysctl_fields_problem(key, value)
            if problem:
                raise FieldError(("sysctls", key), problem)
        return self

    @model_validator(mode="after")
    def _veth_pairs(self) -> NetworkSpec:
        """Both ends of a veth pair may be listed (to configure each); they must agree."""
        by_name = {link.name: (i, link) for i, link in enumerate(self.links)}
        for link in self.links:
            if link.veth is None or link.veth.peer not in by_name:
                continue
            j, peer = by_name[link.veth.peer]
            if peer.veth is None or peer.veth.peer != link.name:
                raise FieldError(
                    ("links", j),
                    f"{peer.name} is the veth peer of {link.name}: declare it with kind: veth "
                    f"and veth: {{peer: {link.name}}}",
                )
        return self


class Network(Resource):
    """Network links, addresses, routes, rules, sysctls and DNS of the target."""

    KIND = "Network"
    kind: Literal["Network"]
    spec: NetworkSpec

    def claims(self) -> Iterator[Claim]:
        listed = {link.name for link in self.spec.links}
        for i, link in enumerate(self.spec.links):
            yield Claim(key=f"interface:{link.name}", loc=("spec", "links", i, "name"))
            if link.veth is not None and link.veth.peer not in listed:  # else listed itself
                yield Claim(
                    key=f"interface:{link.veth.peer}", loc=("spec", "links", i, "veth", "peer")
                )
        for i, route in enumerate(self.spec.routes):
            yield Claim(key=f"route:{route.identity}", loc=("spec", "routes", i, "to"))
        for i, rule in enumerate(self.spec.rules):
            yield Claim(
                key=f"rule:{rule.resolved_family}/{rule.priority}",
                loc=("spec", "rules", i, "priority"),
            )
        for key in self.spec.sysctls:
            yield Claim(key=f"sysctl:{key}", loc=("spec", "sysctls", key))
        if self.spec.dns is not None:
            yield Claim(key="dns:resolver", loc=("spec", "dns"))
