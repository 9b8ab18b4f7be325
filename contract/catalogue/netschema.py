"""JSON Schemas (draft 2020-12) for the `net` tools: value types and the non-link writes.

Schemas are plain data. Value patterns are as strict as a regular expression
can reasonably be (IPv4 exactly, IPv6 coarsely); the tools re-check every
address with `ipaddress` and say which field is wrong. Every pattern is built
with contract.catalogue.parts.anchored: jsonschema applies patterns with
`re.search`, where a bare `$` also matches before a final newline, so `^eth0$`
would let "eth0\n" through. Inputs of addr_*, route_*, rule_*, sysctl_set and
dns_set live here; link inputs (kinds and their option blocks) in
contract.catalogue.links. Used by contract.catalogue.net (the ToolSpecs,
net.state's output and net.apply's per-op schema), contract.catalogue.links
and contract.catalogue.firewall (interface names).
"""

from __future__ import annotations

from typing import Any

from contract.catalogue.parts import anchored
from contract.tooldef import JSON, obj_schema
from contract.vocab.netvalues import FWMARK_PATTERN, IFNAME_PATTERN, MAC_PATTERN

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
IPV6_RE = rf"(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}(?:[0-9A-Fa-f]{{0,4}}|{IPV4_RE})"
_P4 = r"/(?:3[0-2]|[12]?[0-9])"
_P6 = r"/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])"


# Interface names aios manages: 1-15 of ASCII letters, digits, '_', '.', '-', not
# starting with '-', not "." or ".." (contract.vocab.netvalues: the rule the spec
# validator and the net drivers apply too, and why).
IFNAME: JSON = {
    "type": "string",
    "pattern": anchored(IFNAME_PATTERN),
    "description": "Interface name: 1-15 of ASCII letters, digits, '_', '.', '-', not "
    "starting with '-', not '.' or '..' (no whitespace, quotes, '#', '\\', '/', ':', '%', "
    "'@' or control characters).",
}
# What Linux itself allows (dev_valid_name), for names the tools report but never write.
OBSERVED_IFNAME: JSON = {
    "type": "string",
    "pattern": anchored(r"(?!\.\.?$)[^/:\s]{1,15}"),
    "description": "Interface name as the kernel has it: 1-15 characters other than '/', "
    "':' and whitespace. Links whose names IFNAME refuses can be read, never written.",
}
MAC: JSON = {
    "type": "string",
    "pattern": anchored(MAC_PATTERN),  # contract.vocab.netvalues: the tools' check too
    "description": "Ethernet address, e.g. 02:00:5e:00:00:01 (reported lowercase).",
}
IP: JSON = {
    "type": "string",
    "pattern": anchored(rf"{IPV4_RE}|{IPV6_RE}"),
    "description": "An IPv4 or IPv6 address without prefix length.",
}
IP_PREFIX: JSON = {
    "type": "string",
    "pattern": anchored(rf"{IPV4_RE}{_P4}|{IPV6_RE}{_P6}"),
    "description": "Interface address with prefix length, e.g. 10.0.0.1/24 or 2001:db8::1/64.",
}
ROUTE_DEST: JSON = {
    "type": "string",
    "pattern": anchored(rf"default|{IPV4_RE}(?:{_P4})?|{IPV6_RE}(?:{_P6})?"),
    "description": "Destination network (host bits zero), a bare address (a host route) "
    "or 'default'.",
}
ADDR_OR_NET: JSON = {
    "type": "string",
    "pattern": anchored(rf"{IPV4_RE}(?:{_P4})?|{IPV6_RE}(?:{_P6})?"),
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
    "pattern": anchored(r"[a-z0-9][a-z0-9_.-]{0,31}"),
    "description": "Route protocol, e.g. static or boot (ip's default) or a number.",
}
ADMIN_STATE: JSON = {
    "enum": ["up", "down"],
    "description": "The admin flag (IFF_UP), not the carrier/operstate.",
}
NULLABLE_IFNAME: JSON = {"oneOf": [IFNAME, {"type": "null"}]}
ABS_PATH: JSON = {
    "type": "string",
    "pattern": anchored(r"/(?:[^/\x00\n]+(?:/[^/\x00\n]+)*)?"),
    "maxLength": 4095,
    "description": "Absolute path on the target (mapped under the registry's --root).",
}
_DOMAIN_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
DOMAIN: JSON = {
    "type": "string",
    "maxLength": 253,
    "pattern": anchored(rf"{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*\.?"),
}
SYSCTL_KEY: JSON = {
    "type": "string",
    "maxLength": 200,
    "pattern": anchored(r"net(?:\.[A-Za-z0-9_@-]+)+"),
    "description": "A net.* sysctl key in dotted form (net.ipv4.ip_forward); any other "
    "tree is refused. Interface names containing '.' cannot be addressed.",
}
SYSCTL_VALUE: JSON = {
    "oneOf": [
        {"type": "integer"},
        {"type": "boolean"},
        {"type": "string", "maxLength": 255, "pattern": anchored(r"[\t -~]*")},
    ],
    "description": "A number, a boolean (written 1/0) or a one-line string of printable "
    "ASCII; spaces or tabs separate the fields of the multi-value keys (net.ipv4.tcp_rmem "
    "takes 3, ip_local_port_range 2, ...); every other key takes one field.",
}
# Files dns_set may rewrite whole (contract.vocab.netvalues.RESOLVER_FILES is the same rule per
# resolver: resolv.conf or a namespace's resolv.conf, unbound drop-ins).
_FILE_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
RESOLVER_FILE: JSON = {
    "type": "string",
    "pattern": anchored(
        rf"/etc/resolv\.conf|/etc/netns/{_FILE_PART}/resolv\.conf"
        rf"|/etc/unbound/unbound\.conf\.d/{_FILE_PART}\.conf"
    ),
    "description": "A resolver file: /etc/resolv.conf or /etc/netns/NAME/resolv.conf "
    "(resolvconf), /etc/unbound/unbound.conf.d/NAME.conf (unbound).",
}

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
                "pattern": anchored(FWMARK_PATTERN),  # contract.vocab.netvalues
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
                "items": {
                    "type": "string",
                    "pattern": anchored(r"[a-z][a-z0-9_-]*(?::[0-9]{1,4})?"),
                },
            },
            "path": {
                **RESOLVER_FILE,
                "description": "File to manage (rewritten whole); default /etc/resolv.conf, "
                "or /etc/unbound/unbound.conf.d/aios-forward.conf for unbound. Only resolver "
                "files: /etc/resolv.conf or /etc/netns/NAME/resolv.conf for resolvconf, "
                "/etc/unbound/unbound.conf.d/NAME.conf for unbound.",
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
    "under --root; idempotent. resolv.conf honours at most 3 nameservers. The path must be "
    "a resolver file of the chosen resolver.",
}
