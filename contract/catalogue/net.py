"""The `net` tool catalogue as data: one ToolSpec per tool, with input and output schemas.

aiOS's own tools (`net.interfaces`, `net.ping`, `net.dns`, `net.http_get`,
`net.port_scan`) keep aiOS's names, input keys and output shapes (contract
§3.1) with proper schemas; the declarative ones (`net.state`, the writes and
`net.apply`) are added beside them. Every write is reversible: the pipeline
snapshots the objects `touches()` names and Rollback restores them
(registry.drivers.net.snapshot). Every ToolSpec is made by contract.tooldef.define
with schemas tagged as documents (contract.catalogue.parts.document). Read by
registry.handlers.net (the handlers, WRITE_SPECS) and contract.catalogue (ALL).
"""

from __future__ import annotations

from contract.catalogue.links import LINK_ADD, LINK_DELETE, LINK_SET
from contract.catalogue.netschema import (
    ADDR,
    ADMIN_STATE,
    DNS_SET,
    OBSERVED_IFNAME,
    RESOLVER_FILE,
    ROUTE_DELETE,
    ROUTE_REPLACE,
    RULE_ADD,
    RULE_DELETE,
    SYSCTL_KEY,
    SYSCTL_SET,
    TABLE_OUT,
)
from contract.catalogue.parts import document
from contract.tooldef import JSON, Risk, ToolSpec, define, obj_schema
from contract.vocab.links import KINDS

WRITE_INPUTS: dict[str, JSON] = {
    "link_add": LINK_ADD,
    "link_set": LINK_SET,
    "link_delete": LINK_DELETE,
    "addr_add": ADDR,
    "addr_delete": ADDR,
    "route_replace": ROUTE_REPLACE,
    "route_delete": ROUTE_DELETE,
    "rule_add": RULE_ADD,
    "rule_delete": RULE_DELETE,
    "sysctl_set": SYSCTL_SET,
    "dns_set": DNS_SET,
}
_STR_OR_NULL: JSON = {"type": ["string", "null"]}

ADDRESS_OUT = obj_schema(
    {
        "address": {"type": "string", "description": "With prefix length, e.g. 10.0.0.1/24."},
        "family": {"enum": ["inet", "inet6"]},
        "scope": {"type": "string", "description": "global, link, host (or site, a number)."},
        "dynamic": {"type": "boolean", "description": "Has a finite lifetime (SLAAC, DHCP)."},
    },
    ["address", "family", "scope", "dynamic"],
)
LINK_OUT = obj_schema(
    {
        "name": OBSERVED_IFNAME,
        "index": {"type": "integer"},
        "kind": {
            "enum": list(KINDS),  # contract.vocab.links
            "description": "From linkinfo.info_kind (tun/tap from the tun info); ethernet and "
            "loopback when the kernel reports no kind.",
        },
        "state": ADMIN_STATE,
        "operstate": {
            "type": "string",
            "description": "Kernel operstate (UP, DOWN, UNKNOWN...): ifb shows UNKNOWN and an "
            "empty bridge DOWN while admin-up.",
        },
        "mtu": {"type": "integer"},
        "mac": {**_STR_OR_NULL, "description": "Lowercase, null for links without one (tun)."},
        "master": {**_STR_OR_NULL, "description": "Bridge/bond this link is a port of."},
        "parent": {
            **_STR_OR_NULL,
            "description": "veth peer, macvlan/vlan/vxlan lower device (null when it is in "
            "another namespace).",
        },
        "info": {
            "type": "object",
            "description": "Kind-specific facts with the keys of link_add's option block: "
            "veth {peer}, bridge {stp, forward_delay}, macvlan {parent, mode}, vxlan {id, "
            "parent, local, remote, group, port}, vlan {parent, id}, bond {mode, miimon}, "
            "tun/tap {owner, group, multi_queue}; {} for other kinds.",
        },
        "addresses": {"type": "array", "items": ADDRESS_OUT},
    },
    [
        "name",
        "index",
        "kind",
        "state",
        "operstate",
        "mtu",
        "mac",
        "master",
        "parent",
        "info",
        "addresses",
    ],
)
ROUTE_OUT = obj_schema(
    {
        "family": {"enum": ["inet", "inet6"]},
        "table": TABLE_OUT,
        "to": {
            "type": "string",
            "description": "'default' or a network (host routes as /32, /128).",
        },
        "via": _STR_OR_NULL,
        "dev": _STR_OR_NULL,
        "metric": {"type": "integer", "description": "0 when IPv4 reports none."},
        "proto": {"type": "string", "description": "boot when ip reports none."},
        "scope": {"type": "string"},
        "src": _STR_OR_NULL,
        "type": {"type": "string", "description": "unicast, local, broadcast, blackhole, ..."},
        "onlink": {"type": "boolean"},
    },
    ["family", "table", "to", "via", "dev", "metric", "proto", "scope", "src", "type", "onlink"],
)
RULE_OUT = obj_schema(
    {
        "family": {"enum": ["inet", "inet6"]},
        "priority": {"type": "integer"},
        "from": {
            **_STR_OR_NULL,
            "description": "null for 'all'; a host without /32 as ip shows it.",
        },
        "to": _STR_OR_NULL,
        "iif": _STR_OR_NULL,
        "oif": _STR_OR_NULL,
        "fwmark": {**_STR_OR_NULL, "description": "hex, '0x1' or '0x1/0xff'."},
        "table": {"oneOf": [TABLE_OUT, {"type": "null"}]},
        "action": {
            "type": "string",
            "description": "lookup, blackhole, unreachable, prohibit, ...",
        },
    },
    ["family", "priority", "from", "to", "iif", "oif", "fwmark", "table", "action"],
)
DNS_OUT = obj_schema(
    {
        "path": {"type": "string"},
        "exists": {"type": "boolean"},
        "servers": {"type": "array", "items": {"type": "string"}},
        "search": {"type": "array", "items": {"type": "string"}},
        "options": {"type": "array", "items": {"type": "string"}},
    },
    ["path", "exists", "servers", "search", "options"],
)
NET_STATE_OUT = obj_schema(
    {
        "links": {"type": "array", "items": LINK_OUT},
        "routes": {"type": "array", "items": ROUTE_OUT},
        "rules": {"type": "array", "items": RULE_OUT},
        "sysctls": {"type": "object", "additionalProperties": _STR_OR_NULL},
        "dns": DNS_OUT,
    },
    ["links", "routes", "rules", "sysctls", "dns"],
)
COMMANDS_OUT = obj_schema(
    {
        "commands": {
            "type": "array",
            "items": {"type": "string"},
            "description": "What ran, in order: ip batch lines, `sysctl -w k=v`, `write PATH`.",
        }
    },
    ["commands"],
)

