"""JSON Schemas of link inputs: link_add (kinds and their option blocks), link_set, link_delete.

Kind-specific options are nested objects named after the kind, mirroring
specs.network (`veth: {peer}`, `macvlan: {parent, mode}`, `vxlan: {...}`,
`vlan`, `bond`, `bridge`, `tun` for tun and tap, `wireguard`); if/then clauses
allow a block only with its kind and require it where the kind needs one.
Which kinds exist, which can be created and which need a block are
contract.vocab.links' (`kinds` below); this module only writes them as JSON
Schema. Used by contract.catalogue.net (link_add/link_set/link_delete inputs).
"""

from __future__ import annotations

from contract.catalogue.netschema import (
    ABS_PATH,
    ADDR_OR_NET,
    ADMIN_STATE,
    IFNAME,
    IP,
    MAC,
    MTU,
    NULLABLE_IFNAME,
)
from contract.catalogue.parts import anchored
from contract.tooldef import JSON, obj_schema
from contract.vocab import links as kinds
from contract.vocab.netvalues import DNS_NAME_PATTERN, WG_KEY_PATTERN

# The kind lists and mode words are contract.vocab.links' (one table for the
# registry, the spec language and the controller); the schemas enumerate them.
PORT: JSON = {"type": "integer", "minimum": 1, "maximum": 65535}
# Coarser than contract.vocab.netvalues.check_endpoint (IPv6 and the port range),
# which the tools apply as well; the DNS name rule is the same.
ENDPOINT: JSON = {
    "type": "string",
    "maxLength": 261,
    "pattern": anchored(rf"(?:{DNS_NAME_PATTERN}|\[[0-9A-Fa-f:.]+\]):[0-9]{{1,5}}"),
    "description": "host:port: a DNS name, an IPv4 address or [IPv6 address], port 1-65535.",
}
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
        {"parent": IFNAME, "mode": {"enum": list(kinds.MACVLAN_MODES), "default": "bridge"}},
        ["parent"],
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
            "mode": {"enum": list(kinds.BOND_MODES), "default": "active-backup"},
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
                            "pattern": anchored(WG_KEY_PATTERN),
                        },
                        "endpoint": ENDPOINT,
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
    for block, owners in kinds.BLOCK_KINDS.items():
        rules.append(
            {"if": {"required": [block]}, "then": {"properties": {"kind": {"enum": list(owners)}}}}
        )
    for kind, block in kinds.REQUIRED_BLOCK.items():
        rules.append(
            {"if": {"properties": {"kind": {"const": kind}}}, "then": {"required": [block]}}
        )
    return rules


LINK_ADD: JSON = {
    **obj_schema(
        {
            "name": IFNAME,
            "kind": {
                "enum": list(kinds.CREATABLE_KINDS),
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
                "description": "New address (ifb links cannot change theirs after creation).",
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
