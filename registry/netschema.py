"""JSON Schemas (draft 2020-12) for the `net` tools: value types and each write's input.

Schemas are plain data. Value patterns are as strict as a regular expression
can reasonably be (IPv4 exactly, IPv6 coarsely); the tools re-check every
address with `ipaddress` and say which field is wrong. Kind-specific link
options are nested objects named after the kind, mirroring specs.network
(`veth: {peer}`, `macvlan: {parent, mode}`, ...). Used by registry.netspecs
(the ToolSpecs, net.state's output and net.apply's per-op schema) and by the
tests that validate wrong inputs.
"""

from __future__ import annotations

from typing import Any

from registry.tooling import JSON, obj_schema

DRAFT = "https://json-schema.org/draft/2020-12/schema"

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
IPV6_RE = rf"(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:[0-9A-Fa-f]{{0,4}}|{IPV4_RE})"
_P4 = r"/(?:3[0-2]|[12]?[0-9])"
_P6 = r"/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])"

IFNAME: JSON = {
    "type": "string",
    "pattern": r"^(?!\.\.?$)[!-$&-.0-9;-~]{1,15}$",
    "description": "Interface name: 1-15 printable ASCII characters, no '/', ':', '%' or space.",
}
MAC: JSON = {
    "type": "string",
    "pattern": r"^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$",
    "description": "Ethernet address, e.g. 02:00:5e:00:00:01 (reported lowercase).",
}
IP: JSON = {
    "type": "string",
    "pattern": rf"^(?:{IPV4_RE}|{IPV6_RE})$",
    "description": "An IPv4 or IPv6 address without prefix length.",
}
IP_PREFIX: JSON = {
    "type": "string",
    "pattern": rf"^(?:{IPV4_RE}{_P4}|{IPV6_RE}{_P6})$",
    "description": "Interface address with prefix length, e.g. 10.0.0.1/24 or 2001:db8::1/64.",
}
ROUTE_DEST: JSON = {
    "type": "string",
    "pattern": rf"^(?:default|{IPV4_RE}(?:{_P4})?|{IPV6_RE}(?:{_P6})?)$",
    "description": "Destination network (host bits zero), a bare address (a host route) "
    "or 'default'.",
}
ADDR_OR_NET: JSON = {
    "type": "string",
    "pattern": rf"^(?:{IPV4_RE}(?:{_P4})?|{IPV6_RE}(?:{_P6})?)$",
    "description": "An address, or a network with zero host bits.",
}
FAMILY: JSON = {"enum": ["inet", "inet6"], "description": "inet (IPv4) or inet6 (IPv6)."}
MTU: JSON = {"type": "integer", "minimum": 68, "maximum": 65535}
U32: JSON = {"type": "integer", "minimum": 0, "maximum": 4294967295}
TABLE_IN: JSON = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 4294967295},
        {"enum": ["main", "default"]},
    ],
    "description": "Routing table: main (the default), default, or a number.",
}
TABLE_OUT: JSON = {
    "oneOf": [{"type": "integer", "minimum": 0}, {"enum": ["main", "local", "default"]}],
    "description": "Routing table: main, local, default or a number.",
}
PROTO: JSON = {
    "type": "string",
    "pattern": r"^[a-z0-9][a-z0-9_.-]{0,31}$",
    "description": "Route protocol, e.g. static or boot (ip's default) or a number.",
}
ADMIN_STATE: JSON = {
    "enum": ["up", "down"],
    "description": "The admin flag (IFF_UP), not the carrier/operstate.",
}
NULLABLE_IFNAME: JSON = {"oneOf": [IFNAME, {"type": "null"}]}
ABS_PATH: JSON = {
    "type": "string",
    "pattern": r"^/(?:[^/\x00\n]+(?:/[^/\x00\n]+)*)?$",
    "maxLength": 4095,
    "description": "Absolute path on the target (mapped under the registry's --root).",
}
_DOMAIN_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
DOMAIN: JSON = {
    "type": "string",
    "maxLength": 253,
    "pattern": rf"^{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*\.?$",
}
SYSCTL_KEY: JSON = {
    "type": "string",
    "maxLength": 200,
    "pattern": r"^net(?:\.[A-Za-z0-9_@-]+)+$",
    "description": "A net.* sysctl key in dotted form (net.ipv4.ip_forward); any other "
    "tree is refused. Interface names containing '.' cannot be addressed.",
}
SYSCTL_VALUE: JSON = {
    "oneOf": [
        {"type": "integer"},
        {"type": "boolean"},
        {"type": "string", "maxLength": 255, "pattern": r"^[^\n\r\x00]*$"},
    ],
    "description": "A number, a boolean (written 1/0) or a one-line string; tabs separate "
    "the fields of multi-value keys like net.ipv4.tcp_rmem.",
}

