"""nftables words and checks both sides of the wire apply, written once.

The spec language (specs.firewall, specs.types) validates Firewall specs with
these, and the registry's nft driver (registry.drivers.nft.ruleset) re-checks
every firewall tool input with the same functions before any text reaches nft:

- the words of a table: `FAMILIES`, `HOOKS`, `CHAIN_TYPES`, `POLICIES`,
  `SET_TYPES`, `SET_FLAGS` (what the firewall tools take) and
  `DECLARABLE_SET_FLAGS` (what a spec may say: not `dynamic` — a dynamic set is
  filled by rules at run time, so its elements cannot be declared; the spec
  language has never accepted it);
- nft identifiers (`NFT_IDENT_PATTERN`, `is_nft_ident`): table, chain and set
  names, a letter then letters, digits, '_', '.', '-', at most 64;
- chain priorities by name (`PRIORITY_NAMES`, `DECLARABLE_PRIORITY_NAMES`,
  `named_priority`): the standard names with an optional offset
  ('filter + 10'); the tools and the spec language differ on purpose, see
  there;
- rule text (`check_rule_text`): one statement on one line that cannot escape
  its chain, with the fast path for the common case (`_SIMPLE_RULE`: no quotes,
  brackets, ';', '#' or control characters) that 10,000-rule chains go through;
- comments (`check_comment`) and set elements (`check_element`), which are
  spliced into nft text.

Each check raises ValueError with a short message; the spec loader prefixes it
with file:line, the registry turns it into a ToolError naming the field.
Plain `re` and `ipaddress`, no pydantic.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, TypeGuard

from contract.vocab.netvalues import (
    IFNAME_CHARS,
    MARK_PATTERN,
    canonical_mac,
    canonical_port_range,
)

FAMILIES: Final[tuple[str, ...]] = ("inet", "ip", "ip6", "arp", "bridge", "netdev")
HOOKS: Final[tuple[str, ...]] = (
    "prerouting",
    "input",
    "forward",
    "output",
    "postrouting",
    "ingress",
    "egress",
)
CHAIN_TYPES: Final[tuple[str, ...]] = ("filter", "nat", "route")
POLICIES: Final[tuple[str, ...]] = ("accept", "drop")
SET_TYPES: Final[tuple[str, ...]] = (
    "ipv4_addr",
    "ipv6_addr",
    "ether_addr",
    "inet_proto",
    "inet_service",
    "mark",
    "ifname",
)
SET_FLAGS: Final[tuple[str, ...]] = ("constant", "interval", "timeout", "dynamic")
DECLARABLE_SET_FLAGS: Final[tuple[str, ...]] = ("constant", "interval", "timeout")

# --- identifiers -------------------------------------------------------------

NFT_IDENT_PATTERN: Final = r"[A-Za-z][A-Za-z0-9_.\-]{0,63}"
NFT_IDENT_RE: Final = re.compile(NFT_IDENT_PATTERN)  # used with fullmatch


def is_nft_ident(value: object) -> TypeGuard[str]:
    """Whether `value` is an nft identifier aios writes (table, chain or set name)."""
    return isinstance(value, str) and NFT_IDENT_RE.fullmatch(value) is not None


# --- chain priorities --------------------------------------------------------
#
# A base chain's priority is a number or one of nft's standard names with an optional
# offset ('filter + 10'). The firewall tools take every name in PRIORITY_NAMES; the
# spec language has never taken `out` (nft's name for priority 100 in the bridge
# family only, where `filter` and the others mean other numbers), so a Firewall spec
# names the number instead. Spacing differs too: a spec is typed by people, so any
# whitespace around the sign is accepted (and written back as one space each side);
# a tool input is machine-made and may hold plain spaces only. Both write the same
# normal form, which nft prints back. Offsets are 1-4 ASCII digits.
PRIORITY_NAMES: Final[tuple[str, ...]] = (
    "raw",
    "mangle",
    "dstnat",
    "filter",
    "security",
    "srcnat",
    "out",
)
DECLARABLE_PRIORITY_NAMES: Final = tuple(n for n in PRIORITY_NAMES if n != "out")


def _priority_pattern(names: tuple[str, ...], space: str) -> str:
    return rf"(?:{'|'.join(names)})(?:{space}[-+]{space}[0-9]{{1,4}})?"


# The tools' rule (also contract.catalogue.firewall's schema pattern) and the spec's.
PRIORITY_PATTERN: Final = _priority_pattern(PRIORITY_NAMES, " *")
DECLARABLE_PRIORITY_PATTERN: Final = _priority_pattern(DECLARABLE_PRIORITY_NAMES, r"\s*")
_PRIORITY_RE = re.compile(PRIORITY_PATTERN)
_DECLARABLE_PRIORITY_RE = re.compile(DECLARABLE_PRIORITY_PATTERN)
_SIGN = re.compile(r"\s*([-+])\s*")


def named_priority(value: str, *, declared: bool = False) -> str | None:
    """`value` as a named priority in normal form ('filter + 10'), or None if it is not one.

    declared=False: the tools' rule (spaces only, trimmed of spaces); declared=True:
    the spec language's (any whitespace, trimmed; no `out`)."""
    text = value.strip() if declared else value.strip(" ")
    rule = _DECLARABLE_PRIORITY_RE if declared else _PRIORITY_RE
    if rule.fullmatch(text) is None:
        return None
    return _SIGN.sub(r" \1 ", text)


# --- rule text ---------------------------------------------------------------

