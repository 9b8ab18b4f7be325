"""The attack corpus, registry side, for the net and firewall tools (issue 8, escape 1).

The hostile values of tests/attack/specs/ifname-*, nft-* and net-*, sent to the
registry's tools directly, at both of its layers:

- the input schema (what Execute checks first, registry.server.pipeline.first_error):
  `Invalid input: $.path: 'value' does not match 'pattern'`, or no refusal where
  JSON Schema cannot say it (a sysctl's field count, a resolver/path pairing, a
  rule's ';' outside quotes) — then the handler's refusal is the only one;
- the handler, run for real in a throwaway network namespace on a scratch root
  (the schema bypassed, as a caller of the tool classes would): it must refuse
  with its own message — naming the tool, the command and the field — before
  anything runs.

Each case then checks that nothing changed anywhere it could reach: the target
namespace (links with details and addresses, routes, rules, its nft ruleset),
a victim namespace with a 4-character name the quote-split names aim at
(`"zq""netns"vXYZ` is `ip link add dev zq netns vXYZ`), the host's own links
and nft ruleset, and two sentinel trees compared byte for byte and mode for
mode — the scratch root (its etc/resolv.conf and etc/shadow) and a "host"
directory outside it. Also: the issue's injection through a real registry
server's net.apply, with a search of every network namespace for the link it
would have made; a positive control showing that the same batch line, given
to ip itself, does put a link into the victim namespace (so the checks would
see an escape); and a check that the sentinel notices a changed MTU. Runs as
root (skipped otherwise).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from registry_support import running_registry

from contract.catalogue import catalogue
from contract.catalogue.firewall import NFT_IDENT_RE
from contract.catalogue.links import ENDPOINT
from contract.catalogue.netschema import (
    IFNAME,
    IP,
    IP_PREFIX,
    MAC,
    PROTO,
    RESOLVER_FILE,
    SYSCTL_KEY,
)
from reconciler.client import RegistryClient
from reconciler.sdk.errors import ToolRejected
from registry.core.errors import ToolError
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.handlers.index import tool_classes
from registry.server.pipeline import first_error
from tests.system.helpers import run
from tests.system.netdriver import ip_json, net_dump

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces")


# --- the world a case could reach -----------------------------------------------


@dataclass
class World:
    target: str  # the namespace the tools act in
    victim: str  # another namespace, with a name short enough for a quote-split name
    root: Path  # the scratch root (--root)
    host: Path  # a sentinel "host" directory outside the root


def _new_victim() -> str:
    taken = set(run(["ip", "netns", "list"]).split())
    while True:
        name = f"v{secrets.token_hex(2)[:3]}"
        if name not in taken:
            return name


def _tree(directory: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under `directory`: mode bits, owner, size, content digest or link."""
    out: dict[str, tuple[Any, ...]] = {}
    for path in [directory, *sorted(directory.rglob("*"))]:
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            content = os.readlink(path)
        else:
            content = ""
        out[str(path.relative_to(directory))] = (st.st_mode, st.st_uid, st.st_size, content)
    return out


def _host_links() -> str:
    links = json.loads(run(["ip", "-j", "link", "show"]))
    for link in links:
        link.pop("stats", None)
        link.pop("stats64", None)
    return json.dumps(links, sort_keys=True)


def _ruleset(ns: str | None) -> str:
    argv = ["nft", "list", "ruleset"]
    return run(["ip", "netns", "exec", ns, *argv] if ns else argv)


def state(world: World) -> dict[str, Any]:
    """Everything a refused call must leave exactly as it was."""
    return {
        "target": net_dump(world.target),
        "target nft": _ruleset(world.target),
        "victim": net_dump(world.victim),
        "victim nft": _ruleset(world.victim),
        "host links": _host_links(),
        "host nft": _ruleset(None),
        "root": _tree(world.root),
        "host tree": _tree(world.host),
    }