APPLY_IN: JSON = {
    **obj_schema(
        {
            "commands": {
                "type": "array",
                "minItems": 1,
                "maxItems": 10000,
                "items": {
                    **obj_schema(
                        {"op": {"enum": list(WRITE_INPUTS)}, "args": {"type": "object"}},
                        ["op", "args"],
                    ),
                    "allOf": [
                        {
                            "if": {"properties": {"op": {"const": op}}},
                            "then": {"properties": {"args": {"$ref": f"#/$defs/{op}"}}},
                        }
                        for op in WRITE_INPUTS
                    ],
                },
            }
        },
        ["commands"],
    ),
    "$defs": WRITE_INPUTS,
}


READ = ("net_read",)
WRITE = ("net_write",)

NET_INTERFACES = define(
    "net.interfaces",
    "aiOS's interface list: name (with '@peer' as `ip -o link` prints it), first IPv4 "
    "without prefix, MAC ('' when none), status up/down by the admin flag. Deliberate "
    "difference: status is the IFF_UP flag itself, where aiOS matched the substring 'UP' "
    "anywhere in the line (so a link named e.g. 'UPLINK' always read as up).",
    document(obj_schema({})),
    document(
        obj_schema(
            {
                "interfaces": {
                    "type": "array",
                    "items": obj_schema(
                        {
                            "name": {"type": "string"},
                            "ip": {"type": "string"},
                            "mac": {"type": "string"},
                            "status": {"enum": ["up", "down"]},
                        },
                        ["name", "ip", "mac", "status"],
                    ),
                }
            },
            ["interfaces"],
        )
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=5000,
    capabilities=READ,
)
NET_STATE = define(
    "net.state",
    "Links (kind, admin state, mtu, mac, master, parent, kind facts, addresses), routes of "
    "all tables and both families, policy rules, net.* sysctls and DNS of the target.",
    document(
        obj_schema(
            {
                "sysctls": {
                    "type": "array",
                    "items": SYSCTL_KEY,
                    "maxItems": 4096,
                    "description": "Keys to read; omitted: every key directly under "
                    "net.ipv4/net.ipv6 and their conf.all/conf.default (not per-interface).",
                },
                "dns_path": {
                    **RESOLVER_FILE,
                    "description": "Resolver file to read (one dns_set may write); default "
                    "/etc/resolv.conf.",
                },
            }
        )
    ),
    document(NET_STATE_OUT),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=10000,
    capabilities=READ,
)

_WRITES: dict[str, tuple[str, Risk, bool]] = {
    # op: (description, risk, idempotent)
    "link_add": (
        "Create a link of the given kind with its options (ip link add).",
        "medium",
        False,
    ),
    "link_set": ("Set mtu, mac, admin state, master or bridge options of a link.", "medium", True),
    "link_delete": ("Delete a link (a veth takes its peer with it).", "high", False),
    "addr_add": ("Add an address to a link (ip addr replace).", "medium", True),
    "addr_delete": ("Remove an address from a link.", "medium", False),
    "route_replace": ("Add or replace a route (ip route replace).", "medium", True),
    "route_delete": ("Delete a route.", "medium", False),
    "rule_add": ("Add a policy routing rule (ip rule add).", "medium", False),
    "rule_delete": ("Delete a policy routing rule.", "medium", False),
    "sysctl_set": ("Write one net.* sysctl in the target namespace.", "medium", True),
    "dns_set": ("Write the resolver configuration file (resolv.conf or unbound).", "medium", True),
}


def _write_spec(op: str) -> ToolSpec:
    description, risk, idempotent = _WRITES[op]
    schema = WRITE_INPUTS[op]
    extra = schema.get("description")
    return define(
        f"net.{op}",
        f"{description} {extra}" if extra else description,
        document(schema),
        document(COMMANDS_OUT),
        risk=risk,
        idempotent=idempotent,
        reversible=True,
        timeout_ms=15000,
        capabilities=WRITE,
    )


WRITE_SPECS: dict[str, ToolSpec] = {op: _write_spec(op) for op in _WRITES}

NET_APPLY = define(
    "net.apply",
    "An ordered batch of net write operations, all-or-nothing: the touched objects are "
    "snapshotted first; on the first failure everything touched is restored and the error "
    "names the failing command (index, text, ip's message) and whether the restore succeeded. "
    "Consecutive ip commands run in one `ip -batch`.",
    document(APPLY_IN),
    document(
        obj_schema(
            {"executed": {"type": "integer"}, "commands": COMMANDS_OUT["properties"]["commands"]},
            ["executed", "commands"],
        )
    ),
    risk="high",
    idempotent=False,
    reversible=True,
    timeout_ms=30000,
    capabilities=WRITE,
)

NET_PING = define(
    "net.ping",
    "ICMP echo from the target namespace (Python socket; `ping` is not needed). An "
    "unreachable host is success=false in the output, not a tool error.",
    document(
        obj_schema(
            {
                "host": {"type": "string", "minLength": 1, "maxLength": 253},
                "count": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 100,
                    "default": 3,
                    "description": "Echo requests; 0 means 3 (as aiOS).",
                },
            },
            ["host"],
        )
    ),
    document(
        obj_schema(
            {"success": {"type": "boolean"}, "latency_ms": {"type": "number"}},
            ["success", "latency_ms"],
        )
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=30000,
    capabilities=READ,
)
NET_DNS = define(
    "net.dns",
    "Resolve a host name with the target's libc resolver (getaddrinfo).",
    document(
        obj_schema({"hostname": {"type": "string", "minLength": 1, "maxLength": 253}}, ["hostname"])
    ),
    document(
        obj_schema({"addresses": {"type": "array", "items": {"type": "string"}}}, ["addresses"])
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=10000,
    capabilities=READ,
)
NET_HTTP_GET = define(
    "net.http_get",
    "HTTP GET following redirects (15 s); body capped at 1 MiB with a '... [truncated, total "
    "N bytes]' suffix; status 0 when no connection could be made.",
    document(
        obj_schema(
            {"url": {"type": "string", "pattern": r"^https?://[^\s]+$", "maxLength": 8192}}, ["url"]
        )
    ),
    document(
        obj_schema(
            {"status": {"type": "integer", "minimum": 0}, "body": {"type": "string"}},
            ["status", "body"],
        )
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=30000,
    capabilities=READ,
)
NET_PORT_SCAN = define(
    "net.port_scan",
    "TCP connect (5 s) to each resolved address of host; open when any accepts.",
    document(
        obj_schema(
            {
                "host": {"type": "string", "minLength": 1, "maxLength": 253},
                "port": {"type": "integer", "minimum": 0, "maximum": 65535},
            },
            ["host", "port"],
        )
    ),
    document(obj_schema({"open": {"type": "boolean"}}, ["open"])),
    risk="medium",
    idempotent=True,
    reversible=False,
    timeout_ms=10000,
    capabilities=("net_read", "net_scan"),
)

ALL: tuple[ToolSpec, ...] = (
    NET_INTERFACES,
    NET_STATE,
    *WRITE_SPECS.values(),
    NET_APPLY,
    NET_PING,
    NET_DNS,
    NET_HTTP_GET,
    NET_PORT_SCAN,
)
