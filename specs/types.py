"""Value types of the spec language, each with a real validator.

Annotated types used by the per-kind models: interface names, addresses and
networks (checked with `ipaddress`), ports and port ranges, nft identifiers,
sha256 digests, absolute normalised paths, URLs, sizes, file modes, secret
references, package names and version constraints. A validator raises
ValueError with a short message; the loader prefixes it with file:line:col and
the field path. The rules the registry applies too (interface names, ports,
MAC addresses, nft identifiers, sizes) are contract.vocab's; this module wraps
them as pydantic types. Used by the models in this package.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from contract.vocab.netvalues import IFNAME_CHARS, canonical_mac, canonical_port_range
from contract.vocab.nft import is_nft_ident
from contract.vocab.sizes import size_bytes


class FieldError(ValueError):
    """A validation error about a field below the value being validated.

    Model validators raise it to point at the field (or list item) that is
    wrong, e.g. `FieldError(("addresses", 1), "... is listed twice")`; the
    loader appends `loc` to the error's location, so the message lands on the
    right line. Plain ValueErrors point at the validated value itself.
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


# --- names -------------------------------------------------------------------
#
# Every pattern here is applied with fullmatch: `re.match(r"...$")` also accepts a
# trailing newline ('$' matches before a final '\n'), which would carry a line break
# into the files and command lines these values reach.

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)

# Interface names: the rule (IFNAME_RE, is_ifname; why it is narrower than Linux's) is
# contract.vocab.netvalues', shared with the registry; `_ifname` says what is wrong.
_IFNAME_BAD = re.compile(rf"[^{IFNAME_CHARS}]")