def assert_unchanged(world: World, before: dict[str, Any]) -> None:
    after = state(world)
    changed = sorted(k for k in before if before[k] != after[k])
    assert not changed, f"changed: {changed}\n" + "\n".join(
        f"--- {k}\n{before[k]}\n+++\n{after[k]}" for k in changed
    )


def _sentinels(root: Path, host: Path) -> None:
    for base in (root, host):
        (base / "etc/unbound/unbound.conf.d").mkdir(parents=True)
        (base / "etc/resolv.conf").write_text("nameserver 10.0.0.1\n")
        (base / "etc/shadow").write_text("root:$6$sentinel:19000:0:99999:7:::\n")
        (base / "etc/shadow").chmod(0o600)
        (base / "etc/unbound/unbound_control.key").write_text("-----SENTINEL KEY-----\n")
        (base / "etc/unbound/unbound_control.key").chmod(0o600)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("attack-net")
    target, victim = f"aiosatk-{secrets.token_hex(4)}", _new_victim()
    made: list[str] = []
    try:
        for ns in (target, victim):
            run(["ip", "netns", "add", ns])
            made.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(["ip", "-n", target, "link", "add", "dev", "k0", "mtu", "1500", "type", "ifb"])
        run(["ip", "-n", target, "link", "set", "dev", "k0", "up"])
        run(["ip", "-n", target, "addr", "add", "10.9.0.1/24", "dev", "k0"])
        run(["ip", "-n", victim, "link", "add", "dev", "sent0", "type", "ifb"])
        keep = "table inet keep {\n chain input {\n  tcp dport 22 accept\n }\n}\n"
        for ns in (target, victim):
            run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=keep)
        root, host = base / "root", base / "host"
        _sentinels(root, host)
        yield World(target, victim, root, host)
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


# --- the cases ----------------------------------------------------------------------

NAME_RULE = "(1-15 of letters, digits, '_', '.', '-', not starting with '-', not '.' or '..')"
IFNAME_P = IFNAME["pattern"]


def _apply(*commands: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"commands": [{"op": op, "args": args} for op, args in commands]}


def _netdev(device: str) -> dict[str, Any]:
    chain = {"name": "in", "type": "filter", "hook": "ingress", "priority": 0, "device": device}
    return {"tables": [{"family": "netdev", "name": "edge", "chains": [chain]}]}


def _set(**fields: Any) -> dict[str, Any]:
    return {
        "tables": [{"name": "filter", "sets": [{"name": "allow", "type": "ipv4_addr", **fields}]}]
    }


def _rule(rule: str) -> dict[str, Any]:
    return {"tables": [{"name": "filter", "chains": [{"name": "input", "rules": [rule]}]}]}


WG_PEER = {"public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="}


@dataclass(frozen=True)
class Case:
    id: str
    tool: str
    args: dict[str, Any]
    # (JSON path, offending value, pattern) of the schema's refusal; None: the schema
    # lets it through (what JSON Schema cannot say) and only the handler refuses.
    schema: tuple[str, Any, str] | None
    handler: str  # the handler's exact ToolError

    def hostile(self, victim: str) -> dict[str, Any]:
        """The arguments with the victim namespace's name put in (VICTIM)."""
        text = json.dumps(self.args).replace("VICTIM", victim)
        return dict(json.loads(text))


def _name_case(
    id: str, tool: str, args: dict[str, Any], path: str, bad: str, where: str, field: str
) -> Case:
    return Case(
        id,
        tool,
        args,
        (path, bad, IFNAME_P),
        f"{tool}: {where}: {field}: invalid interface name {bad!r} {NAME_RULE}; "
        "nothing was changed",
    )


