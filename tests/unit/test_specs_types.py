"""The value types of specs/types.py, table-driven: what passes, what it becomes,
and what each refusal says."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from specs import types as t

# (type, input, canonical value)
GOOD: list[tuple[Any, object, object]] = [
    (t.Dns1123, "lan-2", "lan-2"),
    (t.IfName, "br-lan", "br-lan"),
    (t.IfName, "a" * 15, "a" * 15),
    (t.NftIdent, "lan_services.v4", "lan_services.v4"),
    (t.LabelKey, "aios.dev/role", "aios.dev/role"),
    (t.IpInterface, "10.0.0.1/24", "10.0.0.1/24"),
    (t.IpInterface, "10.0.0.1/255.255.255.0", "10.0.0.1/24"),
    (t.IpInterface, "2001:DB8::1/64", "2001:db8::1/64"),
    (t.IpNetwork, "10.0.0.0/8", "10.0.0.0/8"),
    (t.IpNetwork, "192.0.2.7", "192.0.2.7/32"),
    (t.IpAddress, "fe80::1", "fe80::1"),
    (t.RouteDest, "default", "default"),
    (t.RouteDest, "fd00::/8", "fd00::/8"),
    (t.AddressOrNetwork, "10.1.0.0/16", "10.1.0.0/16"),
    (t.AddressOrNetwork, "10.1.2.3", "10.1.2.3"),
    (t.MacAddress, "02:00:5E:00:00:01", "02:00:5e:00:00:01"),
    (t.Port, 65535, 65535),
    (t.PortRange, 22, "22"),
    (t.PortRange, "8000-8080", "8000-8080"),
    (t.PortRange, "443-443", "443"),
    (t.Sha256, "AB" * 32, "ab" * 32),
    (t.AbsPath, "/var/lib/aios", "/var/lib/aios"),
    (t.AbsPath, "/", "/"),
    (t.Url, "https://example.org/m.gguf", "https://example.org/m.gguf"),
    (t.Url, "file:/srv/m.gguf", "file:/srv/m.gguf"),
    (t.Size, "64M", "64M"),
    (t.Size, 4096, "4096"),
    (t.FileMode, "755", "0755"),
    (t.FileMode, "0750", "0750"),
    (t.SecretRefStr, "file:/etc/aios/secrets/wg", "file:/etc/aios/secrets/wg"),
    (t.PackageName, "aios-demo-base", "aios-demo-base"),
    (t.VersionConstraint, "1.2-1", "1.2-1"),
    (t.VersionConstraint, ">=1.0,<2", ">=1.0, <2"),
    (t.VersionConstraint, 2, "2"),
]

# (type, input, part of the message)
BAD: list[tuple[Any, object, str]] = [
    (t.Dns1123, "Lan", "DNS-1123"),
    (t.Dns1123, "-lan", "DNS-1123"),
    (t.Dns1123, "a" * 64, "longer than 63"),
    (t.IfName, "a" * 16, "1-15 characters"),
    (t.IfName, "", "1-15 characters"),
    (t.IfName, "eth 0", "may not contain"),
    (t.IfName, "br/0", "may not contain"),
    (t.IfName, "eth0:1", "may not contain"),
    (t.IfName, "..", "may not contain"),
    (t.IfName, "ethé", "must be ASCII"),
    (t.NftIdent, "1abc", "nft identifier"),
    (t.NftIdent, "a;b", "nft identifier"),
    (t.LabelKey, "-bad", "label key"),
    (t.IpInterface, "10.0.0.1", "needs a prefix length"),
    (t.IpInterface, "10.0.0.300/24", "Octet 300 (> 255)"),
    (t.IpInterface, "10.0.0.1/33", "invalid address"),
    (t.IpNetwork, "10.0.0.1/8", "has host bits set; did you mean 10.0.0.0/8?"),
    (t.IpNetwork, "fd00::1/8", "did you mean fd00::/8?"),
    (t.IpNetwork, "nope", "invalid network"),
    (t.IpAddress, "1.2.3", "invalid IP address"),
    (t.RouteDest, "10.1.2.3/24", "host bits"),
    (t.MacAddress, "02:00:5e:00:00", "invalid MAC"),
    (t.Port, 0, "greater than or equal to 1"),
    (t.Port, 70000, "less than or equal to 65535"),
    (t.PortRange, 0, "out of range"),
    (t.PortRange, 70000, "out of range"),
    (t.PortRange, "9000-8000", "runs backwards"),
    (t.PortRange, "ssh", "must be a number"),
    (t.PortRange, True, "must be a number"),
    (t.Sha256, "abc", "64 hexadecimal"),
    (t.AbsPath, "var/lib", "must be absolute"),
    (t.AbsPath, "/var/../etc", "normalised"),
    (t.AbsPath, "/var//lib", "normalised"),
    (t.AbsPath, "/var/lib/", "normalised"),
    (t.AbsPath, "/a\nb", "NUL or newline"),
    (t.Url, "ftp://x/y", "http, https or file"),
    (t.Url, "http://", "invalid URL"),
    (t.Url, "file:relative/x", "invalid URL"),
    (t.Url, "file:/srv/../etc/shadow", "normalised"),
    (t.Size, "64MB", "number with an optional K, M, G or T"),
    (t.Size, 0, "greater than zero"),
    (t.Size, False, "like '512M'"),
    (t.FileMode, 755, "quoted octal string"),
    (t.FileMode, "0999", "quoted octal string"),
    (t.SecretRefStr, "hunter2", "never inline"),
    (t.PackageName, "Vim", "should match pattern"),
    (t.VersionConstraint, 1.1, "must be a quoted string"),
    (t.VersionConstraint, "1.0; rm -rf /", "constraints like"),
    # issue 8: what reached ip batch lines, nft text and files
    (t.IfName, '"y""netns"abcd', "(found '\"')"),
    (t.IfName, "'y''netns'abcd", '(found "\'")'),
    (t.IfName, "k0#x", "(found '#')"),
    (t.IfName, "k0\\", "(found '\\\\')"),
    (t.IfName, "k0\n", "(found '\\n')"),
    (t.IfName, "k0\tmtu", "(found '\\t')"),
    (t.IfName, "k0\0x", "(found '\\x00')"),
    (t.IfName, "k0@x", "(found '@')"),
    (t.IfName, "k0%x", "(found '%')"),
    (t.IfName, "-k0", "may not start with '-'"),
    (t.IfName, ".", "only '.' or '..'"),
    (t.Dns1123, "lan\n", "DNS-1123"),
    (t.NftIdent, "filter\n", "nft identifier"),
    (t.LabelKey, "role\n", "label key"),
    (t.MacAddress, "02:00:5e:00:00:01\n", "invalid MAC"),
    (t.Size, "64M\n", "number with an optional K, M, G or T"),
    (t.Url, "http://example.org/x\n", "invalid URL"),
    (t.VersionConstraint, ">=\n1.0", "constraints like"),
    (t.IpAddress, "fe80::1%x y", "scope id"),
    (t.IpInterface, "fe80::1%x y/64", "scope id"),
    (t.IpNetwork, "fe80::%x y/128", "scope id"),
    (t.AddressOrNetwork, "fe80::1%eth0", "scope id"),
]


@pytest.mark.parametrize(("annotation", "value", "expected"), GOOD)
def test_good_values(annotation: Any, value: object, expected: object) -> None:
    assert TypeAdapter(annotation).validate_python(value) == expected


@pytest.mark.parametrize(("annotation", "value", "message"), BAD)
def test_bad_values(annotation: Any, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        TypeAdapter(annotation).validate_python(value)
    assert message in str(excinfo.value)


def test_size_bytes() -> None:
    assert t.size_bytes("64M") == 64 << 20
    assert t.size_bytes("3") == 3
    with pytest.raises(ValueError, match="suffix"):
        t.size_bytes("1.5G")


def test_field_error_carries_its_location() -> None:
    error = t.FieldError(("addresses", 1), "listed twice")
    assert error.loc == ("addresses", 1) and str(error) == "listed twice"
    assert isinstance(error, ValueError)
