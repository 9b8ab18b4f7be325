"""Network value rules both sides of the wire apply, written once.

The spec language (specs.types, specs.network, specs.firewall) validates with
these, and the registry's net and nft drivers re-check every tool input with
the same functions (registry.drivers.net.commands, registry.drivers.net.system,
registry.drivers.nft.ruleset), so a value the validator accepts is one the
registry accepts and the other way round. Each layer words its own errors
around them (a spec error carries file:line, a tool error the field name).

- Interface names (`IFNAME_CHARS`, `IFNAME_RE`, `is_ifname`): Linux
  (dev_valid_name) takes 1-15 bytes other than '/', ':' and whitespace, and
  not "." or "..". aios takes less: ASCII letters, digits, '_', '.' and '-',
  not starting with '-'. A name reaches `ip -batch` lines (whose parser splits
  words at whitespace and at a leading '"' or "'", cuts the line at '#' and
  joins the next line after a '\\'), nft scripts (inside "..."), sysctl paths
  and `wg` argv; anything outside this set could change the words of a
  command, and a leading '-' reads as an option. '@' (ip prints a veth as
  `name@peer`) and '%' (IPv6 scope ids) are left out for the same reason: the
  name would not read back as itself. contract.catalogue.netschema's IFNAME
  JSON Schema pattern is built from `IFNAME_PATTERN`.
- WireGuard endpoints (`check_endpoint`, hosts by `DNS_NAME_PATTERN`).
- net.* sysctls: the key rule (`is_sysctl_key`), the value text rule
  (`is_sysctl_text`) and how many fields a key takes (`SYSCTL_FIELDS`,
  `sysctl_fields_problem`).
- Resolver files net.dns_set may rewrite whole (`RESOLVER_FILES`,
  `resolver_path_problem`).
- Ports and port ranges (`canonical_port_range`) and MAC addresses
  (`MAC_PATTERN`, `is_mac`, `canonical_mac`), which nft set elements use too
  (contract.vocab.nft).
- Packet marks (`MARK_PATTERN`: one 32-bit mark, which nft's `mark` set
  elements take) and policy-rule fwmarks (`FWMARK_PATTERN`, `canonical_fwmark`:
  a mark or `mark/mask`, written as hex).
- WireGuard public keys (`WG_KEY_PATTERN`, `is_wg_key`).

The `*_PATTERN` strings are bodies without anchors: the tool schemas
(contract.catalogue.netschema, .links) wrap them with parts.anchored, the spec
models with `^...$`, and the checks here compile them for fullmatch.

Every pattern is applied with fullmatch: `re.match(r"...$")` also accepts a
trailing newline ('$' matches before a final '\\n'). Plain `re` and
`ipaddress`, no pydantic, so `aios validate` and the registry stay cheap to import.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final, TypeGuard

# --- interface names ---------------------------------------------------------

IFNAME_CHARS: Final = "A-Za-z0-9_.-"
IFNAME_PATTERN: Final = rf"(?!\.\.?$)(?!-)[{IFNAME_CHARS}]{{1,15}}"
IFNAME_RE: Final = re.compile(IFNAME_PATTERN)  # used with fullmatch


def is_ifname(value: object) -> TypeGuard[str]:
    """Whether `value` is an interface name aios can manage (see the module docstring)."""
    return isinstance(value, str) and IFNAME_RE.fullmatch(value) is not None


# --- WireGuard endpoints -----------------------------------------------------

# A DNS name: labels of letters, digits and '-' (not at either end), at most 63 each,
# an optional final '.'. contract.catalogue.links' endpoint schema is built from it.
HOST_LABEL_PATTERN: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS_NAME_PATTERN: Final = rf"{HOST_LABEL_PATTERN}(?:\.{HOST_LABEL_PATTERN})*\.?"
_ENDPOINT_HOST = re.compile(DNS_NAME_PATTERN)  # used with fullmatch


def check_endpoint(value: str) -> str:
    """A WireGuard endpoint: `host:port`, host a DNS name, an IPv4 address or `[IPv6]`.

    It reaches `wg set ... endpoint VALUE` (argv); this keeps it to what wg parses as
    one host and one port. ValueError says why not.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"endpoint {value!r} must be host:port with a port 1-65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"endpoint {value!r}: {host} is not an IPv6 address") from None
    elif len(host) > 253 or not _ENDPOINT_HOST.fullmatch(host):
        raise ValueError(
            f"endpoint {value!r}: host must be a DNS name, an IPv4 address or [IPv6 address]"
        )
    return value


