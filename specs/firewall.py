"""Kind Firewall: nftables tables with chains, rules, named sets and NAT.

Each declared table is owned whole: the controller renders it completely and
replaces it in one atomic `nft -f` transaction, so anything in the table that
the spec does not declare disappears. Rules are nft statements, one per
string, checked here for the characters that could break out of a rule
(newline, ';', '#', unbalanced braces or quotes). A `services` list is a
shorthand that compiles to accept rules after the explicit rules.
`force: true` on a table allows a default-deny that could cut the management
path (the lockout guard refuses it otherwise).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError, model_validator

from specs.base import Claim, Resource, ResourceSpec, SpecModel
from specs.types import (
    IFNAME_CHARS,
    FieldError,
    IfName,
    ItemState,
    MacAddress,
    NftIdent,
    PortRange,
)

Family = Literal["inet", "ip", "ip6", "arp", "bridge", "netdev"]
Hook = Literal["prerouting", "input", "forward", "output", "postrouting", "ingress", "egress"]
ChainType = Literal["filter", "nat", "route"]
SetType = Literal[
    "ipv4_addr", "ipv6_addr", "ether_addr", "inet_proto", "inet_service", "mark", "ifname"
]
PRIORITY_NAMES = {
    "raw": -300,
    "mangle": -150,
    "dstnat": -100,
    "filter": 0,
    "security": 50,
    "srcnat": 100,
}
_PRIORITY = re.compile(r"^(raw|mangle|dstnat|filter|security|srcnat)(\s*[-+]\s*\d{1,4})?$")
_FORBIDDEN_START = re.compile(
    r"^(add|create|delete|destroy|flush|insert|replace|reset|list|include|define|redefine|"
    r"undefine|table|chain|rename|monitor|export|import|describe)\b"
)
MAX_RULE_LENGTH = 4096
_PORT_RANGE: TypeAdapter[str] = TypeAdapter(PortRange)
_MAC: TypeAdapter[str] = TypeAdapter(MacAddress)


_SIMPLE_RULE = re.compile(r"[\w .,:/@$*!=<>&|^~+-]+", re.ASCII)  # used with fullmatch


def check_rule_text(value: str) -> str:
    """One nft rule statement on one line, that cannot escape its chain."""
    if len(value) <= MAX_RULE_LENGTH and _SIMPLE_RULE.fullmatch(value):
        # fast path (10,000-rule chains): no quotes, brackets, ';', '#' or control characters
        stripped = value.strip()
        if stripped and not _FORBIDDEN_START.match(stripped):
            return stripped
    if not value.strip():
        raise ValueError("rule is empty")
    if len(value) > MAX_RULE_LENGTH:
        raise ValueError(f"rule is longer than {MAX_RULE_LENGTH} characters")
    if not value.isprintable() or "\n" in value or "\r" in value:
        raise ValueError("rule must be one line of printable characters")
    depth = {"{": 0, "[": 0, "(": 0}
    closing = {"}": "{", "]": "[", ")": "("}
    in_quote = False
    for ch in value:
        if ch == '"':
            in_quote = not in_quote
        elif in_quote:
            continue
        elif ch in ";#":
            raise ValueError(f"rule may not contain {ch!r} outside a quoted string")
        elif ch in depth:
            depth[ch] += 1
        elif ch in closing:
            depth[closing[ch]] -= 1
            if depth[closing[ch]] < 0:
                raise ValueError(f"rule has an unbalanced {ch!r}")
    if in_quote:
        raise ValueError("rule has an unterminated quoted string")
    if any(depth.values()):
        raise ValueError("rule has unbalanced brackets")
    if _FORBIDDEN_START.match(value.strip()):
        raise ValueError("rule must be a statement, not an nft command")
    return value.strip()


RuleText = Annotated[str, AfterValidator(check_rule_text)]


def _priority(value: object) -> int | str:
    if isinstance(value, bool):
        raise ValueError("priority must be a number or a name like filter, srcnat or 'filter + 10'")
    if isinstance(value, int):
        if not -2147483648 <= value <= 2147483647:
            raise ValueError("priority is out of the 32-bit range")
        return value
    if isinstance(value, str) and _PRIORITY.match(value.strip()):
        return re.sub(r"\s*([-+])\s*", r" \1 ", value.strip())
    raise ValueError("priority must be a number or a name like filter, srcnat or 'filter + 10'")


Priority = Annotated[int | str, AfterValidator(_priority)]


class Service(SpecModel):
    """Shorthand for an accept (or drop/reject) rule on a port."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")] | None = Field(
        default=None, description="Becomes the rule's comment."
    )
    port: PortRange | None = None
    ports: tuple[PortRange, ...] = ()
    protocol: Literal["tcp", "udp"] = "tcp"
    from_: tuple[Annotated[str, Field(pattern=r"^[0-9A-Fa-f:.\/]+$")], ...] = Field(
        default=(), alias="from", description="Source addresses or networks; empty: anywhere."
    )
    iif: IfName | None = None
    action: Literal["accept", "drop", "reject"] = "accept"

    @model_validator(mode="after")
    def _check(self) -> Service:
        if (self.port is None) == (not self.ports):
            raise ValueError("a service needs exactly one of port or ports")
        for source in self.from_:
            try:
                ipaddress.ip_network(source, strict=True)
            except ValueError as exc:
                raise ValueError(f"from: invalid network {source!r}: {exc}") from None
        return self

    @property
    def port_list(self) -> tuple[str, ...]:
        return (self.port,) if self.port is not None else self.ports


