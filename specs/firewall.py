"""Kind Firewall: nftables tables with chains, rules, named sets and NAT.

Each declared table is owned whole: the controller renders it completely and
replaces it in one atomic `nft -f` transaction, so anything in the table that
the spec does not declare disappears. Rules are nft statements, one per
string, checked for the characters that could break out of a rule
(newline, ';', '#', unbalanced braces or quotes) by contract.vocab.nft, whose
checks (rules, comments, set elements, identifiers) and table words the
firewall tools apply too. A `services` list is a
shorthand that compiles to accept rules after the explicit rules.
`force: true` on a table allows a default-deny that could cut the management
path (the lockout guard refuses it otherwise).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from contract.vocab.nft import (
    CHAIN_TYPES,
    DECLARABLE_SET_FLAGS,
    FAMILIES,
    HOOKS,
    POLICIES,
    SET_TYPES,
    check_comment,
    check_element,
    check_rule_text,
    named_priority,
)
from specs.base import Claim, Resource, ResourceSpec, SpecModel
from specs.types import FieldError, IfName, ItemState, NftIdent, PortRange

# The words of a table are contract.vocab.nft's (shared with the firewall tools); the
# Literals below are built from it. mypy sees plain str.
if TYPE_CHECKING:
    Family = str
    Hook = str
    ChainType = str
    SetType = str
    SetFlag = str
    Policy = str
else:
    Family = Literal[FAMILIES]
    Hook = Literal[HOOKS]
    ChainType = Literal[CHAIN_TYPES]
    SetType = Literal[SET_TYPES]
    SetFlag = Literal[DECLARABLE_SET_FLAGS]
    Policy = Literal[POLICIES]


# One nft statement per rule (contract.vocab.nft.check_rule_text, with its fast path).
RuleText = Annotated[str, AfterValidator(check_rule_text)]

# A chain priority: a 32-bit number, or a name with an optional offset in the spec
# language's form (contract.vocab.nft.named_priority: no `out`, any whitespace).


def _priority(value: object) -> int | str:
    if isinstance(value, bool):
        raise ValueError("priority must be a number or a name like filter, srcnat or 'filter + 10'")
    if isinstance(value, int):
        if not -2147483648 <= value <= 2147483647:
            raise ValueError("priority is out of the 32-bit range")
        return value
    if isinstance(value, str) and (named := named_priority(value, declared=True)) is not None:
        return named
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


class NamedSet(SpecModel):
    name: NftIdent
    type: SetType
    flags: tuple[SetFlag, ...] = ()
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


class Chain(SpecModel):
    name: NftIdent
    type: ChainType | None = None
    hook: Hook | None = None
    priority: Priority | None = None
    policy: Policy | None = None
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
