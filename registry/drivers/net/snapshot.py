"""Before-images of network objects: take them, and restore them with verification.

`take(ctx, keys)` reads the objects named by touch keys (`link:`, `route:`,
`rule:`, `sysctl:`, `dns:`) into a JSON-able `Snapshot`. Links are expanded
to the links they drag along: a veth's peer, macvlan/vlan/vxlan children and
bridge ports, and each keeps its non-kernel routes; a snapshot that reads
links also lists the names of every link of the namespace (`census`).
`restore` re-reads the same objects, runs the plan of registry.drivers.net.revert
(the commands that turn now back into before), re-reads again and raises
ToolError when anything still differs; it returns a `Restored` that says
what exactly was compared — the named objects, and whether any other link
appeared or vanished in the namespace (which it does not undo: nothing
names it). Objects in other namespaces are never seen. Used by
registry.handlers.net (Rollback and net.apply's all-or-nothing).
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from contract.tooldef import JSON
from registry.core.errors import ToolError
from registry.core.tool import ToolContext
from registry.drivers.net.revert import FileState, Snapshot, managed_route, plan, route_group
from registry.drivers.net.run import execute
from registry.drivers.net.state import LinkState, RuleState, read_all_routes, read_links, read_rules
from registry.drivers.net.system import read_sysctls


def expand_links(names: Iterable[str], links: list[LinkState]) -> list[str]:
    """Touched links plus those they drag along: veth peer, children, master and ports
    (a port joining or leaving changes the bridge's derived address)."""
    by_name = {link["name"]: link for link in links}
    todo, seen = list(names), dict[str, None]()
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen[name] = None
        link = by_name.get(name)
        if link is None:
            continue
        if link["kind"] == "veth" and link["parent"]:
            todo.append(link["parent"])
        if link["master"]:
            todo.append(link["master"])
        todo += [x["name"] for x in links if name in (x["parent"], x["master"])]
    return list(seen)


def _split(keys: Iterable[str]) -> dict[str, list[str]]:
    parts: dict[str, list[str]] = {"link": [], "route": [], "rule": [], "sysctl": [], "dns": []}
    for key in keys:
        kind, _, ident = key.partition(":")
        if kind not in parts:
            raise ToolError(f"unknown touch key {key!r}")
        parts[kind].append(ident)
    return parts


async def take(ctx: ToolContext, keys: Iterable[str], *, expand: bool = True) -> Snapshot:
    """Read the objects the touch keys name (and, for links, what they drag along)."""
    keys = list(dict.fromkeys(keys))
    parts = _split(keys)
    route_groups = [k.rsplit("/", 1)[0] for k in parts["route"]]
    rule_groups = list(dict.fromkeys(parts["rule"]))
    families = sorted({g.split("/", 1)[0] for g in rule_groups})
    links, routes, rules, sysctls = await asyncio.gather(
        read_links(ctx) if parts["link"] else _none(),
        read_all_routes(ctx) if parts["link"] or parts["route"] else _none(),
        _rules(ctx, families),
        read_sysctls(ctx, parts["sysctl"]),
    )
    names = expand_links(parts["link"], links or []) if expand else parts["link"]
    by_name = {link["name"]: link for link in links or []}
    all_routes = routes or []
    snap: Snapshot = {
        "keys": [*(f"link:{n}" for n in names), *(k for k in keys if not k.startswith("link:"))],
        "links": {n: by_name.get(n) for n in names},
        "link_routes": {
            n: [r for r in all_routes if r["dev"] == n and managed_route(r)] for n in names
        },
        "routes": {g: [r for r in all_routes if route_group(r) == g] for g in route_groups},
        "rules": {
            g: [r for r in rules if f"{r['family']}/{r['priority']}" == g] for g in rule_groups
        },
        "sysctls": sysctls,
        "files": {p: await asyncio.to_thread(_read_file, ctx, p) for p in parts["dns"]},
        "census": sorted(by_name) if links is not None else None,
    }
    return snap


async def _none() -> None:
    return None


async def _rules(ctx: ToolContext, families: list[str]) -> list[RuleState]:
    found = await asyncio.gather(*(read_rules(ctx, f) for f in families))  # type: ignore[arg-type]
    return [r for group in found for r in group]


def _read_file(ctx: ToolContext, path: str) -> FileState:
    target = ctx.path(path)
    try:
        return {"content": target.read_text(), "mode": stat.S_IMODE(target.stat().st_mode)}
    except FileNotFoundError:
        return {"content": None, "mode": 0o644}


async def reread(ctx: ToolContext, snap: Snapshot) -> Snapshot:
    """The same objects as `snap`, as they are now (no new expansion)."""
    return await take(ctx, snap["keys"], expand=False)


# --- restoring ---------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    """What a verified restore compared: `objects` (touch keys) read back as before;
    `appeared` / `vanished`: links of the namespace that no key names and that exist
    now but did not / existed and do not (None: links were not compared)."""

    commands: int
    objects: tuple[str, ...]
    appeared: tuple[str, ...] | None
    vanished: tuple[str, ...] | None

    def describe(self) -> str:
        shown = ", ".join(self.objects[:8]) + (
            f" and {len(self.objects) - 8} more" if len(self.objects) > 8 else ""
        )
        text = f"restored {shown or 'nothing'} (read back as before)"
        if self.appeared is None or self.vanished is None:
            return text
        if not self.appeared and not self.vanished:
            return text + "; no other link appeared or vanished in the namespace"
        strays = [f"link {n} appeared" for n in self.appeared]
        strays += [f"link {n} vanished" for n in self.vanished]
        return text + "; NOT restored: " + ", ".join(strays) + " (no command names it)"


async def restore(ctx: ToolContext, before: Snapshot) -> Restored:
    """Bring the snapshot's objects back and verify them (ToolError if any still differs)."""
    now = await reread(ctx, before)
    cmds = plan(before, now)
    if cmds:
        await execute(ctx, cmds)
    after = await reread(ctx, before)
    left = plan(before, after)
    if left:
        shown = "; ".join(c.text for c in left[:5])
        raise ToolError(f"restore incomplete: still differs ({len(left)} commands left: {shown})")
    was, now_names = before.get("census"), after.get("census")
    if was is None or now_names is None:
        return Restored(len(cmds), tuple(before["keys"]), None, None)
    named = {k.partition(":")[2] for k in before["keys"] if k.startswith("link:")}
    appeared = tuple(n for n in now_names if n not in was and n not in named)
    vanished = tuple(n for n in was if n not in now_names and n not in named)
    return Restored(len(cmds), tuple(before["keys"]), appeared, vanished)


def as_json(snap: Snapshot) -> JSON:
    return dict(snap)


def from_json(data: JSON) -> Snapshot:
    for key in ("keys", "links", "link_routes", "routes", "rules", "sysctls", "files"):
        if key not in data:
            raise ToolError(f"not a network snapshot (no {key!r})")
    return data  # type: ignore[return-value]