# --- link kinds ----------------------------------------------------------------

CREATABLE_KINDS = (
    "veth",
    "bridge",
    "macvlan",
    "vxlan",
    "vlan",
    "bond",
    "wireguard",
    "tun",
    "tap",
    "ifb",
    "dummy",
)
STATE_KINDS = ("ethernet", "loopback", *CREATABLE_KINDS, "other")
# The kind that owns each option block (tun and tap share `tun`).
BLOCK_KINDS: dict[str, tuple[str, ...]] = {
    "veth": ("veth",),
    "bridge": ("bridge",),
    "macvlan": ("macvlan",),
    "vxlan": ("vxlan",),
    "vlan": ("vlan",),
    "bond": ("bond",),
    "wireguard": ("wireguard",),
    "tun": ("tun", "tap"),
}
REQUIRED_BLOCK = {
    "veth": "veth",
    "macvlan": "macvlan",
    "vxlan": "vxlan",
    "vlan": "vlan",
    "wireguard": "wireguard",
}
MACVLAN_MODES = ["private", "vepa", "bridge", "passthru", "source"]
BOND_MODES = [
    "balance-rr",
    "active-backup",
    "balance-xor",
    "broadcast",
    "802.3ad",
    "balance-tlb",
    "balance-alb",
]
PORT: JSON = {"type": "integer", "minimum": 1, "maximum": 65535}
BRIDGE_OPTS = obj_schema(
    {
        "stp": {"type": "boolean", "description": "Spanning tree on/off (stp_state)."},
        "forward_delay": {
            "type": "integer",
            "minimum": 0,
            "maximum": 3000,
            "description": "Centiseconds, as ip reports it.",
        },
    }
)
BLOCKS: dict[str, JSON] = {
    "veth": obj_schema(
        {"peer": {**IFNAME, "description": "The other end, created in the same namespace."}},
        ["peer"],
    ),
    "bridge": BRIDGE_OPTS,
    "macvlan": obj_schema(
        {"parent": IFNAME, "mode": {"enum": MACVLAN_MODES, "default": "bridge"}}, ["parent"]
    ),
    "vxlan": {
        **obj_schema(
            {
                "id": {"type": "integer", "minimum": 0, "maximum": 16777215, "description": "VNI"},
                "parent": IFNAME,
                "local": IP,
                "remote": IP,
                "group": IP,
                "port": {**PORT, "default": 4789},
            },
            ["id"],
        ),
        "not": {"required": ["remote", "group"]},
        "dependentRequired": {"group": ["parent"]},
        "description": "Unicast (remote) or multicast (group, needs parent), not both.",
    },
    "vlan": obj_schema(
        {"parent": IFNAME, "id": {"type": "integer", "minimum": 1, "maximum": 4094}},
        ["parent", "id"],
    ),
    "bond": obj_schema(
        {
            "mode": {"enum": BOND_MODES, "default": "active-backup"},
            "miimon": {"type": "integer", "minimum": 0, "description": "Milliseconds."},
        }
    ),
    "wireguard": obj_schema(
        {
            "private_key_file": {
                **ABS_PATH,
                "description": "File holding the base64 private key, read by `wg` at run "
                "time; its content never appears in output, logs or errors.",
            },
            "listen_port": PORT,
            "peers": {
                "type": "array",
                "items": obj_schema(
                    {
                        "public_key": {
                            "type": "string",
                            "pattern": r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$",
                        },
                        "endpoint": {"type": "string", "pattern": r"^[^\s,]+:[0-9]{1,5}$"},
                        "allowed_ips": {"type": "array", "items": ADDR_OR_NET},
                        "persistent_keepalive": {"type": "integer", "minimum": 0, "maximum": 65535},
                    },
                    ["public_key"],
                ),
            },
        },
        ["private_key_file"],
    ),
    "tun": obj_schema(
        {
            "owner": {"type": "integer", "minimum": 0, "description": "uid allowed to attach"},
            "group": {"type": "integer", "minimum": 0, "description": "gid allowed to attach"},
            "multi_queue": {"type": "boolean", "default": False},
        }
    ),
}