def check_comment(value: str) -> str:
    """An nft comment: rendered inside "...", which ends at the next '"' (nft has no
    escapes), so no '"', no backslash and nothing but printable ASCII. Shared with
    registry.drivers.nft.ruleset."""
    if len(value) > 128:
        raise ValueError("comment is longer than 128 characters")
    if not value.isascii() or not value.isprintable() or '"' in value or "\\" in value:
        raise ValueError(f"comment {value!r} may hold printable ASCII only, without '\"' or '\\'")
    return value


class NamedSet(SpecModel):
    name: NftIdent
    type: SetType
    flags: tuple[Literal["constant", "interval", "timeout"], ...] = ()
    elements: tuple[str | int, ...] = ()
    comment: (
        Annotated[
            str,
            AfterValidator(check_comment),
            Field(json_schema_extra={"pattern": r'^[^"\n\\]{0,128}$'}),  # editors' hint
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _elements(self) -> NamedSet:
        for i, element in enumerate(self.elements):
            try:
                check_element(self.type, element, interval="interval" in self.flags)
            except ValueError as exc:
                raise FieldError(("elements", i), str(exc)) from None
            if element in self.elements[:i]:
                raise FieldError(("elements", i), f"element {element!r} is listed twice")
        return self


def _plain_message(exc: ValueError) -> str:
    """The message of a ValueError, or of the first error of a ValidationError."""
    if isinstance(exc, ValidationError):
        return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
    return str(exc)


# An ifname set element: an interface name (specs.types), or a prefix ending in '*'.
_IFNAME_ELEMENT = re.compile(rf"(?!-)[{IFNAME_CHARS}]{{1,15}}|(?!-)[{IFNAME_CHARS}]{{0,14}}\*")


def check_element(set_type: str, element: str | int, *, interval: bool) -> None:
    """A set element of `set_type`, or ValueError saying why not. Elements are spliced
    into nft text (ifnames inside "..."), so each type admits only its own syntax.
    Shared with registry.drivers.nft.ruleset (the registry's re-check of firewall.apply)."""
    try:
        _check_element(set_type, element, interval=interval)
    except ValueError as exc:
        raise ValueError(_plain_message(exc)) from None


def _check_element(set_type: str, element: str | int, *, interval: bool) -> None:
    text = str(element)
    if isinstance(element, bool) or not text.isascii() or not text.isprintable():
        raise ValueError(f"element {text!r} is not printable ASCII")
    if set_type in ("ipv4_addr", "ipv6_addr"):
        version = 4 if set_type == "ipv4_addr" else 6
        if "%" in text:  # ipaddress would take any text after '%' as a scope id
            raise ValueError(f"element {text!r} may not carry a scope id ('%...')")
        try:
            addr: (
                ipaddress.IPv4Network
                | ipaddress.IPv6Network
                | ipaddress.IPv4Address
                | ipaddress.IPv6Address
            )
            if "/" in text:
                addr = ipaddress.ip_network(text, strict=True)
            else:
                addr = ipaddress.ip_address(text)
        except ValueError as exc:
            raise ValueError(f"element {text!r}: {exc}") from None
        if addr.version != version:
            raise ValueError(f"element {text!r} is not an IPv{version} address")
        if "/" in text and not interval:
            raise ValueError(f"element {text!r} is a network: the set needs flags [interval]")
    elif set_type == "inet_service":
        _check_port_element(text, interval=interval)
    elif set_type == "ether_addr":
        _MAC.validate_python(text)
    elif set_type == "inet_proto":
        if text not in ("tcp", "udp", "icmp", "icmpv6", "sctp", "esp", "ah", "gre") and not (
            text.isdigit() and 0 <= int(text) <= 255
        ):
            raise ValueError(f"element {text!r} is not a protocol")
    elif set_type == "mark":
        if not re.fullmatch(r"0x[0-9a-fA-F]{1,8}|\d{1,10}", text):
            raise ValueError(f"element {text!r} is not a mark")
    elif set_type == "ifname" and not _IFNAME_ELEMENT.fullmatch(text):
        raise ValueError(
            f"element {text!r} is not an interface name (letters, digits, '_', '.', '-'; "
            "a trailing '*' matches a prefix)"
        )
    elif set_type not in _SET_TYPES:
        raise ValueError(f"unknown set type {set_type!r}")


_SET_TYPES: frozenset[str] = frozenset(get_args(SetType))


def _check_port_element(text: str, *, interval: bool) -> None:
    canonical = _PORT_RANGE.validate_python(int(text) if text.isdigit() else text)
    if "-" in canonical and not interval:
        raise ValueError(f"element {text!r} is a range: the set needs flags [interval]")


class Chain(SpecModel):
    name: NftIdent
    type: ChainType | None = None
    hook: Hook | None = None
    priority: Priority | None = None
    policy: Literal["accept", "drop"] | None = None
    device: IfName | None = None
    rules: tuple[RuleText, ...] = ()
    services: tuple[Service, ...] = ()

    @property
    def is_base(self) -> bool:
        return self.hook is not None

    @model_validator(mode="after")
    def _base_chain(self) -> Chain:
        if self.hook is not None:
            if self.type is None or self.priority is None:
                raise ValueError("a base chain (with hook) needs type and priority")
        elif any(f is not None for f in (self.type, self.priority, self.policy, self.device)):
            raise ValueError("type, priority, policy and device need a hook (base chain)")
        if self.type == "nat" and self.hook not in ("prerouting", "input", "output", "postrouting"):
            raise ValueError("a nat chain hooks prerouting, input, output or postrouting")
        return self


class Table(SpecModel):
    family: Family = "inet"
    name: NftIdent
    state: ItemState = "present"
    force: bool = Field(
        default=False,
        description="Allow a ruleset that drops the management path (lockout guard).",
    )
    sets: tuple[NamedSet, ...] = ()
    chains: tuple[Chain, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Table:
        names = [c.name for c in self.chains]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise FieldError(("chains", i, "name"), f"two chains are named {name}")
        set_names = [s.name for s in self.sets]
        for i, name in enumerate(set_names):
            if name in set_names[:i]:
                raise FieldError(("sets", i, "name"), f"two sets are named {name}")
        for i, chain in enumerate(self.chains):
            if chain.hook in ("ingress", "egress") and self.family not in ("netdev", "inet"):
                raise FieldError(
                    ("chains", i, "hook"), f"{chain.hook} hooks need family netdev or inet"
                )
            if self.family == "netdev" and chain.hook is not None and chain.device is None:
                raise FieldError(("chains", i, "device"), "a netdev base chain needs a device")
            if chain.type == "nat" and self.family not in ("inet", "ip", "ip6"):
                raise FieldError(("chains", i, "type"), "nat chains need family inet, ip or ip6")
            for j, rule in enumerate(chain.rules):
                for ref in re.findall(r"@([A-Za-z][A-Za-z0-9_.\-]*)", rule):
                    if ref not in set_names:
                        raise FieldError(
                            ("chains", i, "rules", j), f"rule refers to unknown set @{ref}"
                        )
        return self


class FirewallSpec(ResourceSpec):
    tables: tuple[Table, ...] = ()


class Firewall(Resource):
    """nftables tables owned whole by this resource."""

    KIND = "Firewall"
    kind: Literal["Firewall"]
    spec: FirewallSpec

    def claims(self) -> Iterator[Claim]:
        for i, table in enumerate(self.spec.tables):
            yield Claim(
                key=f"nft-table:{table.family}/{table.name}", loc=("spec", "tables", i, "name")
            )
