"""Plan the commands that bring network objects back to a before-image. Pure.

`plan(before, now)` compares two `Snapshot`s of the same objects (taken by
registry.drivers.net.snapshot) and returns the commands that turn `now` into `before`:
delete links that did not exist (their veth peers and macvlan/vlan/vxlan
children go with them), recreate deleted or re-kinded links with their kind
options, mtu and mac, then reset master, mutable kind options, mac, exact
addresses (not IPv6 link-local or dynamic ones) and admin state, the links'
own routes, touched route groups, rules, sysctls and files. An empty plan
means nothing differs, which is how a restore is verified. Called by
registry.drivers.net.snapshot; unit-tested with fixtures.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from contract.catalogue.links import BLOCKS, LINK_SET
from contract.tooldef import JSON
from contract.vocab.links import CREATABLE_KINDS, LINK_KINDS
from registry.core.errors import ToolError
from registry.drivers.net import commands
from registry.drivers.net.commands import Cmd, FileCmd, Known, SysctlCmd, ip
from registry.drivers.net.state import LinkState, RouteState, RuleState

_UNMANAGED_PROTOS = {"kernel", "ra", "redirect"}
# The kind options net.link_set can change are the blocks its schema takes (bridge's
# stp and forward_delay); a before-image differing in any other option of its kind's
# block needs the link recreated. Read from the tool schemas, as the network controller
# reads them (controllers.network.desired.MUTABLE_OPTIONS).
_IMMUTABLE: dict[str, tuple[str, ...]] = {
    row.name: tuple(
        key
        for key in BLOCKS[row.block]["properties"]
        if key not in LINK_SET["properties"].get(row.block, {}).get("properties", {})
    )
    for row in LINK_KINDS
    if row.block is not None
}
# Kinds a restore can recreate from a before-image: every kind net.link_add creates
# but wireguard, whose private key the before-image does not hold.
_CREATABLE = frozenset(CREATABLE_KINDS) - {"wireguard"}


class FileState(TypedDict):
    content: str | None
    mode: int


class Snapshot(TypedDict):
    keys: list[str]
    links: dict[str, LinkState | None]
    link_routes: dict[str, list[RouteState]]
    routes: dict[str, list[RouteState]]
    rules: dict[str, list[RuleState]]
    sysctls: dict[str, str | None]
    files: dict[str, FileState]
    # Names of every link of the namespace when the snapshot read links (None: it did
    # not): how an undo tells whether a link appeared that no touched key names.
    census: NotRequired[list[str] | None]


def route_group(route: RouteState) -> str:
    return f"{route['family']}/{route['table']}/{route['to']}"


def managed_route(route: RouteState) -> bool:
    return (
        route["proto"] not in _UNMANAGED_PROTOS
        and route["table"] != "local"
        and route["type"] in ("unicast", "blackhole", "unreachable", "prohibit")
    )


def must_recreate(before: LinkState, now: LinkState) -> bool:
    if before["kind"] != now["kind"]:
        return True
    if before["kind"] == "ifb" and before["mac"] != now["mac"]:
        return True  # ifb cannot change its address after creation
    fields = _IMMUTABLE.get(before["kind"], ())
    return any(before["info"].get(f) != now["info"].get(f) for f in fields)


def _cascade(name: str, links: dict[str, LinkState | None]) -> set[str]:
    """Links that disappear with `name` (veth peer, macvlan/vlan/vxlan children)."""
    gone, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in gone:
            continue
        gone.add(current)
        link = links.get(current)
        if link and link["kind"] == "veth" and link["parent"]:
            todo.append(link["parent"])
        todo += [
            n for n, x in links.items() if x and x["kind"] != "veth" and x["parent"] == current
        ]
    return gone


def _create_args(link: LinkState) -> JSON:
    kind = link["kind"]
    if kind not in _CREATABLE:
        raise ToolError(f"cannot recreate link {link['name']} of kind {kind}")
    block = {k: v for k, v in link["info"].items() if v is not None}
    args: JSON = {"name": link["name"], "kind": kind, "mtu": link["mtu"]}
    if link["mac"] and kind != "tun":
        args["mac"] = link["mac"]
    if kind in ("veth", "macvlan", "vxlan", "vlan", "bond", "bridge"):
        args[kind] = block
    elif kind in ("tun", "tap"):
        args["tun"] = block
    return args


def _managed_addresses(link: LinkState | None) -> list[str]:
    if link is None:
        return []
    return sorted(
        a["address"]
        for a in link["addresses"]
        if not a["dynamic"] and not (a["family"] == "inet6" and a["scope"] == "link")
    )


def _plan_links(before: Snapshot, now: Snapshot) -> tuple[list[Cmd], list[Cmd], list[Cmd]]:
    """(link commands, deletes and replaces of the links' own routes)."""
    was, cur = before["links"], now["links"]
    cmds: list[Cmd] = []
    gone: set[str] = set()
    for name, link in cur.items():
        target = was.get(name)
        if link and name not in gone and (target is None or must_recreate(target, link)):
            cmds.append(ip("link", "del", "dev", name))
            gone |= _cascade(name, cur)
    present = {n for n, link in cur.items() if link and n not in gone}
    missing = [n for n, link in was.items() if link and n not in present]
    created: dict[str, LinkState | None] = {}  # name -> its state right after creation
    for name in _parents_first(missing, was):
        link = was[name]
        if link is None or name in created:
            continue
        cmds += commands.link_add(_create_args(link), Known())
        created[name] = {**link, "state": "down", "master": None, "addresses": []}
        if link["kind"] == "veth" and link["parent"]:
            created[link["parent"]] = None  # the peer: mtu and mac still to set
    deletes: list[Cmd] = []
    replaces: list[Cmd] = []
    for name, link in was.items():
        if link is not None:
            now_link = cur.get(name) if name in present else created.get(name)
            cmds += _configure(link, now_link)
            replaces += _replace_routes(before["link_routes"].get(name, []))
            if name in present:
                extra = _diff_routes(now["link_routes"].get(name, []), before["link_routes"][name])
                deletes += [_delete_route(r) for r in extra]
    if not cmds and _all_routes(before) == _all_routes(now):
        return [], [], []
    return cmds, deletes, replaces


def _all_routes(snap: Snapshot) -> list[str]:
    return _sorted_routes([r for routes in snap["link_routes"].values() for r in routes])


def _parents_first(names: list[str], links: dict[str, LinkState | None]) -> list[str]:
    ordered: list[str] = []
    pending = list(names)
    while pending:
        ready = [
            n
            for n in pending
            if (link := links[n]) is None or link["kind"] == "veth" or link["parent"] not in pending
        ]
        if not ready:
            ready = pending[:1]
        ordered += ready
        pending = [n for n in pending if n not in ready]
    return ordered


def _configure(link: LinkState, now: LinkState | None) -> list[Cmd]:
    """Commands that make an existing (or freshly created) link look like `link`."""
    name = link["name"]
    cmds: list[Cmd] = []
    if now is None or now["mtu"] != link["mtu"]:
        cmds.append(ip("link", "set", "dev", name, "mtu", str(link["mtu"])))
    if (now["master"] if now else None) != link["master"]:
        master = link["master"]
        cmds.append(
            ip("link", "set", "dev", name, *(["master", master] if master else ["nomaster"]))
        )
    cmds += _mutable_options(link, now)
    if link["mac"] and (now is None or now["mac"] != link["mac"]):
        cmds.append(ip("link", "set", "dev", name, "address", link["mac"]))
    have, want = _managed_addresses(now), _managed_addresses(link)
    cmds += [ip("addr", "del", a, "dev", name) for a in have if a not in want]
    cmds += [ip("addr", "replace", a, "dev", name) for a in want if a not in have]
    now_state = "down" if now is None else now["state"]
    if now_state != link["state"]:
        cmds.append(ip("link", "set", "dev", name, link["state"]))
    return cmds


def _mutable_options(link: LinkState, now: LinkState | None) -> list[Cmd]:
    info, have = link["info"], (now["info"] if now else {})
    name, kind = link["name"], link["kind"]
    if kind == "bridge" and now is not None and info != have:
        opts = {"stp": info.get("stp"), "forward_delay": info.get("forward_delay")}
        return commands.link_set({"name": name, "bridge": opts}, Known())
    if kind == "macvlan" and now is not None and info.get("mode") != have.get("mode"):
        return [ip("link", "set", "dev", name, "type", "macvlan", "mode", str(info["mode"]))]
    if (
        kind == "bond"
        and info.get("miimon") is not None
        and info.get("miimon") != have.get("miimon")
    ):
        return [ip("link", "set", "dev", name, "type", "bond", "miimon", str(info["miimon"]))]
    return []


def _route_args(route: RouteState) -> JSON:
    args: JSON = {
        "to": route["to"],
        "family": route["family"],
        "table": route["table"],
        "metric": route["metric"],
        "type": route["type"],
    }
    optional = {"via": route["via"], "dev": route["dev"], "src": route["src"]}
    args.update({k: v for k, v in optional.items() if v})
    if route["proto"] != "boot":
        args["proto"] = route["proto"]
    if route["scope"] not in ("global", "universe") and route["family"] == "inet":
        args["scope"] = route["scope"]
    args["onlink"] = route["onlink"]
    return args


def _replace_routes(routes: list[RouteState]) -> list[Cmd]:
    return [c for r in routes for c in commands.route_replace(_route_args(r), Known())]


def _delete_route(route: RouteState) -> Cmd:
    args = _route_args(route)
    return commands.route_delete({k: args[k] for k in args if k in _DELETE_KEYS}, Known())[0]


_DELETE_KEYS = ("to", "family", "table", "metric", "via", "dev", "type")


def _identity(route: RouteState) -> tuple[str, object, str, int]:
    return (route["family"], route["table"], route["to"], route["metric"])


def _diff_routes(have: list[RouteState], want: list[RouteState]) -> list[RouteState]:
    """Routes in `have` whose identity `want` does not keep."""
    keep = {_identity(r) for r in want}
    return [r for r in have if _identity(r) not in keep]


def _rule_args(rule: RuleState) -> JSON:
    args: JSON = {"priority": rule["priority"], "family": rule["family"]}
    for key in ("from", "to", "iif", "oif", "fwmark"):
        if rule[key] is not None:
            args[key] = rule[key]
    if rule["action"] == "lookup":
        args["table"] = rule["table"]
    else:
        args["action"] = rule["action"]
    return args


def _plan_rules(before: Snapshot, now: Snapshot) -> list[Cmd]:
    cmds: list[Cmd] = []
    for group, want in before["rules"].items():
        have = now["rules"].get(group, [])
        if _sorted(want) == _sorted(have):
            continue
        cmds += [c for r in have for c in commands.rule_delete(_rule_args(r), Known())]
        cmds += [c for r in want for c in commands.rule_add(_rule_args(r), Known())]
    return cmds


def _sorted(rules: list[RuleState]) -> list[str]:
    return sorted(repr(sorted(r.items(), key=lambda kv: kv[0])) for r in rules)


def plan(before: Snapshot, now: Snapshot) -> list[Cmd]:
    """Commands that bring the objects in `now` back to `before` (empty: nothing differs)."""
    link_cmds, deletes, replaces = _plan_links(before, now)
    gone = {n for n, link in before["links"].items() if link is None}
    for group, want in before["routes"].items():
        have = [r for r in now["routes"].get(group, []) if r["dev"] not in gone]
        if _sorted_routes(want) != _sorted_routes(have):
            deletes += [_delete_route(r) for r in _diff_routes(have, want)]
            replaces += _replace_routes(want)
    sysctl_cmds: list[Cmd] = [
        SysctlCmd(key, value)
        for key, value in before["sysctls"].items()
        if value is not None and now["sysctls"].get(key) != value
    ]
    file_cmds: list[Cmd] = [
        FileCmd(path, state["content"], state["mode"])
        for path, state in before["files"].items()
        if now["files"].get(path) != state
        and not (state["content"] is None and now["files"][path]["content"] is None)
    ]
    return [
        *link_cmds,
        *_unique(deletes),  # a route can be both a link's own and in a touched group
        *_unique(replaces),
        *_plan_rules(before, now),
        *sysctl_cmds,
        *file_cmds,
    ]


def _unique(cmds: list[Cmd]) -> list[Cmd]:
    return list(dict.fromkeys(cmds))


def _sorted_routes(routes: list[RouteState]) -> list[str]:
    return sorted(repr(sorted(r.items(), key=lambda kv: kv[0])) for r in routes)