def _kind_rules() -> list[JSON]:
    """if/then clauses: a block only with its kind; required blocks for some kinds."""
    rules: list[JSON] = []
    for block, kinds in BLOCK_KINDS.items():
        rules.append(
            {"if": {"required": [block]}, "then": {"properties": {"kind": {"enum": list(kinds)}}}}
        )
    for kind, block in REQUIRED_BLOCK.items():
        rules.append(
            {"if": {"properties": {"kind": {"const": kind}}}, "then": {"required": [block]}}
        )
    return rules


LINK_ADD: JSON = {
    **obj_schema(
        {
            "name": IFNAME,
            "kind": {
                "enum": list(CREATABLE_KINDS),
                "description": "Kind of link to create (dummy, vlan, bond and wireguard need "
                "kernel support; ethernet devices are never created).",
            },
            "mtu": MTU,
            "mac": {**MAC, "description": "Ethernet address (not for kind tun, which has none)."},
            "state": {
                **ADMIN_STATE,
                "description": "Admin state after creation; omitted: down (the kernel default).",
            },
            "master": {
                **NULLABLE_IFNAME,
                "description": "Bridge or bond to enslave the new link to; null: none.",
            },
            **BLOCKS,
        },
        ["name", "kind"],
    ),
    "allOf": _kind_rules(),
    "description": "Not idempotent: fails when a link of that name exists. A veth creates "
    "both ends.",
}
LINK_SET: JSON = {
    **obj_schema(
        {
            "name": IFNAME,
            "mtu": MTU,
            "mac": {
                **MAC,
                "description": "New address; an ifb link is set down for the change (it cannot "
                "change its address while up) and its admin state put back.",
            },
            "state": ADMIN_STATE,
            "master": {**NULLABLE_IFNAME, "description": "Bridge or bond to join; null detaches."},
            "bridge": BRIDGE_OPTS,
        },
        ["name"],
    ),
    "minProperties": 2,
    "description": "Idempotent: sets only the given attributes.",
}
LINK_DELETE = obj_schema({"name": IFNAME}, ["name"])
ADDR = obj_schema({"dev": IFNAME, "address": IP_PREFIX}, ["dev", "address"])