QUOTE_SPLIT = '"zq""netns"VICTIM'  # ip -batch reads: zq netns VICTIM
CASES: list[Case] = [
    # the issue's injections: a link made in another namespace, another link's MTU set,
    # another link deleted — through every kind of character the batch reader splits on
    _name_case(
        "ifname-quote-split-netns",
        "net.apply",
        _apply(("link_add", {"name": QUOTE_SPLIT, "kind": "ifb"})),
        "$.commands[0].args.name",
        QUOTE_SPLIT,
        "link_add",
        "name",
    ),
    _name_case(
        "ifname-single-quote-netns",
        "net.apply",
        _apply(("link_add", {"name": "'zq''netns'VICTIM", "kind": "ifb"})),
        "$.commands[0].args.name",
        "'zq''netns'VICTIM",
        "link_add",
        "name",
    ),
    _name_case(
        "ifname-veth-peer-netns",
        "net.apply",
        _apply(("link_add", {"name": "zq0", "kind": "veth", "veth": {"peer": QUOTE_SPLIT}})),
        "$.commands[0].args.veth.peer",
        QUOTE_SPLIT,
        "link_add",
        "veth.peer",
    ),
    _name_case(
        "ifname-quote-mtu",
        "net.link_set",
        {"name": '"k0""mtu"1280', "state": "up"},
        "$.name",
        '"k0""mtu"1280',
        "link_set",
        "name",
    ),
    _name_case(
        "ifname-quote-addr-dev",
        "net.addr_add",
        {"dev": '"k0""mtu"1280', "address": "10.9.0.2/24"},
        "$.dev",
        '"k0""mtu"1280',
        "addr_add",
        "dev",
    ),
    _name_case(
        "ifname-quote-master",
        "net.link_add",
        {"name": "zq2", "kind": "ifb", "master": '"k0""mtu"9000'},
        "$.master",
        '"k0""mtu"9000',
        "link_add",
        "master",
    ),
    _name_case(
        "ifname-hash-delete",
        "net.link_delete",
        {"name": "k0#x"},
        "$.name",
        "k0#x",
        "link_delete",
        "name",
    ),
    _name_case(
        "ifname-hash-route-dev",
        "net.route_replace",
        {"to": "10.5.0.0/16", "dev": "k0#x"},
        "$.dev",
        "k0#x",
        "route_replace",
        "dev",
    ),
    Case(
        "ifname-backslash-join",
        "net.apply",
        _apply(("link_set", {"name": "zq\\", "mtu": 1400}), ("link_delete", {"name": "k0"})),
        ("$.commands[0].args.name", "zq\\", IFNAME_P),
        f"net.apply: commands[0] (link_set): name: invalid interface name 'zq\\\\' {NAME_RULE}; "
        "nothing was changed",
    ),
    _name_case(
        "ifname-newline-delete",
        "net.link_delete",
        {"name": "x\nlink del k0"},
        "$.name",
        "x\nlink del k0",
        "link_delete",
        "name",
    ),
    _name_case(
        "ifname-newline-rule-iif",
        "net.rule_add",
        {"priority": 100, "iif": "x\nlink del k0", "table": 100},
        "$.iif",
        "x\nlink del k0",
        "rule_add",
        "iif",
    ),
    _name_case(
        "ifname-trailing-newline",
        "net.link_delete",
        {"name": "k0\n"},
        "$.name",
        "k0\n",
        "link_delete",
        "name",
    ),
    _name_case(
        "ifname-space-mtu",
        "net.link_set",
        {"name": "k0 mtu 1280", "state": "up"},
        "$.name",
        "k0 mtu 1280",
        "link_set",
        "name",
    ),
    _name_case(
        "ifname-tab-mtu",
        "net.link_set",
        {"name": "k0\tmtu\t1280", "state": "up"},
        "$.name",
        "k0\tmtu\t1280",
        "link_set",
        "name",
    ),
    _name_case(
        "ifname-cr-mtu",
        "net.link_set",
        {"name": "k0\rmtu\r1280", "state": "up"},
        "$.name",
        "k0\rmtu\r1280",
        "link_set",
        "name",
    ),
    _name_case(
        "ifname-nul-delete",
        "net.link_delete",
        {"name": "k0\0x"},
        "$.name",
        "k0\0x",
        "link_delete",
        "name",
    ),
    _name_case(
        "ifname-nul-rule-oif",
        "net.rule_delete",
        {"priority": 100, "oif": "k0\0x"},
        "$.oif",
        "k0\0x",
        "rule_delete",
        "oif",
    ),
    _name_case(
        "ifname-macvlan-parent-space",
        "net.link_add",
        {"name": "zq1", "kind": "macvlan", "macvlan": {"parent": "k0 mtu 1280"}},
        "$.macvlan.parent",
        "k0 mtu 1280",
        "link_add",
        "macvlan.parent",
    ),
    *(
        _name_case(
            f"ifname-{label}",
            "net.link_add",
            {"name": bad, "kind": "ifb"},
            "$.name",
            bad,
            "link_add",
            "name",
        )
        for label, bad in (
            ("at", "k0@x"),
            ("percent", "k0%x"),
            ("colon", "k0:1"),
            ("leading-dash", "-k0"),
            ("dotdot", ".."),
            ("nbsp", "k0\u00a0x"),
        )
    ),
    # other values that reach an ip batch line, wg's argv or a file
    Case(
        "net-address-scope",
        "net.addr_add",
        {"dev": "k0", "address": "fe80::1%x y/64"},
        ("$.address", "fe80::1%x y/64", IP_PREFIX["pattern"]),
        "net.addr_add: addr_add: address: address 'fe80::1%x y/64' may not carry a scope id "
        "('%...'); nothing was changed",
    ),
    Case(
        "net-route-via-scope",
        "net.route_replace",
        {"to": "fd00::/64", "via": "fe80::1%k0 dev k0"},
        ("$.via", "fe80::1%k0 dev k0", IP["pattern"]),
        "net.route_replace: route_replace: via: address 'fe80::1%k0 dev k0' may not carry a "
        "scope id ('%...'); nothing was changed",
    ),
    Case(
        "net-mac-newline",
        "net.link_set",
        {"name": "k0", "mac": "02:00:00:00:00:01\n"},
        ("$.mac", "02:00:00:00:00:01\n", MAC["pattern"]),
        "net.link_set: link_set: mac: invalid MAC address '02:00:00:00:00:01\\n'; "
        "nothing was changed",
    ),
    Case(
        "net-proto-hash",
        "net.route_replace",
        {"to": "10.5.0.0/16", "dev": "k0", "proto": "static#x"},
        ("$.proto", "static#x", PROTO["pattern"]),
        "net.route_replace: route_replace: proto: invalid value 'static#x' (one word of "
        "letters, digits, '_', '.', ':', '/', '-'; no whitespace, quotes, '#', '\\' or "
        "control characters); nothing was changed",
    ),
    Case(
        "net-wireguard-endpoint",
        "net.link_add",
        {
            "name": "wg9",
            "kind": "wireguard",
            "wireguard": {
                "private_key_file": "/etc/wg9.key",
                "peers": [{**WG_PEER, "endpoint": "203.0.113.1:51820,198.51.100.1:1"}],
            },
        },
        (
            "$.wireguard.peers[0].endpoint",
            "203.0.113.1:51820,198.51.100.1:1",
            ENDPOINT["pattern"],
        ),
        "net.link_add: link_add: wireguard.peers[0].endpoint: endpoint "
        "'203.0.113.1:51820,198.51.100.1:1': host must be a DNS name, an IPv4 address or "
        "[IPv6 address]; nothing was changed",
    ),
    Case(
        "net-sysctl-one-value",
        "net.sysctl_set",
        {"key": "net.ipv4.ip_forward", "value": "1 0"},
        None,  # a field count per key is beyond a schema pattern
        "net.sysctl_set: sysctl_set: value: net.ipv4.ip_forward takes one value, not 2 "
        "('1 0'): the kernel would keep the first and the value would never match; "
        "nothing was changed",
    ),
    Case(
        "net-sysctl-key-newline",
        "net.sysctl_set",
        {"key": "net.ipv4.ip_forward\n", "value": 1},
        ("$.key", "net.ipv4.ip_forward\n", SYSCTL_KEY["pattern"]),
        "net.sysctl_set: sysctl_set: key: 'net.ipv4.ip_forward\\n' is not a net.* sysctl key "
        "(only net.* keys may be set); nothing was changed",
    ),
    Case(
        "net-dns-shadow",
        "net.dns_set",
        {"servers": ["10.0.0.53"], "path": "/etc/shadow"},
        ("$.path", "/etc/shadow", RESOLVER_FILE["pattern"]),
        "net.dns_set: dns_set: path: '/etc/shadow' is not a resolver file for resolvconf: the "
        "whole file is rewritten, so only /etc/resolv.conf or /etc/netns/NAME/resolv.conf may "
        "be managed; nothing was changed",
    ),
    Case(
        "net-dns-unbound-key",
        "net.dns_set",
        {
            "resolver": "unbound",
            "servers": ["10.0.0.53"],
            "path": "/etc/unbound/unbound_control.key",
        },
        ("$.path", "/etc/unbound/unbound_control.key", RESOLVER_FILE["pattern"]),
        "net.dns_set: dns_set: path: '/etc/unbound/unbound_control.key' is not a resolver file "
        "for unbound: the whole file is rewritten, so only a file "
        "/etc/unbound/unbound.conf.d/NAME.conf may be managed; nothing was changed",
    ),
    Case(
        "net-dns-resolver-mismatch",
        "net.dns_set",
        {"servers": ["10.0.0.53"], "path": "/etc/unbound/unbound.conf.d/x.conf"},
        None,  # a resolver file, just not resolvconf's: the tool checks the pairing
        "net.dns_set: dns_set: path: '/etc/unbound/unbound.conf.d/x.conf' is not a resolver "
        "file for resolvconf: the whole file is rewritten, so only /etc/resolv.conf or "
        "/etc/netns/NAME/resolv.conf may be managed; nothing was changed",
    ),
    Case(
        "net-dns-newline",
        "net.dns_set",
        {"servers": ["10.0.0.53"], "path": "/etc/resolv.conf\n"},
        ("$.path", "/etc/resolv.conf\n", RESOLVER_FILE["pattern"]),
        "net.dns_set: dns_set: path: '/etc/resolv.conf\\n' is not a resolver file for "
        "resolvconf: the whole file is rewritten, so only /etc/resolv.conf or "
        "/etc/netns/NAME/resolv.conf may be managed; nothing was changed",
    ),
    Case(
        "net-state-dns-shadow",
        "net.state",
        {"sysctls": [], "dns_path": "/etc/shadow"},
        ("$.dns_path", "/etc/shadow", RESOLVER_FILE["pattern"]),
        "dns_path: '/etc/shadow' is not a resolver file",
    ),
    # values spliced into nft script text (or joined by nft from its argv)
    Case(
        "nft-device-quote",
        "firewall.apply",
        _netdev('lo"}table ip x{'),
        ("$.tables[0].chains[0].device", 'lo"}table ip x{', IFNAME_P),
        f"table netdev edge, chain in: device: invalid interface name 'lo\"}}table ip x{{' "
        f"{NAME_RULE}",
    ),
    Case(
        "nft-device-newline",
        "firewall.apply",
        _netdev("lo\n"),
        ("$.tables[0].chains[0].device", "lo\n", IFNAME_P),
        f"table netdev edge, chain in: device: invalid interface name 'lo\\n' {NAME_RULE}",
    ),
    Case(
        "nft-canonicalize-device-quote",
        "firewall.canonicalize",
        _netdev('lo" priority 0;'),
        ("$.tables[0].chains[0].device", 'lo" priority 0;', IFNAME_P),
        f"table netdev edge, chain in: device: invalid interface name 'lo\" priority 0;' "
        f"{NAME_RULE}",
    ),
    Case(
        "nft-set-ifname-quote",
        "firewall.apply",
        {
            "tables": [
                {
                    "name": "filter",
                    "sets": [{"name": "ifs", "type": "ifname", "elements": ['lo" }']}],
                }
            ]
        },
        ("$.tables[0].sets[0].elements[0]", 'lo" }', r"^(?:[A-Za-z0-9_.:/\-*]{1,64})$(?!\n)"),
        "table inet filter, set ifs: elements[0]: element 'lo\" }' is not an interface name "
        "(letters, digits, '_', '.', '-'; a trailing '*' matches a prefix)",
    ),
    Case(
        "nft-set-element-scope",
        "firewall.apply",
        {
            "tables": [
                {
                    "name": "filter",
                    "sets": [{"name": "six", "type": "ipv6_addr", "elements": ["fe80::1%x"]}],
                }
            ]
        },
        ("$.tables[0].sets[0].elements[0]", "fe80::1%x", r"^(?:[A-Za-z0-9_.:/\-*]{1,64})$(?!\n)"),
        "table inet filter, set six: elements[0]: element 'fe80::1%x' may not carry a scope "
        "id ('%...')",
    ),
    Case(
        "nft-set-element-brace",
        "firewall.apply",
        _set(elements=["10.0.0.1 }"]),
        ("$.tables[0].sets[0].elements[0]", "10.0.0.1 }", r"^(?:[A-Za-z0-9_.:/\-*]{1,64})$(?!\n)"),
        "table inet filter, set allow: elements[0]: element '10.0.0.1 }': '10.0.0.1 }' does "
        "not appear to be an IPv4 or IPv6 address",
    ),
    Case(
        "nft-set-comment-quote",
        "firewall.apply",
        _set(comment='ops" }'),
        ("$.tables[0].sets[0].comment", 'ops" }', r"^(?:[ !#-\[\]-~]{0,128})$(?!\n)"),
        "table inet filter, set allow: comment: comment 'ops\" }' may hold printable ASCII "
        "only, without '\"' or '\\'",
    ),
    Case(
        "nft-set-comment-cr",
        "firewall.apply",
        _set(comment="ops\rx"),
        ("$.tables[0].sets[0].comment", "ops\rx", r"^(?:[ !#-\[\]-~]{0,128})$(?!\n)"),
        "table inet filter, set allow: comment: comment 'ops\\rx' may hold printable ASCII "
        "only, without '\"' or '\\'",
    ),
    Case(
        "nft-table-name-newline",
        "firewall.apply",
        {"tables": [{"name": "filter\n"}]},
        ("$.tables[0].name", "filter\n", NFT_IDENT_RE),
        "table inet: invalid nft identifier 'filter\\n' (a letter, then letters, digits, "
        "'_', '.', '-'; at most 64)",
    ),
    Case(
        "nft-delete-name-semicolon",
        "firewall.apply",
        {"delete": [{"name": "x; flush ruleset"}]},
        ("$.delete[0].name", "x; flush ruleset", NFT_IDENT_RE),
        "table inet: invalid nft identifier 'x; flush ruleset' (a letter, then letters, "
        "digits, '_', '.', '-'; at most 64)",
    ),
    Case(
        "nft-chain-name-newline",
        "firewall.apply",
        {"tables": [{"name": "filter", "chains": [{"name": "input\n"}]}]},
        ("$.tables[0].chains[0].name", "input\n", NFT_IDENT_RE),
        "table inet filter, chain: invalid nft identifier 'input\\n' (a letter, then letters, "
        "digits, '_', '.', '-'; at most 64)",
    ),
    Case(
        "nft-priority-newline",
        "firewall.apply",
        {
            "tables": [
                {
                    "name": "filter",
                    "chains": [
                        {
                            "name": "input",
                            "type": "filter",
                            "hook": "input",
                            "priority": "filter\n; flush ruleset",
                        }
                    ],
                }
            ]
        },
        (
            "$.tables[0].chains[0].priority",
            "filter\n; flush ruleset",
            r"^(?:(?:raw|mangle|dstnat|filter|security|srcnat|out)(?: *[-+] *[0-9]{1,4})?)$(?!\n)",
        ),
        "table inet filter, chain input: priority 'filter\\n; flush ruleset' must be a number "
        "or a name like filter or 'filter + 10'",
    ),
    Case(
        "nft-rule-semicolon",
        "firewall.apply",
        _rule("tcp dport 22 accept; flush ruleset"),
        None,  # ';' inside quotes is fine: only the statement checker can tell
        "table inet filter, chain input, rule 0: rule may not contain ';' outside a quoted string",
    ),
    Case(
        "nft-rule-newline",
        "firewall.apply",
        _rule("accept\nflush ruleset"),
        (
            "$.tables[0].chains[0].rules[0]",
            "accept\nflush ruleset",
            r"^(?:[^\x00-\x1f\x7f]+)$(?!\n)",
        ),
        "table inet filter, chain input, rule 0: rule must be one line of printable characters",
    ),
    Case(
        "nft-rule-close-brace",
        "firewall.apply",
        _rule("accept } table ip x {"),
        None,  # balanced brackets are beyond a pattern
        "table inet filter, chain input, rule 0: rule has an unbalanced '}'",
    ),
    Case(
        "nft-ruleset-name-semicolon",
        "firewall.ruleset",
        {"tables": [{"name": "x; flush ruleset"}]},
        ("$.tables[0].name", "x; flush ruleset", NFT_IDENT_RE),
        "table inet: invalid nft identifier 'x; flush ruleset' (a letter, then letters, "
        "digits, '_', '.', '-'; at most 64)",
    ),
    Case(
        "nft-add-rule-chain-newline",
        "firewall.add_rule",
        {"chain": "input\n", "rule": "tcp dport 22", "action": "accept"},
        ("$.chain", "input\n", NFT_IDENT_RE),
        "invalid chain name 'input\\n'",
    ),
    Case(
        "nft-add-rule-action-semicolon",
        "firewall.add_rule",
        {"chain": "input", "rule": "tcp dport 22", "action": "accept; flush ruleset"},
        None,  # aiOS's shape: rule and action are free strings, joined and checked
        "Failed to add nft rule: rule may not contain ';' outside a quoted string",
    ),
]


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def test_case_ids_are_unique_and_named_by_area() -> None:
    ids = _ids(CASES)
    assert len(ids) == len(set(ids))
    assert all(i.startswith(("ifname-", "nft-", "net-")) for i in ids)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_the_schema_refuses(case: Case, world: World) -> None:
    """What Execute checks first; the exact `Invalid input:` text the pipeline sends."""
    args = case.hostile(world.victim)
    before = state(world)
    problem = first_error(catalogue()[case.tool].input_schema, args)
    if case.schema is None:
        assert problem is None, f"the schema now refuses it: {problem}"
    else:
        path, bad, pattern = case.schema
        bad = bad.replace("VICTIM", world.victim) if isinstance(bad, str) else bad
        assert f"Invalid input: {problem}" == (
            f"Invalid input: {path}: {bad!r} does not match {pattern!r}"
        )
    assert_unchanged(world, before)