# --- net.* sysctls -----------------------------------------------------------

SYSCTL_KEY_RE: Final = re.compile(r"net(\.[A-Za-z0-9_@-]+)+")  # used with fullmatch
SYSCTL_KEY_MAX: Final = 200


def is_sysctl_key(key: object) -> TypeGuard[str]:
    """Whether `key` is a net.* sysctl key in dotted form (net.ipv4.ip_forward)."""
    return (
        isinstance(key, str) and bool(SYSCTL_KEY_RE.fullmatch(key)) and len(key) <= SYSCTL_KEY_MAX
    )


def is_sysctl_text(value: object) -> TypeGuard[str]:
    """Whether `value` is a sysctl value string: one short line of printable ASCII
    (tabs allowed: they separate the fields of the multi-value keys)."""
    return (
        isinstance(value, str)
        and len(value) < 256
        and value.isascii()
        and value.replace("\t", " ").isprintable()
    )


# net.* keys whose value has several fields (the kernel prints them tab-separated);
# None: any number of names. Every other key takes ONE field: the kernel keeps the
# first of "1 0", reads back "1", and the value would never match (ResidualDrift).
SYSCTL_FIELDS: Final[dict[str, int | None]] = {
    "net.ipv4.tcp_rmem": 3,
    "net.ipv4.tcp_wmem": 3,
    "net.ipv4.tcp_mem": 3,
    "net.ipv4.udp_mem": 3,
    "net.ipv4.ip_local_port_range": 2,
    "net.ipv4.ping_group_range": 2,
    "net.sctp.sctp_mem": 3,
    "net.sctp.sctp_rmem": 3,
    "net.sctp.sctp_wmem": 3,
    "net.ipv4.tcp_allowed_congestion_control": None,
}


def sysctl_fields_problem(key: str, value: str) -> str | None:
    """Why `value` can never read back as itself for `key`, or None."""
    fields = value.split()
    if not fields:
        return f"{key} needs a value"
    want = SYSCTL_FIELDS.get(key, 1)
    if want is None or len(fields) == want:
        return None
    if want == 1:
        return (
            f"{key} takes one value, not {len(fields)} ({value!r}): the kernel would keep "
            "the first and the value would never match"
        )
    return f"{key} takes {want} fields separated by spaces, not {len(fields)} ({value!r})"


# --- resolver files ----------------------------------------------------------
#
# Resolver files net.dns_set may manage (whole-file rewrites): resolv.conf, a network
# namespace's resolv.conf (`ip netns exec` binds /etc/netns/NAME/resolv.conf over it)
# and unbound drop-ins. Nothing else: the file is replaced whole, at medium risk.
# systemd-resolved's files under /run/systemd/resolve are resolved's own (it rewrites
# them); configure resolved itself instead.

RESOLV_CONF: Final = "/etc/resolv.conf"
UNBOUND_FORWARD: Final = "/etc/unbound/unbound.conf.d/aios-forward.conf"
_FILE_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"
RESOLVER_FILES: Final = {
    "resolvconf": re.compile(rf"/etc/resolv\.conf|/etc/netns/{_FILE_PART}/resolv\.conf"),
    "unbound": re.compile(rf"/etc/unbound/unbound\.conf\.d/{_FILE_PART}\.conf"),
}
RESOLVER_FILE_HELP: Final = {
    "resolvconf": "/etc/resolv.conf or /etc/netns/NAME/resolv.conf",
    "unbound": "a file /etc/unbound/unbound.conf.d/NAME.conf",
}


def resolver_path_problem(resolver: str, path: str) -> str | None:
    """Why `path` is not a file the `resolver` may manage, or None."""
    pattern = RESOLVER_FILES.get(resolver)
    if pattern is None:
        return f"unknown resolver {resolver!r}"
    if pattern.fullmatch(path):
        return None
    return (
        f"{path!r} is not a resolver file for {resolver}: the whole file is rewritten, so "
        f"only {RESOLVER_FILE_HELP[resolver]} may be managed"
    )


