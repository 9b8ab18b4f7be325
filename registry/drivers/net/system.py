"""The parts of network state that are not `ip` objects: net.* sysctls and the resolver file.

Sysctl keys are checked (net.* only) and read inside the target namespace —
one `ip netns exec NS grep -H` process for any number of keys, or /proc/sys
directly without a namespace — because /proc/sys/net shows the namespace of
the reading process. Resolver files are resolv.conf, or an unbound
forward-zone file, parsed and rendered here (net.dns_set manages the whole
file, so only resolver files may be named: contract.vocab.netvalues.RESOLVER_FILES,
the rule the spec validator applies too). A sysctl value must read back as
itself: one field, except for the multi-value keys of
contract.vocab.netvalues.SYSCTL_FIELDS (the key and value rules are shared
with the spec validator likewise). Called by registry.drivers.net.state
(net.state), registry.drivers.net.commands (builders),
registry.drivers.net.run (writes) and registry.drivers.net.snapshot (before-images).
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import TypedDict

from contract.tooldef import JSON
from contract.vocab.netvalues import (
    RESOLV_CONF,
    UNBOUND_FORWARD,
    is_sysctl_key,
    is_sysctl_text,
    resolver_path_problem,
    sysctl_fields_problem,
)
from registry.core.errors import ToolError
from registry.core.tool import ToolContext

MANAGED_HEADER = "# Managed by aios-reconciler (net.dns_set): the whole file is rewritten.\n"


class DnsState(TypedDict):
    path: str
    exists: bool
    servers: list[str]
    search: list[str]
    options: list[str]


# --- sysctls ------------------------------------------------------------------


def sysctl_key(key: str) -> str:
    if not is_sysctl_key(key):
        raise ToolError(f"key: {key!r} is not a net.* sysctl key (only net.* keys may be set)")
    return key


def sysctl_value(value: object, key: str | None = None) -> str:
    """The text to write; with `key`, also refused when it could never read back as
    itself (several fields for a one-value key: the kernel keeps the first)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if not is_sysctl_text(value):
        raise ToolError("value: must be a number, a boolean or a one-line ASCII string")
    problem = sysctl_fields_problem(key, value) if key is not None else None
    if problem:
        raise ToolError(f"value: {problem}")
    return value


SYSCTL_DIRS = (
    "ipv4",
    "ipv6",
    "ipv4/conf/all",
    "ipv4/conf/default",
    "ipv6/conf/all",
    "ipv6/conf/default",
)
_PROC = "/proc/sys/"


def sysctl_path(key: str) -> str:
    return _PROC + key.replace(".", "/")


def _key(path: str) -> str:
    return path[len(_PROC) :].replace("/", ".")


def parse_grep(text: str) -> dict[str, str]:
    """`grep -H '' files...` output (path:line per line) as key -> value."""
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if sep and path.startswith(_PROC):
            values.setdefault(_key(path), []).append(value)
    return {k: "\n".join(v) for k, v in values.items()}


async def read_sysctls(ctx: ToolContext, keys: list[str] | None) -> dict[str, str | None]:
    """net.* sysctls as seen inside the target namespace (None: no such key / unreadable)."""
    if ctx.netns is None:
        return await asyncio.to_thread(_read_sysctls_here, keys)
    if keys is None:
        globs = " ".join(f"{_PROC}net/{d}/*" for d in SYSCTL_DIRS)
        argv = ["sh", "-c", f"exec grep -s -H '' {globs}"]
    elif not keys:
        return {}
    else:
        argv = ["grep", "-s", "-H", "", *(sysctl_path(k) for k in keys)]
    result = await ctx.runner.run(ctx.in_netns(argv), check=False)
    if result.returncode > 2:
        raise ToolError(f"reading sysctls in {ctx.netns} failed: {result.err}")
    found = parse_grep(result.text)
    if keys is None:
        return dict(sorted(found.items()))
    return {k: found.get(k) for k in keys}


def _read_sysctls_here(keys: list[str] | None) -> dict[str, str | None]:
    if keys is None:
        paths = sorted(
            str(p) for d in SYSCTL_DIRS for p in Path(_PROC, "net", d).glob("*") if p.is_file()
        )
    else:
        paths = [sysctl_path(k) for k in keys]
    out: dict[str, str | None] = {}
    for path in paths:
        try:
            out[_key(path)] = Path(path).read_text().removesuffix("\n")
        except OSError:
            out[_key(path)] = None
    return out


def read_resolver_file(ctx: ToolContext, path: str | None) -> DnsState:
    target = path or RESOLV_CONF
    if not any(resolver_path_problem(r, target) is None for r in ("resolvconf", "unbound")):
        raise ToolError(f"dns_path: {target!r} is not a resolver file")
    try:
        text: str | None = ctx.path(target).read_text()
    except FileNotFoundError:
        text = None
    except (OSError, UnicodeDecodeError) as exc:
        raise ToolError(f"cannot read {target}: {exc}") from None
    return parse_resolver(target, text)


# --- resolver ----------------------------------------------------------------


def parse_resolver(path: str, text: str | None) -> DnsState:
    """resolv.conf (nameserver/search/domain/options) or unbound forward-addr lines."""
    state: DnsState = {
        "path": path,
        "exists": text is not None,
        "servers": [],
        "search": [],
        "options": [],
    }
    for line in (text or "").splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver" and values:
            state["servers"].append(values[0])
        elif key in ("search", "domain"):
            state["search"] = values
        elif key == "options":
            state["options"].extend(values)
        elif key == "forward-addr:" and values:
            state["servers"].append(values[0].split("@", 1)[0])
    return state


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ToolError(f"servers: invalid IP address {value!r}") from None


def dns_path(args: JSON) -> str:
    """The file dns_set rewrites: `path` if it is a file of the resolver, else ToolError."""
    resolver = str(args.get("resolver") or "resolvconf")
    default = UNBOUND_FORWARD if resolver == "unbound" else RESOLV_CONF
    path = args.get("path") or default
    problem = resolver_path_problem(resolver, path) if isinstance(path, str) else "not a string"
    if problem:
        raise ToolError(f"path: {problem}")
    return str(path)


def render_dns(args: JSON) -> str:
    servers = [_address(s) for s in args.get("servers", ())]
    if args.get("resolver") == "unbound":
        if args.get("search") or args.get("options"):
            raise ToolError("search: search and options apply to resolver resolvconf only")
        lines = ["forward-zone:", '    name: "."', *(f"    forward-addr: {s}" for s in servers)]
    else:
        if len(servers) > 3:
            raise ToolError("servers: resolv.conf honours at most 3 nameservers")
        lines = [f"nameserver {s}" for s in servers]
        if args.get("search"):
            lines.append("search " + " ".join(args["search"]))
        if args.get("options"):
            lines.append("options " + " ".join(args["options"]))
    return MANAGED_HEADER + "".join(f"{line}\n" for line in lines)