def _context(world: World) -> ToolContext:
    return ToolContext(
        runner=ProcessRunner(),
        root=world.root,
        state_dir=world.root,
        work=world.root,
        execution_id="attack",
        netns=world.target,
    )


async def _run_handler(world: World, tool: str, args: dict[str, Any]) -> Any:
    return await tool_classes()[tool]().run(_context(world), args)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_the_handler_refuses(case: Case, world: World) -> None:
    """The tool itself, schema bypassed, for real in the target namespace."""
    args = case.hostile(world.victim)
    before = state(world)
    with pytest.raises(ToolError) as refused:
        asyncio.run(_run_handler(world, case.tool, args))
    assert str(refused.value) == case.handler.replace("VICTIM", world.victim)
    assert_unchanged(world, before)


def test_the_handler_also_refuses_in_the_before_image() -> None:
    """The pipeline asks a write for its touches and snapshot before run: they check
    the names too, with the same message (nothing is read for a hostile name)."""
    tool = tool_classes()["net.apply"]()
    args = _apply(("link_set", {"name": "k0", "mtu": 1400}), ("link_delete", {"name": "k0#x"}))
    with pytest.raises(ToolError) as refused:
        tool.touches(args)
    assert str(refused.value) == (
        f"net.apply: commands[1] (link_delete): name: invalid interface name 'k0#x' "
        f"{NAME_RULE}; nothing was changed"
    )


