"""Read the network state of the target namespace: `ip -j` dumps parsed into typed records.

Parsing (`parse_links`, `parse_routes`, `parse_rules`) is pure and tested
from captured `ip -j` output; reading runs the `ip -j` commands concurrently
in the context's namespace, together with the sysctl and resolver reads of
registry.drivers.net.system (`read_state` is all of net.state).
Called by registry.handlers.net (net.state, net.interfaces), registry.drivers.net.snapshot
(snapshots and their verification) and the benchmark.
"""

from __future__ import annotations

import asyncio
import grp
import json
import pwd
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypedDict

from contract.tooldef import JSON
from contract.vocab.links import CREATABLE_KINDS
from registry.core.errors import ToolError
from registry.core.tool import ToolContext
from registry.drivers.net.system import read_resolver_file, read_sysctls

Family = Literal["inet", "inet6"]
Table = int | str


class AddressState(TypedDict):
    address: str
    family: Family
    scope: str
    dynamic: bool


class LinkState(TypedDict):
    name: str
    index: int
    kind: str
    state: Literal["up", "down"]
    operstate: str
    mtu: int
    mac: str | None
    master: str | None
    parent: str | None
    info: JSON
    addresses: list[AddressState]


class RouteState(TypedDict):
    family: Family
    table: Table
    to: str
    via: str | None
    dev: str | None
    metric: int
    proto: str
    scope: str
    src: str | None
    type: str
    onlink: bool


RuleState = TypedDict(
    "RuleState",
    {
        "family": Family,
        "priority": int,
        "from": str | None,
        "to": str | None,
        "iif": str | None,
        "oif": str | None,
        "fwmark": str | None,
        "table": Table | None,
        "action": str,
    },
)


# Kinds reported as the kernel names them (IFLA_INFO_KIND): those aios creates, except
# tun and tap, which share the info kind "tun" and are told apart by its `type`.
_KINDS = frozenset(CREATABLE_KINDS) - {"tun", "tap"}
_NAMED_TABLES = {"main": "main", "local": "local", "default": "default"}

# --- links -------------------------------------------------------------------


def link_kind(raw: JSON) -> str:
    info = raw.get("linkinfo") or {}
    kind = info.get("info_kind")
    if kind == "tun":
        return "tap" if (info.get("info_data") or {}).get("type") == "tap" else "tun"
    if kind in _KINDS:
        return str(kind)
    if kind is None:
        return {"loopback": "loopback", "ether": "ethernet"}.get(raw.get("link_type", ""), "other")
    return "other"


