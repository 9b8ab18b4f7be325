"""Build the commands of the net write tools from their (schema-valid) inputs. Pure.

Every write becomes a list of `Cmd`s: `IpCmd` (one `ip -batch` line; rules of
family inet6 need `ip -6`), `SysctlCmd`, `FileCmd` (a whole file, or its
removal) and `ExecCmd` (another program run in the namespace, e.g. `wg set`,
as argv). Values are re-checked here, so a bad one fails with the field's
name before anything runs: interface names against the allow-list
(contract.vocab.netvalues.IFNAME_RE), MACs, fwmarks and WireGuard keys by the
same vocabulary, addresses with `ipaddress` (no IPv6 scope ids), everything
else as an ip batch word. `IpCmd` holds words, not text,
and refuses any word that could change the line's word boundaries (see
`IpCmd`). `touches` names the objects an operation changes. Called by
registry.handlers.net, registry.drivers.net.revert (restore plans) and registry.drivers.net.run.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contract.tooldef import JSON
from contract.vocab.netvalues import (
    FWMARK_RE,
    canonical_fwmark,
    check_endpoint,
    is_ifname,
    is_mac,
    is_wg_key,
)
from registry.core.errors import ToolError
from registry.drivers.net.system import dns_path, render_dns, sysctl_key, sysctl_value

# The words an `ip -batch` line may hold. iproute2 reads a batch line like this: it
# cuts the line at the first '#', joins it with the next line when it ends in '\',
# stops at a NUL, and splits the rest into words at spaces, tabs, '\r' and '\n', where
# a word that begins with '"' or "'" runs to the next such quote (spaces and all); a
# line of 100 words or more ends the whole batch. A word of only these characters
# contains none of those, so " ".join(words) splits back into exactly `words`: no
# input can add, drop, merge or split a word, start a comment or continue a line.
# (tests/unit/test_net_commands.py checks it for every character against a model of that
# parser; tests/system/test_net_tools.py against ip itself.)
WORD_CHARS = "A-Za-z0-9_.:/-"
_WORD = re.compile(rf"[{WORD_CHARS}]+")
_OBJECTS = frozenset({"link", "addr", "route", "rule", "tuntap"})
MAX_WORDS = 64


def _shown(words: Iterable[object]) -> str:
    return " ".join(str(w) for w in words)


@dataclass(frozen=True)
class IpCmd:
    """One `ip -batch` line as its words; `inet6`: run under `ip -6` (rules whose
    family nothing else shows). Construction refuses any word outside WORD_CHARS,
    a first word that is not an ip object, and more than MAX_WORDS words."""

    words: tuple[str, ...]
    inet6: bool = False

    def __post_init__(self) -> None:
        words = self.words
        if not isinstance(words, tuple) or not words or words[0] not in _OBJECTS:
            raise ToolError(f"refusing an ip batch line that is not an ip command: {words!r}")
        if len(words) > MAX_WORDS:
            raise ToolError(f"refusing an ip batch line of {len(words)} words (> {MAX_WORDS})")
        for word in words:
            if not isinstance(word, str) or not _WORD.fullmatch(word):
                raise ToolError(
                    f"refusing the ip batch word {word!r} in `{_shown(words)!r}`: only letters, "
                    "digits and '_', '.', ':', '/', '-' (no whitespace, quotes, '#', '\\' or "
                    "control characters)"
                )

    @property
    def line(self) -> str:
        return " ".join(self.words)

    @property
    def text(self) -> str:
        return f"-6 {self.line}" if self.inet6 else self.line


def ip(*words: str, inet6: bool = False) -> IpCmd:
    """IpCmd from words: `ip("link", "set", "dev", name, "up")`."""
    return IpCmd(tuple(words), inet6=inet6)


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


_NAME_KEYS = {"name", "dev", "peer", "parent", "master", "iif", "oif"}


def check_names(args: Mapping[str, Any], where: str = "") -> None:
    """Interface names and MACs anywhere in the input (the schema says so too; this is
    the last line before a value reaches an ip batch line)."""
    for key, value in args.items():
        path = f"{where}{key}"
        if isinstance(value, Mapping):
            check_names(value, f"{path}.")
        elif key in _NAME_KEYS and value is not None and not is_name(value):
            raise fail(path, f"invalid interface name {value!r} ({NAME_RULE})")
        elif key == "mac" and value is not None and not is_mac(value):
            raise fail(path, f"invalid MAC address {value!r}")


NAME_RULE = "1-15 of letters, digits, '_', '.', '-', not starting with '-', not '.' or '..'"


def _full(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def is_name(value: object) -> bool:
    """Whether `value` is an interface name the net tools accept (the spec's rule too)."""
    return is_ifname(value)


def name(value: object, field_name: str) -> str:
    if not is_name(value):
        raise fail(field_name, f"invalid interface name {value!r} ({NAME_RULE})")
    return str(value)


def word(value: object, field_name: str) -> str:
    """A value as one ip batch word (numbers as decimal), or ToolError naming the field."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not _full(_WORD, value):
        raise fail(
            field_name,
            f"invalid value {value!r} (one word of letters, digits, '_', '.', ':', '/', '-'; "
            "no whitespace, quotes, '#', '\\' or control characters)",
        )
    return str(value)


def mac(value: object, field_name: str = "mac") -> str:
    if not is_mac(value):
        raise fail(field_name, f"invalid MAC address {value!r}")
    return value.lower()


def integer(value: object, field_name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(field_name, f"must be an integer, not {value!r}")
    return str(value)


# --- values ------------------------------------------------------------------


def _unscoped(value: object, name_: str) -> str:
    if not isinstance(value, str):
        raise fail(name_, f"must be a string, not {value!r}")
    if "%" in value:  # ipaddress keeps any text after '%' as an IPv6 scope id
        raise fail(name_, f"address {value!r} may not carry a scope id ('%...')")
    return value


def address(value: str, name: str) -> str:
    try:
        return str(ipaddress.ip_address(_unscoped(value, name)))
    except ValueError:
        raise fail(name, f"invalid IP address {value!r}") from None


def interface(value: str, name: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    if "/" not in _unscoped(value, name):
        raise fail(name, f"address {value!r} needs a prefix length")
    try:
        return ipaddress.ip_interface(value)
    except ValueError as exc:
        raise fail(name, f"invalid address {value!r}: {exc}") from None


def network(value: str, name: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(_unscoped(value, name), strict=True)
    except ValueError as exc:
        if "host bits" in str(exc):
            fixed = ipaddress.ip_network(value, strict=False)
            raise fail(name, f"{value!r} has host bits set; did you mean {fixed}?") from None
        raise fail(name, f"invalid network {value!r}: {exc}") from None


def _version(value: str | None, name: str) -> int | None:
    if value is None or value == "default":
        return None
    if "/" in _unscoped(value, name):
        return network(value, name).version
    return ipaddress.ip_address(address(value, name)).version


def family_of(args: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    """inet or inet6 from the addresses in `fields`, checked against an explicit family."""
    versions = {v for f in fields if (v := _version(args.get(f), f)) is not None}
    if len(versions) > 1:
        raise fail(", ".join(fields), "mix IPv4 and IPv6")
    derived = {4: "inet", 6: "inet6"}[versions.pop()] if versions else None
    explicit = args.get("family")
    if explicit is not None and explicit not in ("inet", "inet6"):
        raise fail("family", f"must be inet or inet6, not {explicit!r}")
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


def fwmark(value: object) -> str:
    """A rule's fwmark as ip gets it: hex parts (contract.vocab.netvalues.canonical_fwmark)."""
    try:
        return canonical_fwmark(value)
    except ValueError as exc:
        if isinstance(value, str) and FWMARK_RE.fullmatch(value):  # octal-looking, > 32 bits
            raise fail("fwmark", str(exc)) from None
        raise fail("fwmark", f"invalid mark {value!r} (a number or 'mark/mask')") from None


def _table(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if value in ("main", "default", "local"):
        return str(value)
    raise fail("table", f"must be a number, main or default, not {value!r}")


# --- links -------------------------------------------------------------------


def _kind_args(kind: str, args: JSON) -> list[str]:
    block = "tun" if kind in ("tun", "tap") else kind
    opts: JSON = args.get(block) or {}
    if kind == "veth":
        return ["type", "veth", "peer", "name", name(opts.get("peer"), "veth.peer")]
    if kind == "bridge":
        return ["type", "bridge", *_bridge_opts(opts)]
    if kind == "macvlan":
        parent = name(opts.get("parent"), "macvlan.parent")
        mode = word(opts.get("mode", "bridge"), "macvlan.mode")
        return ["link", parent, "type", "macvlan", "mode", mode]
    if kind == "vxlan":
        if opts.get("remote") and opts.get("group"):
            raise fail("vxlan", "takes either remote or group, not both")
        out = ["type", "vxlan", "id", integer(opts.get("id"), "vxlan.id")]
        if opts.get("parent"):
            out += ["dev", name(opts["parent"], "vxlan.parent")]
        for key in ("local", "remote", "group"):
            if opts.get(key):
                out += [key, address(opts[key], f"vxlan.{key}")]
        return [*out, "dstport", integer(opts.get("port", 4789), "vxlan.port")]
    if kind == "vlan":
        parent = name(opts.get("parent"), "vlan.parent")
        return ["link", parent, "type", "vlan", "id", integer(opts.get("id"), "vlan.id")]
    if kind == "bond":
        out = ["type", "bond", "mode", word(opts.get("mode", "active-backup"), "bond.mode")]
        if opts.get("miimon") is not None:
            out += ["miimon", integer(opts["miimon"], "bond.miimon")]
        return out
    if kind in ("ifb", "dummy", "wireguard"):
        return ["type", kind]
    raise fail("kind", f"cannot create a link of kind {kind!r}")


def _bridge_opts(opts: JSON) -> list[str]:
    out: list[str] = []
    if opts.get("stp") is not None:
        out += ["stp_state", "1" if opts["stp"] else "0"]
    if opts.get("forward_delay") is not None:
        out += ["forward_delay", integer(opts["forward_delay"], "bridge.forward_delay")]
    return out


def _tuntap(kind: str, dev: str, opts: JSON) -> IpCmd:
    parts = ["tuntap", "add", "dev", dev, "mode", kind]
    if opts.get("owner") is not None:
        parts += ["user", integer(opts["owner"], "tun.owner")]
    if opts.get("group") is not None:
        parts += ["group", integer(opts["group"], "tun.group")]
    if opts.get("multi_queue"):
        parts.append("multi_queue")
    return ip(*parts)


def _link_attrs(args: JSON) -> list[str]:
    attrs = []
    if args.get("mtu") is not None:
        attrs += ["mtu", integer(args["mtu"], "mtu")]
    if args.get("mac"):
        attrs += ["address", mac(args["mac"])]
    return attrs


def link_add(args: JSON, known: Known) -> list[Cmd]:
    dev, kind = name(args.get("name"), "name"), args.get("kind")
    if kind == "tun" and args.get("mac"):
        raise fail("mac", "a tun link has no Ethernet address")
    cmds: list[Cmd] = []
    attrs = _link_attrs(args)
    if kind in ("tun", "tap"):
        cmds.append(_tuntap(kind, dev, args.get("tun") or {}))
        if attrs:
            cmds.append(ip("link", "set", "dev", dev, *attrs))
    else:
        cmds.append(ip("link", "add", "dev", dev, *attrs, *_kind_args(str(kind), args)))
    if kind == "wireguard":
        cmds.append(_wg_set(dev, args.get("wireguard") or {}, known))
    if args.get("master"):
        cmds.append(ip("link", "set", "dev", dev, "master", name(args["master"], "master")))
    if args.get("state") == "up":
        cmds.append(ip("link", "set", "dev", dev, "up"))
    return cmds


def _wg_set(dev: str, opts: JSON, known: Known) -> ExecCmd:
    """`wg set` as argv (never a shell line); every value checked for its field."""
    key_file = opts.get("private_key_file")
    if not isinstance(key_file, str) or not key_file.startswith("/"):
        raise fail("wireguard.private_key_file", f"must be an absolute path, not {key_file!r}")
    argv = ["wg", "set", dev, "private-key", known.path(key_file)]
    if opts.get("listen_port") is not None:
        argv += ["listen-port", integer(opts["listen_port"], "wireguard.listen_port")]
    for i, peer in enumerate(opts.get("peers", ())):
        where = f"wireguard.peers[{i}]"
        if not is_wg_key(peer.get("public_key")):
            raise fail(f"{where}.public_key", "must be a base64 WireGuard public key")
        argv += ["peer", peer["public_key"]]
        if peer.get("endpoint"):
            try:
                argv += ["endpoint", check_endpoint(str(peer["endpoint"]))]
            except ValueError as exc:
                raise fail(f"{where}.endpoint", str(exc)) from None
        if peer.get("allowed_ips"):
            nets = [
                str(ipaddress.ip_network(_unscoped(a, f"{where}.allowed_ips"), strict=False))
                for a in peer["allowed_ips"]
            ]
            argv += ["allowed-ips", ",".join(nets)]
        if peer.get("persistent_keepalive") is not None:
            keepalive = integer(peer["persistent_keepalive"], f"{where}.persistent_keepalive")
            argv += ["persistent-keepalive", keepalive]
    return ExecCmd(tuple(argv), " ".join(argv))


def link_set(args: JSON, known: Known) -> list[Cmd]:
    dev = name(args.get("name"), "name")
    cmds: list[Cmd] = []
    attrs: list[str] = []
    if args.get("mtu") is not None:
        attrs += ["mtu", integer(args["mtu"], "mtu")]
    if "master" in args:
        attrs += ["master", name(args["master"], "master")] if args["master"] else ["nomaster"]
    if args.get("mac"):
        attrs += ["address", mac(args["mac"])]
    if attrs:
        cmds.append(ip("link", "set", "dev", dev, *attrs))
    if args.get("bridge"):
        opts = _bridge_opts(args["bridge"])
        if opts:
            cmds.append(ip("link", "set", "dev", dev, "type", "bridge", *opts))
    if args.get("state"):
        if args["state"] not in ("up", "down"):
            raise fail("state", f"must be up or down, not {args['state']!r}")
        cmds.append(ip("link", "set", "dev", dev, args["state"]))
    return cmds


def link_delete(args: JSON, known: Known) -> list[Cmd]:
    return [ip("link", "del", "dev", name(args.get("name"), "name"))]


def addr_add(args: JSON, known: Known) -> list[Cmd]:
    addr = str(interface(args["address"], "address"))
    return [ip("addr", "replace", addr, "dev", name(args.get("dev"), "dev"))]


def addr_delete(args: JSON, known: Known) -> list[Cmd]:
    addr = str(interface(args["address"], "address"))
    return [ip("addr", "del", addr, "dev", name(args.get("dev"), "dev"))]


# --- routes and rules --------------------------------------------------------


def _route_line(verb: str, args: JSON, *, full: bool) -> IpCmd:
    family = family_of(args, ("to", "via", "src") if full else ("to", "via"))
    parts = ["route", verb]
    if args.get("type", "unicast") != "unicast":
        parts.append(word(args["type"], "type"))
    parts.append(dest(args["to"], family))
    if args.get("via"):
        parts += ["via", address(args["via"], "via")]
    if args.get("dev"):
        parts += ["dev", name(args["dev"], "dev")]
    parts += ["table", _table(args.get("table", "main"))]
    if args.get("metric") is not None:
        parts += ["metric", integer(args["metric"], "metric")]
    if full:
        if args.get("proto"):
            parts += ["proto", word(args["proto"], "proto")]
        if args.get("scope"):
            parts += ["scope", word(args["scope"], "scope")]
        if args.get("src"):
            parts += ["src", address(args["src"], "src")]
        if args.get("onlink"):
            parts.append("onlink")
    return ip(*parts)


def route_replace(args: JSON, known: Known) -> list[Cmd]:
    return [_route_line("replace", args, full=True)]


def route_delete(args: JSON, known: Known) -> list[Cmd]:
    return [_route_line("del", args, full=False)]


def _rule_line(verb: str, args: JSON) -> IpCmd:
    family = family_of(args, ("from", "to"))
    parts = ["rule", verb, "priority", integer(args.get("priority"), "priority")]
    for key in ("from", "to"):
        if args.get(key):
            value = args[key]
            parts += [key, str(network(value, key)) if "/" in value else address(value, key)]
    for key in ("iif", "oif"):
        if args.get(key):
            parts += [key, name(args[key], key)]
    if args.get("fwmark") is not None:
        parts += ["fwmark", fwmark(args["fwmark"])]
    action = args.get("action", "lookup")
    if action == "lookup":
        if args.get("table") is not None:
            parts += ["lookup", _table(args["table"])]
        elif verb == "add":
            raise fail("table", "a lookup rule needs a table")
    else:
        parts.append(word(action, "action"))
    return ip(*parts, inet6=family == "inet6")


def rule_add(args: JSON, known: Known) -> list[Cmd]:
    return [_rule_line("add", args)]


def rule_delete(args: JSON, known: Known) -> list[Cmd]:
    return [_rule_line("del", args)]


# --- sysctl and dns ----------------------------------------------------------


def sysctl_set(args: JSON, known: Known) -> list[Cmd]:
    key = sysctl_key(args["key"])
    return [SysctlCmd(key, sysctl_value(args["value"], key))]


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
    """`kind:identity` keys of the objects the operation changes (names checked first,
    so no key names a link the operation could not address)."""
    check_names(args)
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
        return [f"sysctl:{sysctl_key(args['key'])}"]
    if op == "dns_set":
        return [f"dns:{dns_path(args)}"]
    raise ToolError(f"unknown net operation {op!r}")