def _links_named(name: str) -> list[str]:
    """Every network namespace (by name, and the host's own) holding a link `name`."""
    found = []
    if subprocess.run(["ip", "link", "show", "dev", name], capture_output=True).returncode == 0:
        found.append("<host>")
    for ns in run(["ip", "netns", "list"]).split():
        if ns.startswith("(id:"):
            continue
        shown = subprocess.run(["ip", "-n", ns, "link", "show", "dev", name], capture_output=True)
        if shown.returncode == 0:
            found.append(ns)
    return found


async def test_the_issue_injection_through_a_real_net_apply(world: World, tmp_path: Path) -> None:
    """`"zq""netns"vXYZ` through a registry server's net.apply (`--netns`): refused with
    the JSON path; no link zq in any namespace; the target, the victim, the host and the
    sentinel trees unchanged; and a legitimate net.apply on the same server still works."""
    before = state(world)
    name = QUOTE_SPLIT.replace("VICTIM", world.victim)
    async with (
        running_registry(tmp_path, root=world.root, netns=world.target) as (_s, address),
        RegistryClient(address) as client,
    ):
        with pytest.raises(ToolRejected) as refused:
            await client.call(
                "net.apply",
                _apply(("link_add", {"name": name, "kind": "ifb"})),
                reason="attack",
            )
        assert str(refused.value) == (
            f"Invalid input: $.commands[0].args.name: {name!r} does not match {IFNAME_P!r}"
        )
        assert _links_named("zq") == []
        assert_unchanged(world, before)
        done = await client.call(
            "net.apply",
            _apply(("link_add", {"name": "zq-ok.1", "kind": "ifb"})),
            reason="control",
        )
        assert done.output["commands"] == ["link add dev zq-ok.1 type ifb"]
        assert _links_named("zq-ok.1") == [world.target]
        await client.rollback(done.execution_id, "undo the control")
    assert_unchanged(world, before)


