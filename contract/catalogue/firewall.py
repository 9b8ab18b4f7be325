"""The `firewall` tool catalogue as data: schemas of structured nft tables and the ToolSpecs.

A Table is structured data — family, name, named sets, chains with their
hook, priority, policy and rules — which the tools render to nft text
themselves (registry.drivers.nft.ruleset); callers never send raw nft scripts, so nothing
outside the declared tables can be touched. Rule strings are single nft
statements, re-checked by the tools with contract.vocab.nft.check_rule_text.
aiOS's `firewall.rules`, `firewall.add_rule` and `firewall.delete_rule` keep
aiOS's inputs and outputs (contract §3.2). Every ToolSpec is made by
contract.tooldef.define with schemas tagged as documents. Read by
registry.handlers.firewall and contract.catalogue (ALL); no controller
imports it (the engine stamps each step's risk from the live catalogue).
"""

from __future__ import annotations

from contract.catalogue.netschema import IFNAME
from contract.catalogue.parts import anchored, document
from contract.tooldef import JSON, ToolSpec, define, obj_schema
from contract.vocab import nft

# The words, the identifier rule and the priority names are contract.vocab.nft's (the
# spec validator's too).
FAMILIES = list(nft.FAMILIES)
HOOKS = list(nft.HOOKS)
SET_TYPES = list(nft.SET_TYPES)
SET_FLAGS = list(nft.SET_FLAGS)
NFT_IDENT_RE = anchored(nft.NFT_IDENT_PATTERN)

