"""Build the commands of the net write tools from their (schema-valid) inputs. Pure.

Every write becomes a list of `Cmd`s: `IpCmd` (one `ip -batch` line; rules of
family inet6 need `ip -6`), `SysctlCmd`, `FileCmd` (a whole file, or its
removal) and `ExecCmd` (another program run in the namespace, e.g. `wg set`).
Values are re-checked with `ipaddress` here, so a bad address fails with the
field's name before anything runs, and no token can carry a newline into a
batch. `touches` names the objects an operation changes. Called by
registry.tools.net, registry.netsnap (restore plans) and registry.netrun.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from registry.netsys import dns_path, render_dns, sysctl_key, sysctl_value
from registry.tooling import JSON, ToolError


@dataclass(frozen=True)
class IpCmd:
    line: str
    inet6: bool = False  # run under `ip -6` (rules whose family nothing else shows)

    def __post_init__(self) -> None:
        if not self.line.isprintable():
            raise ToolError(f"refusing an ip batch line with control characters: {self.line!r}")

    @property
    def text(self) -> str:
        return f"-6 {self.line}" if self.inet6 else self.line


@dataclass(frozen=True)
class SysctlCmd:
    key: str
    value: str

    @property
    def text(self) -> str:
        return f"sysctl -w {self.key}={self.value}"


@dataclass(frozen=True)
class FileCmd:
    path: str
    content: str | None  # None: remove the file
    mode: int = 0o644

    @property
    def text(self) -> str:
        return f"write {self.path}" if self.content is not None else f"remove {self.path}"


@dataclass(frozen=True)
class ExecCmd:
    argv: tuple[str, ...]
    text: str = ""


Cmd = IpCmd | SysctlCmd | FileCmd | ExecCmd


@dataclass
class Known:
    """Context a builder needs besides the input: how to map a target path for programs."""

    path: Callable[[str], str] = lambda p: p


def fail(field_name: str, message: str) -> ToolError:
    return ToolError(f"{field_name}: {message}")


_IFNAME = re.compile(r"^(?!\.\.?$)[!-$&-.0-9;-~]{1,15}$")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_NAME_KEYS = {"name", "dev", "peer", "parent", "master", "iif", "oif"}


def check_names(args: Mapping[str, Any], where: str = "") -> None:
    """Interface names and MACs anywhere in the input (the schema says so too; this is
    the last line before a value reaches an ip batch line)."""
    for key, value in args.items():
        path = f"{where}{key}"
        if isinstance(value, Mapping):
            check_names(value, f"{path}.")
        elif key in _NAME_KEYS and isinstance(value, str) and not _IFNAME.match(value):
            raise fail(path, f"invalid interface name {value!r}")
        elif key == "mac" and isinstance(value, str) and not _MAC.match(value):
            raise fail(path, f"invalid MAC address {value!r}")


# --- values ------------------------------------------------------------------


def address(value: str, name: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise fail(name, f"invalid IP address {value!r}") from None


def interface(value: str, name: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    if "/" not in value:
        raise fail(name, f"address {value!r} needs a prefix length")
    try:
        return ipaddress.ip_interface(value)
    except ValueError as exc:
        raise fail(name, f"invalid address {value!r}: {exc}") from None


def network(value: str, name: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits" in str(exc):
            fixed = ipaddress.ip_network(value, strict=False)
            raise fail(name, f"{value!r} has host bits set; did you mean {fixed}?") from None
        raise fail(name, f"invalid network {value!r}: {exc}") from None


def _version(value: str | None, name: str) -> int | None:
    if value is None or value == "default":
        return None
    return network(value, name).version if "/" in value else ipaddress.ip_address(value).version


def family_of(args: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    """inet or inet6 from the addresses in `fields`, checked against an explicit family."""
    versions = {v for f in fields if (v := _version(args.get(f), f)) is not None}
    if len(versions) > 1:
        raise fail(", ".join(fields), "mix IPv4 and IPv6")
    derived = {4: "inet", 6: "inet6"}[versions.pop()] if versions else None
    explicit = args.get("family")
    if explicit and derived and explicit != derived:
        raise fail("family", f"{explicit} does not match the addresses ({derived})")
    return str(explicit or derived or "inet")


def dest(value: str, family: str) -> str:
    """A route destination for ip: 'default' (v4), '::/0' (v6), or the network."""
    if value == "default":
        return "default" if family == "inet" else "::/0"
    return str(network(value, "to"))


def identity_to(value: str) -> str:
    return "default" if value == "default" else str(network(value, "to"))


def fwmark(value: int | str) -> str:
    if isinstance(value, int):
        return hex(value)
    return "/".join(hex(int(p, 0)) for p in value.split("/"))


# --- links -------------------------------------------------------------------


def _kind_args(kind: str, args: JSON) -> list[str]:
    opts: JSON = args.get("tun" if kind in ("tun", "tap") else kind) or {}
    if kind == "veth":
        return ["type", "veth", "peer", "name", opts["peer"]]
    if kind == "bridge":
        return ["type", "bridge", *_bridge_opts(opts)]
    if kind == "macvlan":
        return ["link", opts["parent"], "type", "macvlan", "mode", opts.get("mode", "bridge")]
    if kind == "vxlan":
        if opts.get("remote") and opts.get("group"):
            raise fail("vxlan", "takes either remote or group, not both")
        out = ["type", "vxlan", "id", str(opts["id"])]
        if opts.get("parent"):
            out += ["dev", opts["parent"]]
        for key in ("local", "remote", "group"):
            if opts.get(key):
                out += [key, address(opts[key], f"vxlan.{key}")]
        return [*out, "dstport", str(opts.get("port", 4789))]
    if kind == "vlan":
        return ["link", opts["parent"], "type", "vlan", "id", str(opts["id"])]
    if kind == "bond":
        out = ["type", "bond", "mode", opts.get("mode", "active-backup")]
        return out + (["miimon", str(opts["miimon"])] if opts.get("miimon") is not None else [])
    if kind in ("ifb", "dummy", "wireguard"):
        return ["type", kind]
    raise fail("kind", f"cannot create a link of kind {kind}")


def _bridge_opts(opts: JSON) -> list[str]:
    out: list[str] = []
    if opts.get("stp") is not None:
        out += ["stp_state", "1" if opts["stp"] else "0"]
    if opts.get("forward_delay") is not None:
        out += ["forward_delay", str(opts["forward_delay"])]
    return out


def _tuntap_line(kind: str, name: str, opts: JSON) -> str:
    parts = ["tuntap", "add", "dev", name, "mode", kind]
    if opts.get("owner") is not None:
        parts += ["user", str(opts["owner"])]
    if opts.get("group") is not None:
        parts += ["group", str(opts["group"])]
    if opts.get("multi_queue"):
        parts.append("multi_queue")
    return " ".join(parts)


def link_add(args: JSON, known: Known) -> list[Cmd]:
    name, kind = args["name"], args["kind"]
    if kind == "tun" and args.get("mac"):
        raise fail("mac", "a tun link has no Ethernet address")
    cmds: list[Cmd] = []
    attrs = []
    if args.get("mtu") is not None:
        attrs += ["mtu", str(args["mtu"])]
    if args.get("mac"):
        attrs += ["address", args["mac"].lower()]
    if kind in ("tun", "tap"):
        cmds.append(IpCmd(_tuntap_line(kind, name, args.get("tun") or {})))
        if attrs:
            cmds.append(IpCmd(" ".join(["link", "set", "dev", name, *attrs])))
    else:
        cmds.append(IpCmd(" ".join(["link", "add", "dev", name, *attrs, *_kind_args(kind, args)])))
    if kind == "wireguard":
        cmds.append(_wg_set(name, args["wireguard"], known))
    if args.get("master"):
        cmds.append(IpCmd(f"link set dev {name} master {args['master']}"))
    if args.get("state") == "up":
        cmds.append(IpCmd(f"link set dev {name} up"))
    return cmds


def _wg_set(name: str, opts: JSON, known: Known) -> ExecCmd:
    argv = ["wg", "set", name, "private-key", known.path(opts["private_key_file"])]
    if opts.get("listen_port") is not None:
        argv += ["listen-port", str(opts["listen_port"])]
    for peer in opts.get("peers", ()):
        argv += ["peer", peer["public_key"]]
        if peer.get("endpoint"):
            argv += ["endpoint", peer["endpoint"]]
        if peer.get("allowed_ips"):
            nets = [str(ipaddress.ip_network(a, strict=False)) for a in peer["allowed_ips"]]
            argv += ["allowed-ips", ",".join(nets)]
        if peer.get("persistent_keepalive") is not None:
            argv += ["persistent-keepalive", str(peer["persistent_keepalive"])]
    return ExecCmd(tuple(argv), " ".join(argv))


def link_set(args: JSON, known: Known) -> list[Cmd]:
    name = args["name"]
    cmds: list[Cmd] = []
    attrs: list[str] = []
    if args.get("mtu") is not None:
        attrs += ["mtu", str(args["mtu"])]
    if "master" in args:
        attrs += ["master", args["master"]] if args["master"] else ["nomaster"]
    if args.get("mac"):
        attrs += ["address", args["mac"].lower()]
    if attrs:
        cmds.append(IpCmd(" ".join(["link", "set", "dev", name, *attrs])))
    if args.get("bridge"):
        opts = _bridge_opts(args["bridge"])
        if opts:
            cmds.append(IpCmd(" ".join(["link", "set", "dev", name, "type", "bridge", *opts])))
    if args.get("state"):
        cmds.append(IpCmd(f"link set dev {name} {args['state']}"))
    return cmds


def link_delete(args: JSON, known: Known) -> list[Cmd]:
    return [IpCmd(f"link del dev {args['name']}")]


def addr_add(args: JSON, known: Known) -> list[Cmd]:
    return [IpCmd(f"addr replace {interface(args['address'], 'address')} dev {args['dev']}")]


def addr_delete(args: JSON, known: Known) -> list[Cmd]:
    return [IpCmd(f"addr del {interface(args['address'], 'address')} dev {args['dev']}")]


# --- routes and rules --------------------------------------------------------


def _route_line(verb: str, args: JSON, *, full: bool) -> str:
    family = family_of(args, ("to", "via", "src") if full else ("to", "via"))
    parts = ["route", verb]
    if args.get("type", "unicast") != "unicast":
        parts.append(args["type"])
    parts.append(dest(args["to"], family))
    if args.get("via"):
        parts += ["via", address(args["via"], "via")]
    if args.get("dev"):
        parts += ["dev", args["dev"]]
    parts += ["table", str(args.get("table", "main"))]
    if args.get("metric") is not None:
        parts += ["metric", str(args["metric"])]
    if full:
        if args.get("proto"):
            parts += ["proto", args["proto"]]
        if args.get("scope"):
            parts += ["scope", args["scope"]]
        if args.get("src"):
            parts += ["src", address(args["src"], "src")]
        if args.get("onlink"):
            parts.append("onlink")
    return " ".join(parts)


def route_replace(args: JSON, known: Known) -> list[Cmd]:
    return [IpCmd(_route_line("replace", args, full=True))]


def route_delete(args: JSON, known: Known) -> list[Cmd]:
    return [IpCmd(_route_line("del", args, full=False))]


def _rule_line(verb: str, args: JSON) -> IpCmd:
    family = family_of(args, ("from", "to"))
    parts = ["rule", verb, "priority", str(args["priority"])]
    for key in ("from", "to"):
        if args.get(key):
            value = args[key]
            parts += [key, str(network(value, key)) if "/" in value else address(value, key)]
    for key in ("iif", "oif"):
        if args.get(key):
            parts += [key, args[key]]
    if args.get("fwmark") is not None:
        parts += ["fwmark", fwmark(args["fwmark"])]
    action = args.get("action", "lookup")
    if action == "lookup":
        if args.get("table") is not None:
            parts += ["lookup", str(args["table"])]
        elif verb == "add":
            raise fail("table", "a lookup rule needs a table")
    else:
        parts.append(action)
    return IpCmd(" ".join(parts), inet6=family == "inet6")


def rule_add(args: JSON, known: Known) -> list[Cmd]:
    return [_rule_line("add", args)]


def rule_delete(args: JSON, known: Known) -> list[Cmd]:
    return [_rule_line("del", args)]


# --- sysctl and dns ----------------------------------------------------------


def sysctl_set(args: JSON, known: Known) -> list[Cmd]:
    return [SysctlCmd(sysctl_key(args["key"]), sysctl_value(args["value"]))]


def dns_set(args: JSON, known: Known) -> list[Cmd]:
    return [FileCmd(dns_path(args), render_dns(args))]


BUILDERS: dict[str, Callable[[JSON, Known], list[Cmd]]] = {
    "link_add": link_add,
    "link_set": link_set,
    "link_delete": link_delete,
    "addr_add": addr_add,
    "addr_delete": addr_delete,
    "route_replace": route_replace,
    "route_delete": route_delete,
    "rule_add": rule_add,
    "rule_delete": rule_delete,
    "sysctl_set": sysctl_set,
    "dns_set": dns_set,
}


def build(op: str, args: JSON, known: Known | None = None) -> list[Cmd]:
    if op not in BUILDERS:
        raise ToolError(f"unknown net operation {op!r}")
    check_names(args)
    return BUILDERS[op](args, known if known is not None else Known())


# --- touched objects ---------------------------------------------------------


def route_key(family: str, table: object, to: str, metric: object) -> str:
    return f"route:{family}/{table}/{to}/{metric}"


def touches(op: str, args: JSON) -> list[str]:
    """`kind:identity` keys of the objects the operation changes."""
    if op in ("link_add", "link_set", "link_delete"):
        # A port changes its master's derived address: the master is touched too.
        peer = (args.get("veth") or {}).get("peer")
        related = [peer, args.get("master")]
        return [f"link:{n}" for n in dict.fromkeys([args["name"], *related]) if n]
    if op in ("addr_add", "addr_delete"):
        return [f"link:{args['dev']}"]
    if op in ("route_replace", "route_delete"):
        family = family_of(args, ("to", "via", "src"))
        metric = args.get("metric")
        if metric is None:
            metric = "*" if op == "route_delete" else (1024 if family == "inet6" else 0)
        return [route_key(family, args.get("table", "main"), identity_to(args["to"]), metric)]
    if op in ("rule_add", "rule_delete"):
        return [f"rule:{family_of(args, ('from', 'to'))}/{args['priority']}"]
    if op == "sysctl_set":
        return [f"sysctl:{args['key']}"]
    if op == "dns_set":
        return [f"dns:{dns_path(args)}"]
    raise ToolError(f"unknown net operation {op!r}")