def test_positive_control_ip_itself_puts_the_link_into_the_victim(world: World) -> None:
    """The batch line the old builder made, given to ip directly: the link appears in
    the victim namespace. So the checks above would see the escape if it happened."""
    before = state(world)
    line = f'link add dev "zq""netns"{world.victim} type ifb\n'
    try:
        run(["ip", "-n", world.target, "-batch", "-"], input=line)
        assert "zq" in {x["ifname"] for x in ip_json(world.victim, "link", "show")}
        assert _links_named("zq") == [world.victim]
        with pytest.raises(AssertionError, match="victim"):
            assert_unchanged(world, before)
    finally:
        subprocess.run(["ip", "-n", world.victim, "link", "del", "zq"], capture_output=True)
    assert_unchanged(world, before)


def test_the_sentinel_notices_a_change(world: World) -> None:
    before = state(world)
    run(["ip", "-n", world.target, "link", "set", "dev", "k0", "mtu", "1280"])
    try:
        with pytest.raises(AssertionError, match="target"):
            assert_unchanged(world, before)
    finally:
        run(["ip", "-n", world.target, "link", "set", "dev", "k0", "mtu", "1500"])
    shadow = world.host / "etc/shadow"
    shadow.chmod(0o644)
    try:
        with pytest.raises(AssertionError, match="host tree"):
            assert_unchanged(world, before)
    finally:
        shadow.chmod(0o600)
    assert_unchanged(world, before)
