"""Plan the address changes of the declared links (part of controllers.network.plan).

Per link, against the kernel's rules (modelled in effects_ip, replayed here
on a working copy so the plan and the simulation agree):
  - early: new addresses go on before any old one goes (a moving management
    address keeps working), except where the kernel does not allow it:
  - IPv4 subnets that lose an address and keep or gain another: the old
    ones are deleted secondaries first, then the primary — whose deletion
    takes the remaining secondaries along unless promote_secondaries is set
    — and then every declared address of the subnet that is missing is
    added (again); this runs before the routes, whose gateways need them;
  - an IPv6 address whose prefix length changes is deleted, then added
    (replace keeps the old prefix);
  - late: the other removals, secondaries before primaries, run with the
    removals at the end of the plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from controllers.network import effects_ip
from controllers.network.desired import Wanted, addresses_view
from controllers.network.state import NetState, address_key, subnet
from controllers.network.steps import step
from controllers.network.world import World
from reconciler.sdk.plan import Change, Step


@dataclass
class AddressPlan:
    early: list[Step] = field(default_factory=list)
    late: list[Step] = field(default_factory=list)


def plan_addresses(changes: Iterable[Change], want: Wanted, view: NetState) -> AddressPlan:
    by_obj = {c.object: c for c in changes if c.object.startswith("address:")}
    out = AddressPlan()
    world = World.of(view)
    for name, item in want.links.items():
        declared = addresses_view(item.link)
        if declared is None:
            continue
        adds = [by_obj[k] for a in declared if (k := address_key(name, a)) in by_obj]
        world.links.setdefault(name, _new_link(name, item.link.kind))
        have = world.links[name]["addresses"]
        removes = [by_obj[k] for a in have if (k := address_key(name, a)) in by_obj]
        if adds or removes:
            _link(out, world, name, declared, adds, [c for c in removes if c.op == "remove"])
    return out


def _link(
    out: AddressPlan,
    world: World,
    name: str,
    declared: tuple[str, ...],
    adds: list[Change],
    removes: list[Change],
) -> None:
    removed_v4 = {subnet(c.old) for c in removes if ":" not in c.old}
    add_ips = {c.new.split("/")[0] for c in adds if ":" in c.new}
    v6_swaps = [c for c in removes if ":" in c.old and c.old.split("/")[0] in add_ips]
    swapped_ips = {c.old.split("/")[0] for c in v6_swaps}
    swap_subnets = sorted(s for s in removed_v4 if any(_in(a, s) for a in declared))
    for change in adds:
        held = change.new.split("/")[0] in swapped_ips or (
            ":" not in change.new and subnet(change.new) in removed_v4
        )
        if not held:
            out.early.append(_add(world, name, change.new, [change.id]))
    adds_by_address = {c.new: c for c in adds}
    for net in swap_subnets:
        dels = [c for c in removes if ":" not in c.old and subnet(c.old) == net]
        out.early += _deletes(world, name, dels)
        missing = [a for a in declared if _in(a, net) and a not in world.links[name]["addresses"]]
        for address in missing:
            new = adds_by_address.get(address)
            ids = [new.id] if new else [c.id for c in dels]
            again = "" if new else " again: deleting the subnet's primary took it along"
            out.early.append(_add(world, name, address, ids, again))
    for change in v6_swaps:
        out.early.append(_delete(world, name, change.old, [change.id]))
        new = next(c for c in adds if c.new.split("/")[0] == change.old.split("/")[0])
        out.early.append(_add(world, name, new.new, [new.id]))
    rest = [c for c in removes if c not in v6_swaps and not _in_any(c.old, swap_subnets)]
    out.late += _deletes(world, name, rest)


def _new_link(name: str, kind: str) -> dict[str, Any]:
    """A link the plan creates before its addresses (no addresses yet)."""
    return {
        "name": name,
        "kind": kind,
        "state": "down",
        "mtu": None,
        "mac": None,
        "master": None,
        "parent": None,
        "options": {},
        "addresses": [],
        "secondaries": [],
    }


def _in(address: str, net: str) -> bool:
    return ":" not in address and subnet(address) == net


def _in_any(address: str, nets: list[str]) -> bool:
    return any(_in(address, n) for n in nets)


def _deletes(world: World, name: str, removes: list[Change]) -> list[Step]:
    """Delete addresses; an IPv4 primary's deletion also removes its subnet's secondaries
    (unless promote_secondaries), so those need no delete of their own."""
    link = world.links[name]
    steps: list[Step] = []
    by_subnet: dict[str, list[Change]] = {}
    for change in removes:
        by_subnet.setdefault(
            subnet(change.old) if ":" not in change.old else change.old, []
        ).append(change)
    for group in by_subnet.values():
        primary = [c for c in group if c.old not in link["secondaries"]]
        if ":" not in group[0].old and primary and not effects_ip.promotes(world, name):
            steps.append(_delete(world, name, primary[0].old, [c.id for c in group]))
            continue
        for change in sorted(group, key=lambda c: (c.old not in link["secondaries"], c.old)):
            steps.append(_delete(world, name, change.old, [change.id]))
    return steps


def _add(world: World, name: str, address: str, ids: list[str], again: str = "") -> Step:
    args = {"dev": name, "address": address}
    effects_ip.addr_add(world, args)
    return step("addr_add", args, f"add {address} on {name}{again}", ids)


def _delete(world: World, name: str, address: str, ids: list[str]) -> Step:
    args = {"dev": name, "address": address}
    gone = [a for a in world.links[name]["addresses"] if a != address]
    effects_ip.addr_delete(world, args)
    gone = [a for a in gone if a not in world.links[name]["addresses"]]
    also = f"; its secondaries {', '.join(gone)} go with it" if gone else ""
    return step("addr_delete", args, f"remove {address} from {name} (not declared{also})", ids)
