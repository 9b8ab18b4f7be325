"""Effect model of the net write tools: `simulate(state, steps) -> predicted NetState`.

Pure. Models every input field of every net write (and `net.apply`'s
commands), with the kernel's side effects that matter for ordering:
  - link_add refuses an existing name, a missing parent or master; a veth
    creates both ends; new links are down unless `state: up`;
  - link_delete takes the veth peer and the macvlan/vlan/vxlan children
    along, detaches ports, drops the routes of the links that vanish and
    blanks their per-interface sysctls; ethernet devices cannot be deleted;
  - bringing a link down drops its routes (both families);
  - ifb, tun and wireguard links cannot change their MAC address;
  - addresses: IPv4 secondaries (same subnet) die with their primary unless
    promote_secondaries is set; an IPv6 address keeps its prefix on replace;
    deleting an address drops the routes that use it as src, and deleting a
    link's last IPv4 address drops the link's IPv4 routes;
  - routes need their device up and their gateway reachable (a connected
    address or device route on an up link, or onlink);
  - rules: identical rules are refused, deletes match the given selectors;
  - sysctls: a per-interface key needs its link; ip_forward / all.forwarding
    propagate to default and per-interface forwarding keys.
A step it cannot model raises ValueError (the verifier reports it). The
helpers here also serve diff (what vanishes with a link). MUST NOT import
specs (an import-linter contract).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from controllers.network import effects_ip
from controllers.network.state import (
    CHILD_KINDS,
    MASTER_KINDS,
    VIRTUAL_KINDS,
    NetState,
    children_index,
)
from controllers.network.world import World
from reconciler.sdk.plan import Step

_NO_MAC = frozenset({"tun", "wireguard"})
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "bridge": {"stp": False, "forward_delay": 1500},
    "macvlan": {"mode": "bridge"},
    "vxlan": {"parent": None, "local": None, "remote": None, "group": None, "port": 4789},
    "bond": {"mode": "active-backup", "miimon": 100},
    "tun": {"owner": None, "group": None, "multi_queue": False},
    "tap": {"owner": None, "group": None, "multi_queue": False},
}


def simulate(state: NetState, steps: Sequence[Step]) -> NetState:
    world = World.of(state)
    for number, step in enumerate(steps, start=1):
        try:
            if step.tool == "net.apply":
                for command in step.input.get("commands", ()):
                    apply_op(world, str(command["op"]), dict(command["args"]))
            elif step.tool.startswith("net."):
                apply_op(world, step.tool.removeprefix("net."), dict(step.input))
            else:
                raise ValueError(f"{step.tool} is not a network tool")
        except (KeyError, TypeError) as exc:
            raise ValueError(f"step {number} ({step.tool}): malformed input: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"step {number} ({step.tool}): {exc}") from None
    return world.freeze()


def apply_op(world: World, op: str, args: dict[str, Any]) -> None:
    handler = _LINK_OPS.get(op) or effects_ip.OPS.get(op)
    if handler is None:
        raise ValueError(f"cannot model net.{op}")
    handler(world, args)


# --- links -------------------------------------------------------------------


def link_add(world: World, args: dict[str, Any]) -> None:
    name, kind = str(args["name"]), str(args["kind"])
    if name in world.links:
        raise ValueError(f"link {name} already exists (link_add is not idempotent)")
    block = dict(args.get("tun" if kind in ("tun", "tap") else kind) or {})
    if kind in _NO_MAC and args.get("mac"):
        raise ValueError(f"a {kind} link has no Ethernet address")
    parent = _parent(world, kind, block)
    options = {**_KIND_DEFAULTS.get(kind, {}), **block}
    mtu = args.get("mtu")
    if mtu is None:
        mtu = _default_mtu(world, kind, parent)
    world.links[name] = {
        "name": name,
        "kind": kind,
        "state": "down",
        "mtu": mtu,
        "mac": str(args["mac"]).lower() if args.get("mac") else None,
        "master": None,
        "parent": parent,
        "options": options,
        "addresses": [],
        "secondaries": [],
    }
    if kind == "veth":
        peer = str(block["peer"])
        if peer in world.links or peer == name:
            raise ValueError(f"veth peer {peer} already exists")
        world.links[peer] = {
            **world.links[name],
            "name": peer,
            "mtu": 1500,
            "mac": None,
            "parent": name,
            "options": {"peer": name},
            "addresses": [],
            "secondaries": [],
        }
    if args.get("master"):
        _set_master(world, name, str(args["master"]))
    if args.get("state") == "up":
        world.links[name]["state"] = "up"


def _parent(world: World, kind: str, block: dict[str, Any]) -> str | None:
    if kind == "veth":
        return str(block["peer"])
    if kind not in CHILD_KINDS:
        return None
    parent = block.get("parent")
    if parent is None and kind != "vxlan":
        raise ValueError(f"a {kind} link needs a parent")
    if parent is not None and parent not in world.links:
        raise ValueError(f"parent device {parent} does not exist")
    return str(parent) if parent is not None else None


def _default_mtu(world: World, kind: str, parent: str | None) -> int | None:
    lower = world.links.get(parent) if parent and kind in CHILD_KINDS else None
    if lower is None:
        return 1500
    mtu = lower["mtu"]
    if mtu is None:
        return None
    return int(mtu) - 50 if kind == "vxlan" else int(mtu)


def _set_master(world: World, name: str, master: str) -> None:
    target = world.links.get(master)
    if target is None:
        raise ValueError(f"master {master} does not exist")
    if target["kind"] not in MASTER_KINDS:
        raise ValueError(f"master {master} is a {target['kind']}, not a bridge or bond")
    if master == name:
        raise ValueError(f"link {name} cannot be its own master")
    world.links[name]["master"] = master


def link_set(world: World, args: dict[str, Any]) -> None:
    link = world.need_link(str(args["name"]))
    name = link["name"]
    if args.get("mtu") is not None:
        link["mtu"] = int(args["mtu"])
    if "master" in args:
        if args["master"]:
            _set_master(world, name, str(args["master"]))
        else:
            link["master"] = None
    if args.get("mac"):
        if link["kind"] in (*_NO_MAC, "ifb"):
            raise ValueError(f"a {link['kind']} link cannot change its MAC address")
        link["mac"] = str(args["mac"]).lower()
    if args.get("bridge"):
        if link["kind"] != "bridge":
            raise ValueError(f"{name} is a {link['kind']}, not a bridge")
        link["options"] = {**link["options"], **args["bridge"]}
    if args.get("state"):
        link["state"] = str(args["state"])
        if link["state"] == "down":
            world.routes = [r for r in world.routes if r["dev"] != name]


def link_delete(world: World, args: dict[str, Any]) -> None:
    link = world.need_link(str(args["name"]))
    if link["kind"] not in VIRTUAL_KINDS:
        raise ValueError(f"{link['name']} is a {link['kind']} device: it cannot be deleted")
    remove_links(world, [link["name"]])


def vanishing(
    links: Mapping[str, Mapping[str, Any]],
    names: Iterable[str],
    children: Mapping[str, list[str]] | None = None,
) -> list[str]:
    """`names` and every link that disappears with them (veth peers, children)."""
    if children is None:
        children = children_index(links)
    gone: dict[str, None] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in gone or name not in links:
            continue
        gone[name] = None
        link = links[name]
        if link["kind"] == "veth" and link["parent"]:
            todo.append(str(link["parent"]))
        todo += children.get(name, ())
    return list(gone)


def remove_links(world: World, names: Iterable[str]) -> list[str]:
    """Delete links the way the kernel does (see vanishing); returns what vanished."""
    gone = vanishing(world.links, names)
    for name in gone:
        del world.links[name]
    for link in world.links.values():
        if link["master"] in gone:
            link["master"] = None
    world.routes = [r for r in world.routes if r["dev"] not in gone]
    world.blank_sysctls(gone)
    return gone


def without_links(state: NetState, names: Iterable[str]) -> tuple[NetState, list[str]]:
    """`state` after deleting `names` (for diff: links that must be created again)."""
    world = World.of(state)
    gone = remove_links(world, names)
    return world.freeze(), gone


_LINK_OPS = {"link_add": link_add, "link_set": link_set, "link_delete": link_delete}