def _uid(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        return pwd.getpwnam(str(value)).pw_uid
    except KeyError:
        return None


def _gid(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    try:
        return grp.getgrnam(str(value)).gr_gid
    except KeyError:
        return None


def _first(data: JSON, *keys: str) -> Any:
    return next((data[k] for k in keys if data.get(k) is not None), None)


def link_info(kind: str, raw: JSON) -> JSON:
    """Kind facts with the keys of link_add's option block for that kind."""
    data: JSON = (raw.get("linkinfo") or {}).get("info_data") or {}
    parent = raw.get("link")
    if kind == "veth":
        return {"peer": parent}
    if kind == "bridge":
        return {"stp": bool(data.get("stp_state", 0)), "forward_delay": data.get("forward_delay")}
    if kind == "macvlan":
        return {"parent": parent, "mode": data.get("mode")}
    if kind == "vxlan":
        return {
            "id": data.get("id"),
            "parent": data.get("link"),
            "local": _first(data, "local", "local6"),
            "remote": _first(data, "remote", "remote6"),
            "group": _first(data, "group", "group6"),
            "port": data.get("port"),
        }
    if kind == "vlan":
        return {"parent": parent, "id": data.get("id")}
    if kind == "bond":
        return {"mode": data.get("mode"), "miimon": data.get("miimon")}
    if kind in ("tun", "tap"):
        return {
            "owner": _uid(data.get("user")),
            "group": _gid(data.get("group")),
            "multi_queue": bool(data.get("multi_queue", False)),
        }
    return {}


def parse_address(raw: JSON) -> AddressState:
    family: Family = "inet6" if raw.get("family") == "inet6" else "inet"
    return {
        "address": f"{raw['local']}/{raw['prefixlen']}",
        "family": family,
        "scope": str(raw.get("scope", "global")),
        "dynamic": bool(raw.get("dynamic", False)),
    }


def parse_links(dump: list[JSON]) -> list[LinkState]:
    """Links from `ip -d -j addr show` (link details and addresses in one dump)."""
    links: list[LinkState] = []
    for raw in dump:
        kind = link_kind(raw)
        mac = raw.get("address") if raw.get("link_type") in ("ether", "loopback") else None
        info = link_info(kind, raw)
        parent = raw.get("link") if kind != "vxlan" else info.get("parent")
        links.append(
            {
                "name": raw["ifname"],
                "index": int(raw["ifindex"]),
                "kind": kind,
                "state": "up" if "UP" in raw.get("flags", ()) else "down",
                "operstate": str(raw.get("operstate", "UNKNOWN")),
                "mtu": int(raw.get("mtu", 0)),
                "mac": str(mac).lower() if mac else None,
                "master": raw.get("master"),
                "parent": parent,
                "info": info,
                "addresses": [parse_address(a) for a in raw.get("addr_info", ()) if "local" in a],
            }
        )
    return links


# --- routes and rules --------------------------------------------------------


def _rt_tables(root: Path = Path("/")) -> dict[str, int]:
    names: dict[str, int] = {}
    files = [root / "etc/iproute2/rt_tables"]
    files += sorted((root / "etc/iproute2/rt_tables.d").glob("*.conf"))
    for path in files:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2 and fields[0].isdigit():
                names[fields[1]] = int(fields[0])
    return names


def parse_table(value: Any) -> Table:
    """ip's table (name or number as a string) as main/local/default or an int."""
    if value is None:
        return "main"
    text = str(value)
    if text in _NAMED_TABLES:
        return text
    if text.isdigit():
        number = int(text)
        return {254: "main", 255: "local", 253: "default"}.get(number, number)
    return _rt_tables().get(text, text)


def _with_prefix(dst: str, family: Family) -> str:
    if dst == "default" or "/" in dst:
        return dst
    return f"{dst}/{128 if family == 'inet6' else 32}"


def _gateway(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("host")) if value.get("host") else None
    return str(value) if value else None


def parse_routes(dump: Iterable[JSON], family: Family) -> list[RouteState]:
    routes: list[RouteState] = []
    for raw in dump:
        routes.append(
            {
                "family": family,
                "table": parse_table(raw.get("table")),
                "to": _with_prefix(str(raw.get("dst", "default")), family),
                "via": _gateway(raw.get("gateway") or raw.get("via")),
                "dev": raw.get("dev"),
                "metric": int(raw.get("metric", 0)),
                "proto": str(raw.get("protocol", "boot")),
                "scope": str(raw.get("scope", "global")),
                "src": raw.get("prefsrc"),
                "type": str(raw.get("type", "unicast")),
                "onlink": "onlink" in raw.get("flags", ()),
            }
        )
    return routes


def _selector(raw: JSON, key: str, length_key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "all":
        return None
    return f"{value}/{raw[length_key]}" if length_key in raw else str(value)


def parse_rules(dump: Iterable[JSON], family: Family) -> list[RuleState]:
    rules: list[RuleState] = []
    for raw in dump:
        mark = raw.get("fwmark")
        mask = raw.get("fwmask")
        action = str(raw.get("action", "lookup"))
        rules.append(
            {
                "family": family,
                "priority": int(raw.get("priority", 0)),
                "from": _selector(raw, "src", "srclen"),
                "to": _selector(raw, "dst", "dstlen"),
                "iif": raw.get("iif"),
                "oif": raw.get("oif"),
                "fwmark": None if mark is None else (f"{mark}/{mask}" if mask else str(mark)),
                "table": parse_table(raw["table"]) if "table" in raw else None,
                "action": action,
            }
        )
    return rules


# --- reading -----------------------------------------------------------------


async def ip_json(ctx: ToolContext, *args: str) -> list[JSON]:
    result = await ctx.runner.run(ctx.ip("-j", *args))
    text = result.text.strip()
    try:
        data = json.loads(text) if text else []
    except json.JSONDecodeError as exc:
        raise ToolError(f"ip {' '.join(args)}: unreadable JSON output: {exc}") from None
    return data if isinstance(data, list) else []


async def read_links(ctx: ToolContext) -> list[LinkState]:
    return parse_links(await ip_json(ctx, "-d", "addr", "show"))


async def read_routes(ctx: ToolContext, family: Family) -> list[RouteState]:
    flag = "-6" if family == "inet6" else "-4"
    return parse_routes(await ip_json(ctx, flag, "route", "show", "table", "all"), family)


async def read_rules(ctx: ToolContext, family: Family) -> list[RuleState]:
    flag = "-6" if family == "inet6" else "-4"
    return parse_rules(await ip_json(ctx, flag, "rule", "show"), family)


async def read_all_routes(ctx: ToolContext) -> list[RouteState]:
    v4, v6 = await asyncio.gather(read_routes(ctx, "inet"), read_routes(ctx, "inet6"))
    return v4 + v6


async def read_all_rules(ctx: ToolContext) -> list[RuleState]:
    v4, v6 = await asyncio.gather(read_rules(ctx, "inet"), read_rules(ctx, "inet6"))
    return v4 + v6


async def read_state(
    ctx: ToolContext, *, sysctls: list[str] | None = None, dns_path: str | None = None
) -> JSON:
    """Everything net.state returns, read concurrently."""
    links, routes, rules, values = await asyncio.gather(
        read_links(ctx), read_all_routes(ctx), read_all_rules(ctx), read_sysctls(ctx, sysctls)
    )
    return {
        "links": links,
        "routes": routes,
        "rules": rules,
        "sysctls": values,
        "dns": read_resolver_file(ctx, dns_path),
    }


def interfaces(dump: list[JSON]) -> list[JSON]:
    """aiOS's net.interfaces entries from `ip -j addr show` (see contract §3.1)."""
    out: list[JSON] = []
    for raw in dump:
        name = str(raw["ifname"])
        if raw.get("link"):
            name = f"{name}@{raw['link']}"
        elif raw.get("link_index") is not None:
            name = f"{name}@if{raw['link_index']}"
        ipv4 = next((a["local"] for a in raw.get("addr_info", ()) if a.get("family") == "inet"), "")
        mac = raw.get("address", "") if raw.get("link_type") == "ether" else ""
        out.append(
            {
                "name": name,
                "ip": ipv4,
                "mac": mac,
                "status": "up" if "UP" in raw.get("flags", ()) else "down",
            }
        )
    return out
