"""Link kinds: every kind aios knows, written once, with what each layer may do with it.

One row per kind (`LINK_KINDS`); every other kind list in the tree is derived
from it, and tests/unit/test_vocab.py fails when one is not:

- `KINDS`: every kind `net.state` reports (the enum of its output schema,
  contract.catalogue.net), in this order;
- `CREATABLE_KINDS`: what `net.link_add` creates and `net.link_delete`
  deletes (the enum of link_add's input schema, contract.catalogue.links);
  the network controller calls these `VIRTUAL_KINDS` (controllers.network.state:
  links aios may create, delete and prune; everything else is an existing device);
- `DECLARABLE_KINDS`: what a Network spec may say in `kind:` (the Literal of
  specs.network.Link.kind, built from this tuple);
- `CHILD_KINDS`: kinds whose `parent` is a lower device they die with;
  `MASTER_KINDS`: kinds other links can be ports of;
- `BLOCK_KINDS` / `REQUIRED_BLOCK` / `block_of`: the kind-specific option
  block (`veth: {peer}`; tun and tap share `tun`) and which kinds need theirs.

Where the layers differ, the row says so on purpose:
- `ethernet` is declarable but not creatable: it names an existing device that
  a spec configures; aios never creates or deletes one.
- `dummy` is creatable (net.link_add takes it; the controller treats an
  observed dummy as virtual: it may delete or prune one) but not declarable: the
  spec language has never accepted it (tests/unit/test_specs_models.py refuses
  `kind: dummy`), and the kernels aios is tested on are built without
  CONFIG_DUMMY, where `ip link add X type dummy` fails; `ifb` is the stand-in
  that behaves alike. Making it declarable is a spec-language change, not a
  refactoring.
- `loopback` and `other` are only observed: no spec names them, no tool makes them.

Also the option words of the kind blocks (`MACVLAN_MODES`, `BOND_MODES`) the
spec models and the link_add schema both enumerate.

Adding a link kind: a row here, its command builder in
registry.drivers.net.commands (`_kind_args`), its parsing in
registry.drivers.net.state (`link_info`), its option block schema in
contract.catalogue.links (`BLOCKS`) and spec model in specs.network when it
has one, and the effect model in controllers.network.effects.

Plain data, no pydantic: imported by specs.network, contract.catalogue.links,
controllers.network.state and registry.drivers.net.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class LinkKind:
    """One link kind and what each layer may do with it (see the module docstring)."""

    name: str
    creatable: bool  # net.link_add creates it, net.link_delete deletes it (virtual link)
    declarable: bool  # a Network spec may say `kind: <name>`
    child: bool = False  # its `parent` is a lower device it dies with
    master: bool = False  # other links can be its ports (`master: <name>`)
    block: str | None = None  # name of its option block (link_add input, spec Link field)
    block_required: bool = False  # a link of this kind needs its block (unless absent)


LINK_KINDS: Final[tuple[LinkKind, ...]] = (
    LinkKind("ethernet", creatable=False, declarable=True),  # an existing device
    LinkKind("loopback", creatable=False, declarable=False),  # observed only (lo)
    LinkKind("veth", True, True, block="veth", block_required=True),
    LinkKind("bridge", True, True, master=True, block="bridge"),
    LinkKind("macvlan", True, True, child=True, block="macvlan", block_required=True),
    LinkKind("vxlan", True, True, child=True, block="vxlan", block_required=True),
    LinkKind("vlan", True, True, child=True, block="vlan", block_required=True),
    LinkKind("bond", True, True, master=True, block="bond"),
    LinkKind("wireguard", True, True, block="wireguard", block_required=True),
    LinkKind("tun", True, True, block="tun"),
    LinkKind("tap", True, True, block="tun"),  # tun and tap share the `tun` block
    LinkKind("ifb", True, True),
    LinkKind("dummy", creatable=True, declarable=False),  # see the module docstring
    LinkKind("other", creatable=False, declarable=False),  # any other kind, observed only
)

BY_NAME: Final = MappingProxyType({k.name: k for k in LINK_KINDS})
KINDS: Final[tuple[str, ...]] = tuple(k.name for k in LINK_KINDS)
CREATABLE_KINDS: Final[tuple[str, ...]] = tuple(k.name for k in LINK_KINDS if k.creatable)
DECLARABLE_KINDS: Final[tuple[str, ...]] = tuple(k.name for k in LINK_KINDS if k.declarable)
VIRTUAL_KINDS: Final[frozenset[str]] = frozenset(CREATABLE_KINDS)
CHILD_KINDS: Final[frozenset[str]] = frozenset(k.name for k in LINK_KINDS if k.child)
MASTER_KINDS: Final[frozenset[str]] = frozenset(k.name for k in LINK_KINDS if k.master)


def _block_kinds() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for kind in LINK_KINDS:
        if kind.block is not None:
            out[kind.block] = (*out.get(kind.block, ()), kind.name)
    return out


# Option block -> the kinds it belongs to, in LINK_KINDS order.
BLOCK_KINDS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(_block_kinds())
BLOCKS: Final[tuple[str, ...]] = tuple(BLOCK_KINDS)
# Kind -> the block a link of that kind must carry.
REQUIRED_BLOCK: Final[Mapping[str, str]] = MappingProxyType(
    {k.name: k.block for k in LINK_KINDS if k.block_required and k.block is not None}
)


def block_of(kind: str) -> str | None:
    """The option block of `kind` (`tun` for tun and tap), or None when it has none."""
    row = BY_NAME.get(kind)
    return row.block if row is not None else None


MACVLAN_MODES: Final[tuple[str, ...]] = ("private", "vepa", "bridge", "passthru", "source")
BOND_MODES: Final[tuple[str, ...]] = (
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
)