ROUTE_TYPES = ["unicast", "blackhole", "unreachable", "prohibit"]
ROUTE_REPLACE: JSON = {
    **obj_schema(
        {
            "to": ROUTE_DEST,
            "family": {
                **FAMILY,
                "description": "Needed only when nothing else tells (to=default without "
                "via or src); must agree with the addresses.",
            },
            "via": IP,
            "dev": IFNAME,
            "table": {**TABLE_IN, "default": "main"},
            "metric": {
                **U32,
                "description": "Route priority; omitted: 0 for IPv4, 1024 for IPv6 (the kernel's).",
            },
            "src": IP,
            "scope": {"enum": ["global", "link", "host"]},
            "type": {"enum": ROUTE_TYPES, "default": "unicast"},
            "onlink": {"type": "boolean", "default": False},
            "proto": PROTO,
        },
        ["to"],
    ),
    "allOf": [
        {
            "if": {"properties": {"type": {"not": {"const": "unicast"}}}, "required": ["type"]},
            "then": {"not": {"anyOf": [{"required": ["via"]}, {"required": ["dev"]}]}},
            "else": {"anyOf": [{"required": ["via"]}, {"required": ["dev"]}]},
        }
    ],
    "description": "Idempotent (`ip route replace`): a route is identified by family, table, "
    "destination and metric.",
}
ROUTE_DELETE: JSON = {
    **obj_schema(
        {
            "to": ROUTE_DEST,
            "family": FAMILY,
            "table": {**TABLE_IN, "default": "main"},
            "metric": {
                **U32,
                "description": "Omitted: the kernel deletes the first route to "
                "that destination in the table, whatever its metric.",
            },
            "via": IP,
            "dev": IFNAME,
            "type": {"enum": ROUTE_TYPES},
        },
        ["to"],
    ),
    "description": "Not idempotent: fails when no such route exists.",
}

_MARK = r"(?:0x[0-9a-fA-F]{1,8}|[0-9]{1,10})"
RULE_FIELDS: dict[str, Any] = {
    "priority": {"type": "integer", "minimum": 1, "maximum": 32765},
    "family": {**FAMILY, "description": "Omitted: from the addresses, else inet."},
    "from": ADDR_OR_NET,
    "to": ADDR_OR_NET,
    "iif": IFNAME,
    "oif": IFNAME,
    "fwmark": {
        "oneOf": [
            U32,
            {
                "type": "string",
                "pattern": rf"^{_MARK}(?:/{_MARK})?$",
            },
        ],
        "description": "A mark, or 'mark/mask' like '0x1/0xff'.",
    },
    "table": TABLE_IN,
    "action": {"enum": ["lookup", "blackhole", "unreachable", "prohibit"], "default": "lookup"},
}
RULE_ADD: JSON = {
    **obj_schema(RULE_FIELDS, ["priority"]),
    "allOf": [
        {
            "if": {
                "anyOf": [
                    {"not": {"required": ["action"]}},
                    {"properties": {"action": {"const": "lookup"}}},
                ]
            },
            "then": {"required": ["table"]},
            "else": {"not": {"required": ["table"]}},
        }
    ],
    "description": "Not idempotent: the kernel refuses an identical rule (File exists).",
}
RULE_DELETE: JSON = {
    **obj_schema(RULE_FIELDS, ["priority"]),
    "description": "Deletes the first rule at that priority matching the given selectors; "
    "fails when there is none.",
}
SYSCTL_SET = obj_schema({"key": SYSCTL_KEY, "value": SYSCTL_VALUE}, ["key", "value"])
DNS_SET: JSON = {
    **obj_schema(
        {
            "resolver": {"enum": ["resolvconf", "unbound"], "default": "resolvconf"},
            "servers": {"type": "array", "items": IP, "uniqueItems": True, "maxItems": 16},
            "search": {"type": "array", "items": DOMAIN, "maxItems": 6},
            "options": {
                "type": "array",
                "items": {"type": "string", "pattern": r"^[a-z][a-z0-9_-]*(?::[0-9]{1,4})?$"},
            },
            "path": {
                **ABS_PATH,
                "description": "File to manage; default /etc/resolv.conf, or "
                "/etc/unbound/unbound.conf.d/aios-forward.conf for unbound.",
            },
        },
        ["servers"],
    ),
    "allOf": [
        {
            "if": {
                "anyOf": [
                    {"not": {"required": ["resolver"]}},
                    {"properties": {"resolver": {"const": "resolvconf"}}},
                ]
            },
            "then": {"properties": {"servers": {"maxItems": 3}}},
        }
    ],
    "description": "Manages the whole file: it is rewritten atomically (tmp, fsync, rename) "
    "under --root; idempotent. resolv.conf honours at most 3 nameservers.",
}

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


def top(schema: JSON) -> JSON:
    """A schema as a standalone document (with the draft URI)."""
    return {"$schema": DRAFT, **schema}