# --- ports, MAC addresses ----------------------------------------------------

_PORT_RANGE = re.compile(r"\d{1,5}(-\d{1,5})?")


def canonical_port_range(value: object) -> str:
    """A port (22) or a range ("8000-8080") as a string ("22", "8000-8080"); ValueError."""
    if isinstance(value, bool):
        raise ValueError("port must be a number or a range like '8000-8080'")
    if isinstance(value, int):
        lo = hi = value
    elif isinstance(value, str) and _PORT_RANGE.fullmatch(value):
        lo_s, _, hi_s = value.partition("-")
        lo, hi = int(lo_s), int(hi_s or lo_s)
    else:
        raise ValueError(f"port {value!r} must be a number 1-65535 or a range like '8000-8080'")
    for port in (lo, hi):
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} is out of range 1-65535")
    if lo > hi:
        raise ValueError(f"port range {value!r} runs backwards")
    return str(lo) if lo == hi else f"{lo}-{hi}"


# Six hex pairs separated by ':', either case (reported and compared lowercase).
MAC_PATTERN: Final = r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}"
MAC_RE: Final = re.compile(MAC_PATTERN)  # used with fullmatch


def is_mac(value: object) -> TypeGuard[str]:
    """Whether `value` is an Ethernet address (02:00:5e:00:00:01, either case)."""
    return isinstance(value, str) and MAC_RE.fullmatch(value) is not None


def canonical_mac(value: str) -> str:
    """An Ethernet address, lowercased (02:00:5e:00:00:01); ValueError."""
    if not is_mac(value):
        raise ValueError(f"invalid MAC address {value!r}; expected e.g. 02:00:5e:00:00:01")
    return value.lower()


# --- marks -------------------------------------------------------------------
#
# A packet mark is 32 bits: hex with at most 8 digits, or decimal with at most 10
# (ASCII digits only: Python's \d would also take other scripts' digits, which ip and
# nft do not read). A policy rule's fwmark is a mark or `mark/mask`; ip reads each
# part with strtoul base 0, so a decimal with a leading zero would be octal there:
# `canonical_fwmark` writes every part as hex, which reads back the same everywhere.

MARK_PATTERN: Final = r"(?:0x[0-9a-fA-F]{1,8}|[0-9]{1,10})"
FWMARK_PATTERN: Final = rf"{MARK_PATTERN}(?:/{MARK_PATTERN})?"
FWMARK_RE: Final = re.compile(FWMARK_PATTERN)  # used with fullmatch
_FWMARK_HELP = "fwmark must be a number or 'mark/mask' like '0x1/0xff'"


def canonical_fwmark(value: object) -> str:
    """A policy-rule fwmark (a number, or 'mark/mask') as hex parts ('0x1/0xff'); ValueError."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFFFFFF:
        return hex(value)
    if not isinstance(value, str) or not FWMARK_RE.fullmatch(value):
        raise ValueError(_FWMARK_HELP)
    parts = []
    for part in value.split("/"):
        try:
            number = int(part, 0)
        except ValueError:  # '010': base 0 refuses a leading zero, ip would read octal
            raise ValueError(
                f"fwmark {value!r}: {part!r} starts with 0, which ip reads as octal; "
                "write the number without the leading zero, or in hex (0x...)"
            ) from None
        if number > 0xFFFFFFFF:
            raise ValueError(f"fwmark {value!r}: {part} does not fit in 32 bits")
        parts.append(hex(number))
    return "/".join(parts)


# --- WireGuard keys ----------------------------------------------------------
#
# A Curve25519 key is 32 bytes: 43 base64 characters and '='. The last character
# carries 4 bits of the key and 2 zero bits, so it is one of 16.

WG_KEY_PATTERN: Final = r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]="
WG_KEY_RE: Final = re.compile(WG_KEY_PATTERN)  # used with fullmatch


def is_wg_key(value: object) -> TypeGuard[str]:
    """Whether `value` is a base64 WireGuard (Curve25519) public key."""
    return isinstance(value, str) and WG_KEY_RE.fullmatch(value) is not None