IDENT: JSON = {
    "type": "string",
    "pattern": NFT_IDENT_RE,
    "description": "nft identifier: a letter, then letters, digits, '_', '.', '-' (<= 64).",
}
FAMILY: JSON = {"enum": FAMILIES, "default": "inet"}
TABLE_REF = obj_schema({"family": FAMILY, "name": IDENT}, ["name"])
RULE: JSON = {
    "type": "string",
    "minLength": 1,
    "maxLength": 4096,
    "pattern": anchored(r"[^\x00-\x1f\x7f]+"),
    "description": "One nft statement, e.g. 'tcp dport 22 accept'; no ';' or '#' outside "
    "quotes, balanced brackets and quotes, not an nft command, no control characters.",
}
PRIORITY: JSON = {
    "oneOf": [
        {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
        {
            "type": "string",
            "pattern": anchored(nft.PRIORITY_PATTERN),
        },
    ],
    "description": "A number or a standard name with an optional offset ('filter + 10').",
}
SET: JSON = obj_schema(
    {
        "name": IDENT,
        "type": {"enum": SET_TYPES},
        "flags": {"type": "array", "items": {"enum": SET_FLAGS}, "uniqueItems": True},
        "elements": {
            "type": "array",
            "items": {
                "oneOf": [
                    {"type": "integer", "minimum": 0, "maximum": 4294967295},
                    {"type": "string", "pattern": anchored(r"[A-Za-z0-9_.:/\-*]{1,64}")},
                ]
            },
            "description": "Addresses, networks (flags interval), ports, ranges '80-90', "
            "MACs, protocols, marks or interface names (quoted by the renderer; a trailing "
            "'*' matches a prefix), each checked against the set's type.",
        },
        "comment": {
            "type": "string",
            "pattern": anchored(r"[ !#-\[\]-~]{0,128}"),
            "description": "Printable ASCII without '\"' or '\\' (rendered inside \"...\").",
        },
    },
    ["name", "type"],
)
CHAIN: JSON = {
    **obj_schema(
        {
            "name": IDENT,
            "type": {"enum": ["filter", "nat", "route"]},
            "hook": {"enum": HOOKS},
            "priority": PRIORITY,
            "policy": {"enum": ["accept", "drop"]},
            "device": {
                **IFNAME,
                "description": "Device of a netdev (or inet ingress) base chain: "
                + IFNAME["description"],
            },
            "rules": {"type": "array", "items": RULE, "maxItems": 100000},
        },
        ["name"],
    ),
    "if": {"required": ["hook"]},
    "then": {"required": ["type", "priority"]},
    "else": {
        "not": {
            "anyOf": [
                {"required": ["type"]},
                {"required": ["priority"]},
                {"required": ["policy"]},
                {"required": ["device"]},
            ]
        }
    },
    "description": "A base chain (with hook, type and priority) or a regular chain.",
}
TABLE: JSON = obj_schema(
    {
        "family": FAMILY,
        "name": IDENT,
        "sets": {"type": "array", "items": SET},
        "chains": {"type": "array", "items": CHAIN},
    },
    ["name"],
)
HANDLE: JSON = {"type": "integer", "minimum": 1, "maximum": 18446744073709551615}
PATCH_OP: JSON = {
    "oneOf": [
        obj_schema(
            {"op": {"const": "delete"}, "chain": IDENT, "handle": HANDLE},
            ["op", "chain", "handle"],
        ),
        obj_schema(
            {"op": {"enum": ["insert", "add"]}, "chain": IDENT, "handle": HANDLE, "rule": RULE},
            ["op", "chain", "rule"],
        ),
    ],
    "description": "delete: the rule with this handle; insert: the rule before the rule with "
    "this handle (none: first in the chain); add: after it (none: last).",
}
PATCH: JSON = obj_schema(
    {
        "family": FAMILY,
        "name": IDENT,
        "expect": {
            "type": "string",
            "pattern": anchored(r"[0-9a-f]{64}"),
            "description": "sha256 of the table's text as firewall.ruleset returns it "
            "(handles and counter values removed) when the patch was planned.",
        },
        "ops": {"type": "array", "items": PATCH_OP, "minItems": 1, "maxItems": 100000},
    },
    ["name", "expect", "ops"],
)
TABLES_IN: JSON = {
    **obj_schema(
        {
            "tables": {
                "type": "array",
                "items": TABLE,
                "description": "Tables to replace whole (created when absent).",
            },
            "patch": {
                "type": "array",
                "items": PATCH,
                "description": "Tables to patch rule by rule, by handle, when their text is "
                "still `expect`; every handle an op names must still exist, or the whole "
                "transaction is refused.",
            },
            "delete": {
                "type": "array",
                "items": TABLE_REF,
                "description": "Tables to delete (absent ones are fine).",
            },
        }
    ),
    "anyOf": [{"required": ["tables"]}, {"required": ["patch"]}, {"required": ["delete"]}],
}
_TABLE_COUNT = obj_schema(
    {"family": FAMILY, "name": IDENT, "rules": {"type": "integer"}}, ["family", "name", "rules"]
)


FW_READ = ("firewall_read",)
FW_WRITE = ("firewall_manage",)


FIREWALL_RULES = define(
    "firewall.rules",
    "aiOS's rule list from `nft list ruleset`: every line of every chain except type/policy "
    "lines; chain is the bare name (no table or family); action is the first of accept, "
    "drop, reject, log found in the rule text, else other.",
    document(obj_schema({})),
    document(
        obj_schema(
            {
                "rules": {
                    "type": "array",
                    "items": obj_schema(
                        {
                            "chain": {"type": "string"},
                            "rule": {"type": "string"},
                            "action": {"enum": ["accept", "drop", "reject", "log", "other"]},
                        },
                        ["chain", "rule", "action"],
                    ),
                }
            },
            ["rules"],
        )
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=5000,
    capabilities=FW_READ,
)
FIREWALL_ADD_RULE = define(
    "firewall.add_rule",
    "aiOS's append: `nft add rule inet filter <chain> '<rule> <action>'`. The joined text "
    "is checked as one nft statement first. Not idempotent (re-running adds a copy); "
    "reversible here (snapshot of table inet filter), unlike on aiOS.",
    document(
        obj_schema(
            {
                "chain": IDENT,
                "rule": {"type": "string", "minLength": 1, "maxLength": 4000},
                "action": {"type": "string", "maxLength": 64},
            },
            ["chain", "rule", "action"],
        )
    ),
    document(obj_schema({"added": {"const": True}}, ["added"])),
    risk="critical",
    idempotent=False,
    reversible=True,
    timeout_ms=10000,
    capabilities=FW_WRITE,
)
FIREWALL_DELETE_RULE = define(
    "firewall.delete_rule",
    "aiOS's delete by 0-based index within chain <chain> of table inet filter (by handle). "
    "Reversible here (snapshot of table inet filter).",
    document(
        obj_schema(
            {"chain": IDENT, "index": {"type": "integer", "minimum": 0, "maximum": 4294967295}},
            ["chain", "index"],
        )
    ),
    document(obj_schema({"deleted": {"const": True}}, ["deleted"])),
    risk="critical",
    idempotent=False,
    reversible=True,
    timeout_ms=10000,
    capabilities=FW_WRITE,
)
FIREWALL_APPLY = define(
    "firewall.apply",
    "Replace the given tables whole, patch the given ones rule by rule (by handle, only "
    "while their text is the expected one) and delete the listed ones in ONE `nft -f` "
    "transaction (atomic: any error changes nothing). Idempotent for tables and deletes; "
    "a patch applies once (its handles are gone afterwards). Rollback puts the previous "
    "tables back.",
    document(TABLES_IN),
    document(
        obj_schema(
            {
                "applied": {"type": "array", "items": _TABLE_COUNT},
                "deleted": {"type": "array", "items": TABLE_REF},
                "patched": {
                    "type": "array",
                    "items": obj_schema(
                        {
                            "family": FAMILY,
                            "name": IDENT,
                            "ops": {"type": "integer"},
                            "predicted": {
                                "type": "boolean",
                                "description": "the listing after the commit is known without "
                                "listing again (it was the one commit since the checked one)",
                            },
                        },
                        ["family", "name", "ops", "predicted"],
                    ),
                },
            },
            ["applied", "deleted"],
        )
    ),
    risk="high",
    idempotent=True,
    reversible=True,
    timeout_ms=30000,
    capabilities=FW_WRITE,
)
FIREWALL_CHECK = define(
    "firewall.check",
    "Check what firewall.apply would load with `nft -c` in the target namespace; an error "
    "names the table, chain and rule it came from.",
    document(TABLES_IN),
    document(obj_schema({"ok": {"const": True}}, ["ok"])),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=30000,
    capabilities=FW_READ,
)
FIREWALL_RULESET = define(
    "firewall.ruleset",
    "The given tables (omitted: all) as canonical text — `nft list table` without handles, "
    "counter values removed — or as nft JSON objects. `handles: true` (text only) adds each "
    "chain's rule handles in listing order (what firewall.apply's patch names).",
    document(
        obj_schema(
            {
                "tables": {"type": "array", "items": TABLE_REF},
                "format": {"enum": ["text", "json"], "default": "text"},
                "handles": {"type": "boolean", "default": False},
            }
        )
    ),
    document(
        obj_schema(
            {
                "tables": {
                    "type": "array",
                    "items": obj_schema(
                        {
                            "family": FAMILY,
                            "name": {"type": "string"},
                            "exists": {"type": "boolean"},
                            "text": {"type": "string"},
                            "json": {"type": "array", "items": {"type": "object"}},
                            "handles": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "string",
                                    "pattern": anchored(r"(?:[0-9]+(?: [0-9]+)*)?"),
                                },
                                "description": "per chain, its rule handles in listing "
                                "order, space-separated (one string: cheap at 10,000 rules)",
                            },
                        },
                        ["family", "name", "exists"],
                    ),
                }
            },
            ["tables"],
        )
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=30000,
    capabilities=FW_READ,
)
FIREWALL_CANONICALIZE = define(
    "firewall.canonicalize",
    "What firewall.ruleset would return after firewall.apply of these tables, computed by "
    "loading them into a throwaway network namespace (nothing of the target is touched).",
    document(obj_schema({"tables": {"type": "array", "items": TABLE, "minItems": 1}}, ["tables"])),
    document(
        obj_schema(
            {
                "tables": {
                    "type": "array",
                    "items": obj_schema(
                        {"family": FAMILY, "name": IDENT, "text": {"type": "string"}},
                        ["family", "name", "text"],
                    ),
                }
            },
            ["tables"],
        )
    ),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=30000,
    capabilities=FW_READ,
)

ALL: tuple[ToolSpec, ...] = (
    FIREWALL_RULES,
    FIREWALL_ADD_RULE,
    FIREWALL_DELETE_RULE,
    FIREWALL_APPLY,
    FIREWALL_CHECK,
    FIREWALL_RULESET,
    FIREWALL_CANONICALIZE,
)