MAX_RULE_LENGTH: Final = 4096
COMMAND_START: Final = re.compile(
    r"^(add|create|delete|destroy|flush|insert|replace|reset|list|include|define|redefine|"
    r"undefine|table|chain|rename|monitor|export|import|describe)\b"
)
# The fast path: no quotes, brackets, ';', '#' or control characters. Module-level so
# tests can switch it off and compare with the full check (it must agree).
_SIMPLE_RULE = re.compile(r"[\w .,:/@$*!=<>&|^~+-]+", re.ASCII)  # used with fullmatch


def check_rule_text(value: str) -> str:
    """One nft rule statement on one line, that cannot escape its chain; returned stripped."""
    if len(value) <= MAX_RULE_LENGTH and _SIMPLE_RULE.fullmatch(value):
        # fast path (10,000-rule chains): no quotes, brackets, ';', '#' or control characters
        stripped = value.strip()
        if stripped and not COMMAND_START.match(stripped):
            return stripped
    if not value.strip():
        raise ValueError("rule is empty")
    if len(value) > MAX_RULE_LENGTH:
        raise ValueError(f"rule is longer than {MAX_RULE_LENGTH} characters")
    if not value.isprintable() or "\n" in value or "\r" in value:
        raise ValueError("rule must be one line of printable characters")
    depth = {"{": 0, "[": 0, "(": 0}
    closing = {"}": "{", "]": "[", ")": "("}
    in_quote = False
    for ch in value:
        if ch == '"':
            in_quote = not in_quote
        elif in_quote:
            continue
        elif ch in ";#":
            raise ValueError(f"rule may not contain {ch!r} outside a quoted string")
        elif ch in depth:
            depth[ch] += 1
        elif ch in closing:
            depth[closing[ch]] -= 1
            if depth[closing[ch]] < 0:
                raise ValueError(f"rule has an unbalanced {ch!r}")
    if in_quote:
        raise ValueError("rule has an unterminated quoted string")
    if any(depth.values()):
        raise ValueError("rule has unbalanced brackets")
    if COMMAND_START.match(value.strip()):
        raise ValueError("rule must be a statement, not an nft command")
    return value.strip()


# --- comments and set elements -----------------------------------------------


def check_comment(value: str) -> str:
    """An nft comment: rendered inside "...", which ends at the next '"' (nft has no
    escapes), so no '"', no backslash and nothing but printable ASCII."""
    if len(value) > 128:
        raise ValueError("comment is longer than 128 characters")
    if not value.isascii() or not value.isprintable() or '"' in value or "\\" in value:
        raise ValueError(f"comment {value!r} may hold printable ASCII only, without '\"' or '\\'")
    return value


# An ifname set element: an interface name (contract.vocab.netvalues), or a prefix
# ending in '*'.
_IFNAME_ELEMENT = re.compile(rf"(?!-)[{IFNAME_CHARS}]{{1,15}}|(?!-)[{IFNAME_CHARS}]{{0,14}}\*")
_MARK = re.compile(MARK_PATTERN)  # used with fullmatch
_PROTOCOLS = ("tcp", "udp", "icmp", "icmpv6", "sctp", "esp", "ah", "gre")


def check_element(set_type: str, element: str | int, *, interval: bool) -> None:
    """A set element of `set_type`, or ValueError saying why not. Elements are spliced
    into nft text (ifnames inside "..."), so each type admits only its own syntax."""
    text = str(element)
    if isinstance(element, bool) or not text.isascii() or not text.isprintable():
        raise ValueError(f"element {text!r} is not printable ASCII")
    if set_type in ("ipv4_addr", "ipv6_addr"):
        _check_address_element(text, 4 if set_type == "ipv4_addr" else 6, interval=interval)
    elif set_type == "inet_service":
        canonical = canonical_port_range(int(text) if text.isdigit() else text)
        if "-" in canonical and not interval:
            raise ValueError(f"element {text!r} is a range: the set needs flags [interval]")
    elif set_type == "ether_addr":
        canonical_mac(text)
    elif set_type == "inet_proto":
        if text not in _PROTOCOLS and not (text.isdigit() and 0 <= int(text) <= 255):
            raise ValueError(f"element {text!r} is not a protocol")
    elif set_type == "mark":
        if not _MARK.fullmatch(text):
            raise ValueError(f"element {text!r} is not a mark")
    elif set_type == "ifname" and not _IFNAME_ELEMENT.fullmatch(text):
        raise ValueError(
            f"element {text!r} is not an interface name (letters, digits, '_', '.', '-'; "
            "a trailing '*' matches a prefix)"
        )
    elif set_type not in SET_TYPES:
        raise ValueError(f"unknown set type {set_type!r}")


def _check_address_element(text: str, version: int, *, interval: bool) -> None:
    if "%" in text:  # ipaddress would take any text after '%' as a scope id
        raise ValueError(f"element {text!r} may not carry a scope id ('%...')")
    try:
        addr: (
            ipaddress.IPv4Network
            | ipaddress.IPv6Network
            | ipaddress.IPv4Address
            | ipaddress.IPv6Address
        )
        if "/" in text:
            addr = ipaddress.ip_network(text, strict=True)
        else:
            addr = ipaddress.ip_address(text)
    except ValueError as exc:
        raise ValueError(f"element {text!r}: {exc}") from None
    if addr.version != version:
        raise ValueError(f"element {text!r} is not an IPv{version} address")
    if "/" in text and not interval:
        raise ValueError(f"element {text!r} is a network: the set needs flags [interval]")