def _dns1123(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"name {value!r} is longer than 63 characters")
    if not _DNS1123.fullmatch(value):
        raise ValueError(
            f"name {value!r} must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _ifname(value: str) -> str:
    if not value or len(value) > 15:
        raise ValueError(f"interface name {value!r} must be 1-15 characters (kernel IFNAMSIZ)")
    if not value.isascii():
        raise ValueError(f"interface name {value!r} must be ASCII")
    bad = _IFNAME_BAD.search(value)
    if bad:
        raise ValueError(
            f"interface name {value!r} may not contain whitespace, '/', ':', '%', '@', quotes, "
            "'#', '\\', control characters or anything but letters, digits, '_', '.' and '-' "
            f"(found {bad.group()!r})"
        )
    if value in (".", ".."):
        raise ValueError(f"interface name {value!r} may not contain only '.' or '..'")
    if value.startswith("-"):
        raise ValueError(f"interface name {value!r} may not start with '-' (read as an option)")
    return value


def _nft_ident(value: str) -> str:
    if not is_nft_ident(value):
        raise ValueError(
            f"nft identifier {value!r} must start with a letter and contain only "
            "letters, digits, '_', '.', '-' (at most 64 characters)"
        )
    return value


def _label_key(value: str) -> str:
    if len(value) > 253 or not _LABEL_KEY.fullmatch(value):
        raise ValueError(f"label key {value!r} is not a valid key (prefix/name)")
    return value


Dns1123 = Annotated[
    str,
    AfterValidator(_dns1123),
    Field(json_schema_extra={"pattern": _DNS1123.pattern, "maxLength": 63}),
]
IfName = Annotated[
    str, AfterValidator(_ifname), Field(json_schema_extra={"minLength": 1, "maxLength": 15})
]
NftIdent = Annotated[str, AfterValidator(_nft_ident)]
LabelKey = Annotated[str, AfterValidator(_label_key)]

# --- addresses ---------------------------------------------------------------


def _ip_class(value: str, v4: type, v6: type) -> type:
    if "%" in value:
        # ipaddress takes any text after '%' as an IPv6 scope id ('fe80::1%x y' is
        # "valid") and keeps it in str(): it would reach command lines verbatim.
        raise ValueError(f"address {value!r} may not carry a scope id ('%...')")
    return v6 if ":" in value else v4


def _interface(value: str) -> str:
    """An address with prefix length on an interface: 10.0.0.1/24, 2001:db8::1/64."""
    if "/" not in value:
        raise ValueError(f"address {value!r} needs a prefix length, e.g. {value}/24")
    cls = _ip_class(value, ipaddress.IPv4Interface, ipaddress.IPv6Interface)
    try:
        iface = cls(value)
    except ValueError as exc:
        raise ValueError(f"invalid address {value!r}: {exc}") from None
    return str(iface)


def _network(value: str) -> str:
    """A network: host bits must be zero. A bare address means a /32 or /128."""
    cls = _ip_class(value, ipaddress.IPv4Network, ipaddress.IPv6Network)
    try:
        net = cls(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = cls(value, strict=False)
            raise ValueError(f"{value!r} has host bits set; did you mean {fixed}?") from None
        raise ValueError(f"invalid network {value!r}: {exc}") from None
    return str(net)


def _address(value: str) -> str:
    cls = _ip_class(value, ipaddress.IPv4Address, ipaddress.IPv6Address)
    try:
        return str(cls(value))
    except ValueError as exc:
        raise ValueError(f"invalid IP address {value!r}: {exc}") from None


def _route_dest(value: str) -> str:
    return "default" if value == "default" else _network(value)


def _address_or_network(value: str) -> str:
    return _network(value) if "/" in value else _address(value)


IpInterface = Annotated[str, AfterValidator(_interface)]
IpNetwork = Annotated[str, AfterValidator(_network)]
IpAddress = Annotated[str, AfterValidator(_address)]
RouteDest = Annotated[str, AfterValidator(_route_dest)]
AddressOrNetwork = Annotated[str, AfterValidator(_address_or_network)]

MacAddress = Annotated[str, AfterValidator(canonical_mac)]

# --- ports -------------------------------------------------------------------

Port = Annotated[int, Field(ge=1, le=65535)]

# A port (22) or a range ("8000-8080"), canonicalised to a string (contract.vocab.netvalues).
PortRange = Annotated[str, BeforeValidator(canonical_port_range, json_schema_input_type=int | str)]

# --- digests, paths, urls ----------------------------------------------------


def _sha256(value: str) -> str:
    lowered = value.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", lowered):
        raise ValueError("sha256 must be 64 hexadecimal characters")
    return lowered


def _abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"path {value!r} must be absolute")
    if "\x00" in value or "\n" in value:
        raise ValueError("path must not contain NUL or newline characters")
    parts = value.split("/")[1:]
    if value != "/" and (value.endswith("/") or any(p in ("", ".", "..") for p in parts)):
        raise ValueError(f"path {value!r} must be normalised (no '//', '.', '..' or trailing '/')")
    if len(value) > 4095:
        raise ValueError("path is longer than PATH_MAX")
    return value


_URL = re.compile(r"^(https?)://[^\s/?#]+[^\s]*$|^file:/[^\s]*$")


def _url(value: str) -> str:
    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in ("http", "https", "file"):
        raise ValueError(f"URL {value!r} must use http, https or file")
    if not _URL.fullmatch(value):
        raise ValueError(f"invalid URL {value!r}")
    if scheme == "file":
        _abs_path("/" + value[len("file:") :].lstrip("/"))
    return value


Sha256 = Annotated[
    str, AfterValidator(_sha256), Field(json_schema_extra={"pattern": "^[0-9A-Fa-f]{64}$"})
]
AbsPath = Annotated[str, AfterValidator(_abs_path), Field(json_schema_extra={"pattern": "^/"})]
Url = Annotated[str, AfterValidator(_url)]

# A size string like '512M' (binary multiples): contract.vocab.sizes.size_bytes reads it
# and says what is wrong.


def _size(value: object) -> str:
    if isinstance(value, bool):
        raise ValueError("size must be like '512M'")
    text = str(value) if isinstance(value, int) else value
    if not isinstance(text, str):
        raise ValueError("size must be like '512M'")
    if size_bytes(text) <= 0:
        raise ValueError("size must be greater than zero")
    return text


def _mode(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            "mode must be a quoted octal string like '0755': unquoted, YAML reads it as "
            f"the decimal number {value}"
        )
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3,4}", value):
        raise ValueError("mode must be a quoted octal string like '0755'")
    return value.zfill(4)[-4:]


Size = Annotated[str, BeforeValidator(_size, json_schema_input_type=int | str)]
FileMode = Annotated[str, BeforeValidator(_mode, json_schema_input_type=str)]

# --- secrets, packages -------------------------------------------------------


def _secret_ref(value: str) -> str:
    if not value.startswith("file:/"):
        raise ValueError("secretRef must be 'file:/absolute/path'; secrets are never inline")
    _abs_path(value[len("file:") :])
    return value


SecretRefStr = Annotated[str, AfterValidator(_secret_ref)]

PackageName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9+.\-]{0,127}$")]

_VERSION = r"[A-Za-z0-9.+~:_\-]+"
_CONSTRAINT = re.compile(rf"^(=|==|>=|<=|>>|<<|>|<|~)? *{_VERSION}$")


def _version_constraint(value: object) -> str:
    if isinstance(value, float):
        raise ValueError(
            f"version must be a quoted string: unquoted, it is read as the number {value!r} "
            "(1.10 would become 1.1)"
        )
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        raise ValueError("version must be a string")
    clauses = [c.strip() for c in text.split(",")]
    for clause in clauses:
        if not _CONSTRAINT.fullmatch(clause):
            raise ValueError(
                f"version {text!r} must be a version ('1.2-1') or constraints like '>=1.0, <2'"
            )
    return ", ".join(clauses)


VersionConstraint = Annotated[
    str, BeforeValidator(_version_constraint, json_schema_input_type=int | str)
]

# --- common enums ------------------------------------------------------------

ItemState = Literal["present", "absent"]
Mode = Literal["enforce", "propose", "audit"]
