"""Kind Network: links, addresses, routes, policy rules, sysctls and DNS.

Semantics (shared with controllers.network): a field left out is not managed;
a list that is set is exact (nmstate); `state: absent` removes the object.
A link's `state` is `up` or `down` (the admin flag; both mean present) or
`absent`. Kind-specific options live in a block named after the kind
(`veth: {peer: ...}`), and a block that does not match `kind` is an error.
Wireguard private keys are secret references, never values.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

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

LinkKind = Literal[
    "ethernet",
    "veth",
    "bridge",
    "macvlan",
    "vxlan",
    "vlan",
    "bond",
    "wireguard",
    "tun",
    "tap",
    "ifb",
]
KIND_BLOCKS = ("veth", "bridge", "macvlan", "vxlan", "vlan", "bond", "wireguard", "tun")


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
    mode: Literal["private", "vepa", "bridge", "passthru", "source"] = "bridge"


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
    mode: Literal[
        "balance-rr",
        "active-backup",
        "balance-xor",
        "broadcast",
        "802.3ad",
        "balance-tlb",
        "balance-alb",
    ] = "active-backup"
    miimon: Annotated[int, Field(ge=0)] | None = None


_HOST_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ENDPOINT_HOST = re.compile(rf"{_HOST_LABEL}(\.{_HOST_LABEL})*\.?")


def check_endpoint(value: str) -> str:
    """A WireGuard endpoint: `host:port`, host a DNS name, an IPv4 address or `[IPv6]`.

    It reaches `wg set ... endpoint VALUE` (argv); this keeps it to what wg parses as
    one host and one port. Shared with registry.drivers.net.commands (the registry's re-check).
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"endpoint {value!r} must be host:port with a port 1-65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"endpoint {value!r}: {host} is not an IPv6 address") from None
    elif len(host) > 253 or not _ENDPOINT_HOST.fullmatch(host):
        raise ValueError(
            f"endpoint {value!r}: host must be a DNS name, an IPv4 address or [IPv6 address]"
        )
    return value


class WireguardPeer(SpecModel):
    public_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$")]
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
        block_kind = "tun" if self.kind in ("tun", "tap") else self.kind
        for block in KIND_BLOCKS:
            if getattr(self, block) is not None and block != block_kind:
                raise FieldError(
                    (block,), f"option block '{block}' does not apply to a {self.kind} link"
                )
        if self.kind in ("veth", "macvlan", "vlan", "vxlan", "wireguard") and (
            getattr(self, block_kind) is None and self.state != "absent"
        ):
            raise FieldError((block_kind,), f"a {self.kind} link needs a '{block_kind}' block")
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


_FWMARK = re.compile(r"(0x[0-9a-fA-F]{1,8}|\d{1,10})(/(0x[0-9a-fA-F]{1,8}|\d{1,10}))?")


def _fwmark(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFFFFFF:
        return hex(value)
    if isinstance(value, str) and _FWMARK.fullmatch(value):
        parts = [hex(int(p, 0)) for p in value.split("/")]
        return "/".join(parts)
    raise ValueError("fwmark must be a number or 'mark/mask' like '0x1/0xff'")


class Rule(SpecModel):
    """A policy routing rule (`ip rule`), identified by family and priority."""

    priority: Annotated[int, Field(ge=1, le=32765)]
    family: Literal["inet", "inet6"] | None = None
    from_: AddressOrNetwork | None = Field(default=None, alias="from")
    to: AddressOrNetwork | None = None
    iif: IfName | None = None
    oif: IfName | None = None
    fwmark: Annotated[str, BeforeValidator(_fwmark, json_schema_input_type=int | str)] | None = None
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


_SYSCTL = re.compile(r"^net(\.[A-Za-z0-9_\-@]+)+$")

# net.* keys whose value has several fields (the kernel prints them tab-separated);
# None: any number of names. Every other key takes ONE field: the kernel keeps the
# first of "1 0", reads back "1", and the value would never match (ResidualDrift).
SYSCTL_FIELDS: dict[str, int | None] = {
    "net.ipv4.tcp_rmem": 3,
    "net.ipv4.tcp_wmem": 3,
    "net.ipv4.tcp_mem": 3,
    "net.ipv4.udp_mem": 3,
    "net.ipv4.ip_local_port_range": 2,
    "net.ipv4.ping_group_range": 2,
    "net.sctp.sctp_mem": 3,
    "net.sctp.sctp_rmem": 3,
    "net.sctp.sctp_wmem": 3,
    "net.ipv4.tcp_allowed_congestion_control": None,
}


def sysctl_fields_problem(key: str, value: str) -> str | None:
    """Why `value` can never read back as itself for `key`, or None.

    Shared with registry.drivers.net.system (the registry's check of net.sysctl_set).
    """
    fields = value.split()
    if not fields:
        return f"{key} needs a value"
    want = SYSCTL_FIELDS.get(key, 1)
    if want is None or len(fields) == want:
        return None
    if want == 1:
        return (
            f"{key} takes one value, not {len(fields)} ({value!r}): the kernel would keep "
            "the first and the value would never match"
        )
    return f"{key} takes {want} fields separated by spaces, not {len(fields)} ({value!r})"


def _sysctl_key(value: str) -> str:
    key = value.replace("/", ".")
    if not _SYSCTL.fullmatch(key) or len(key) > 200:
        raise ValueError(f"sysctl {value!r} must be a net.* key like net.ipv4.ip_forward")
    return key


def _sysctl_value(value: object) -> str:
    """A number, a boolean (1/0) or one line; fields separated by single spaces."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if (
        isinstance(value, str)
        and len(value) < 256
        and value.isascii()
        and value.replace("\t", " ").isprintable()
    ):
        return " ".join(value.split())
    raise ValueError("sysctl value must be a number or a short single-line ASCII string")


SysctlKey = Annotated[str, BeforeValidator(_sysctl_key)]
SysctlValue = Annotated[
    str, BeforeValidator(_sysctl_value, json_schema_input_type=bool | int | str)
]

# Resolver files net.dns_set may manage (whole-file rewrites): resolv.conf, a network
# namespace's resolv.conf (`ip netns exec` binds /etc/netns/NAME/resolv.conf over it)
# and unbound drop-ins. Nothing else: the file is replaced whole, at medium risk.
# systemd-resolved's files under /run/systemd/resolve are resolved's own (it rewrites
# them); configure resolved itself instead. Shared with registry.drivers.net.system.
RESOLV_CONF = "/etc/resolv.conf"
UNBOUND_FORWARD = "/etc/unbound/unbound.conf.d/aios-forward.conf"
_FILE_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
RESOLVER_FILES = {
    "resolvconf": re.compile(rf"/etc/resolv\.conf|/etc/netns/{_FILE_PART}/resolv\.conf"),
    "unbound": re.compile(rf"/etc/unbound/unbound\.conf\.d/{_FILE_PART}\.conf"),
}
RESOLVER_FILE_HELP = {
    "resolvconf": "/etc/resolv.conf or /etc/netns/NAME/resolv.conf",
    "unbound": "a file /etc/unbound/unbound.conf.d/NAME.conf",
}


def resolver_path_problem(resolver: str, path: str) -> str | None:
    """Why `path` is not a file the `resolver` may manage, or None."""
    pattern = RESOLVER_FILES.get(resolver)
    if pattern is None:
        return f"unknown resolver {resolver!r}"
    if pattern.fullmatch(path):
        return None
    return (
        f"{path!r} is not a resolver file for {resolver}: the whole file is rewritten, so "
        f"only {RESOLVER_FILE_HELP[resolver]} may be managed"
    )


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
