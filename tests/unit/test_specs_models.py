"""Each kind's model, table-driven through the loader: valid specs load, and
invalid ones fail at the expected field with the expected message.

Documents are written as JSON (which is YAML) so cases stay one line each;
the assertions check `Kind/name: field.path: message`, not positions (the
bad-input corpus pins positions).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from specs.errors import SpecError
from specs.firewall import Firewall
from specs.loader import load_documents
from specs.models import Models
from specs.network import Network
from specs.storage import Storage

SHA = "ab" * 32
URL = "http://127.0.0.1:18080/models/demo-tiny.gguf"


def _doc(kind: str, spec: dict[str, Any], name: str = "x") -> bytes:
    document = {"apiVersion": "aios.dev/v1", "kind": kind, "metadata": {"name": name}}
    return json.dumps({**document, "spec": spec}).encode()


def _errors(kind: str, spec: dict[str, Any]) -> list[str]:
    """`Kind/name: field: message` of each issue (positions stripped)."""
    try:
        load_documents([("t.yaml", _doc(kind, spec))])
    except SpecError as exc:
        return [": ".join(line.split(": ")[1:]) for line in exc.issues]
    return []


VALID: list[tuple[str, dict[str, Any]]] = [
    ("Network", {}),
    ("Network", {"links": [{"name": "br0", "kind": "bridge", "addresses": ["10.0.0.1/24"]}]}),
    (
        "Network",
        {
            "links": [
                {"name": "v0", "kind": "veth", "veth": {"peer": "v1"}},
                {"name": "v1", "kind": "veth", "veth": {"peer": "v0"}, "mtu": 9000},
                {"name": "u0", "kind": "ifb"},
                {"name": "m0", "kind": "macvlan", "macvlan": {"parent": "u0"}},
                {"name": "x0", "kind": "vxlan", "vxlan": {"id": 42, "remote": "192.0.2.1"}},
                {"name": "t0", "kind": "tap", "tun": {"multiQueue": True}},
                {"name": "eth0", "kind": "ethernet", "state": "down"},
            ],
            "routes": [
                {"to": "default", "via": "10.0.0.1"},
                {"to": "10.9.0.0/16", "type": "blackhole", "table": 7},
            ],
            "rules": [{"priority": 100, "from": "10.0.0.0/8", "table": 7, "fwmark": 3}],
            "sysctls": {"net/ipv4/ip_forward": True},
            "dns": {"servers": ["192.0.2.53"], "search": ["example.org"]},
        },
    ),
    (
        "Firewall",
        {
            "tables": [
                {
                    "family": "inet",
                    "name": "filter",
                    "sets": [{"name": "ports", "type": "inet_service", "elements": [22, 80]}],
                    "chains": [
                        {
                            "name": "input",
                            "type": "filter",
                            "hook": "input",
                            "priority": "filter + 10",
                            "policy": "drop",
                            "rules": ['tcp dport @ports accept comment "a;b"'],
                            "services": [{"ports": [22, "8000-8010"], "from": ["10.0.0.0/8"]}],
                        },
                        {"name": "helper", "rules": ["counter accept"]},
                    ],
                }
            ]
        },
    ),
    ("Packages", {"packages": [{"name": "aios-demo-base", "version": "=1.0-1", "hold": True}]}),
    (
        "Packages",
        {
            "backend": "apt",
            "repositories": [{"name": "local", "url": "file:/srv/repo", "trusted": True}],
            "packages": [{"name": "aios-demo-extra", "state": "absent", "force": True}],
        },
    ),
    (
        "Storage",
        {
            "filesystems": [{"image": {"path": "/img/a.img", "size": "64M"}, "label": "data"}],
            "mounts": [{"target": "/mnt/a", "source": "LABEL=data", "type": "ext4"}],
            "directories": [{"path": "/srv/a", "mode": "0750", "owner": "root"}],
            "swapfiles": [{"path": "/swap", "size": "1G", "priority": -1}],
        },
    ),
    (
        "Models",
        {
            "models": [
                {"name": "demo-tiny", "source": URL, "sha256": SHA, "layer": "tactical"},
                {"name": "local", "source": "file:/srv/models/local.gguf", "load": "always"},
                {"name": "old", "state": "absent", "force": True},
            ]
        },
    ),
]

INVALID: list[tuple[str, dict[str, Any], str]] = [
    # Network
    ("Network", {"links": [{"name": "br0"}]}, "spec.links[0].kind: field required"),
    ("Network", {"links": [{"name": "v0", "kind": "veth"}]}, "spec.links[0].veth: a veth link"),
    (
        "Network",
        {"links": [{"name": "v0", "kind": "veth", "veth": {"peer": "v0"}}]},
        "spec.links[0].veth.peer: a veth peer needs a different name",
    ),
    (
        "Network",
        {
            "links": [
                {"name": "v0", "kind": "veth", "veth": {"peer": "v1"}},
                {"name": "v1", "kind": "veth", "veth": {"peer": "v9"}},
            ]
        },
        "spec.links[1]: v1 is the veth peer of v0",
    ),
    (
        "Network",
        {"links": [{"name": "eth0", "kind": "ethernet", "state": "absent"}]},
        "spec.links[0].state: an ethernet device cannot be deleted",
    ),
    (
        "Network",
        {"links": [{"name": "br0", "kind": "bridge", "addresses": ["10.0.0.1/24", "10.0.0.1/16"]}]},
        "spec.links[0].addresses[1]: 10.0.0.1/16 repeats 10.0.0.1/24",
    ),
    (
        "Network",
        {"links": [{"name": "br0", "kind": "bridge", "master": "br0"}]},
        "spec.links[0].master: a link cannot be its own master",
    ),
    (
        "Network",
        {"links": [{"name": "b", "kind": "bridge"}, {"name": "b", "kind": "bridge"}]},
        "spec.links[1].name: interface b is already claimed by Network/x",
    ),
    ("Network", {"links": [{"name": "b", "kind": "dummy"}]}, "spec.links[0].kind: must be"),
    ("Network", {"routes": [{"to": "10.0.0.0/8"}]}, "spec.routes[0]: a unicast route needs"),
    (
        "Network",
        {"routes": [{"to": "10.0.0.0/8", "via": "fe80::1"}]},
        "spec.routes[0]: to, via and src mix IPv4 and IPv6",
    ),
    (
        "Network",
        {"routes": [{"to": "default", "dev": "br0", "table": "local"}]},
        "spec.routes[0].table: table must be a number 1-4294967295, 'main' or 'default'",
    ),
    ("Network", {"rules": [{"priority": 5}]}, "spec.rules[0]: a lookup rule needs a table"),
    ("Network", {"rules": [{"priority": 0, "table": 5}]}, "spec.rules[0].priority: must be at"),
    (
        "Network",
        {"rules": [{"priority": 5, "table": 5, "fwmark": "zz"}]},
        "spec.rules[0].fwmark: fwmark must be a number",
    ),
    ("Network", {"sysctls": {"vm.swappiness": 1}}, "spec.sysctls['vm.swappiness']: sysctl"),
    (
        "Network",
        {"dns": {"servers": ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]}},
        "spec.dns: resolv.conf honours at most 3 nameservers",
    ),
    # Firewall
    (
        "Firewall",
        {"tables": [{"name": "f", "chains": [{"name": "in", "hook": "input"}]}]},
        "spec.tables[0].chains[0]: a base chain (with hook) needs type and priority",
    ),
    (
        "Firewall",
        {"tables": [{"name": "f", "chains": [{"name": "c"}, {"name": "c"}]}]},
        "spec.tables[0].chains[1].name: two chains are named c",
    ),
    (
        "Firewall",
        {"tables": [{"name": "f", "chains": [{"name": "c", "rules": ["ip saddr @nope drop"]}]}]},
        "spec.tables[0].chains[0].rules[0]: rule refers to unknown set @nope",
    ),
    (
        "Firewall",
        {"tables": [{"name": "f", "chains": [{"name": "c", "rules": ["flush ruleset"]}]}]},
        "spec.tables[0].chains[0].rules[0]: rule must be a statement, not an nft command",
    ),
    (
        "Firewall",
        {"tables": [{"name": "f", "chains": [{"name": "c", "rules": ["tcp dport { 22 accept"]}]}]},
        "spec.tables[0].chains[0].rules[0]: rule has unbalanced brackets",
    ),
    (
        "Firewall",
        {
            "tables": [
                {"name": "f", "sets": [{"name": "s", "type": "inet_service", "elements": ["1-9"]}]}
            ]
        },
        "spec.tables[0].sets[0].elements[0]: element '1-9' is a range: the set needs flags",
    ),
    (
        "Firewall",
        {
            "tables": [
                {
                    "name": "f",
                    "sets": [
                        {"name": "s", "type": "ipv4_addr", "elements": ["10.0.0.1", "10.0.0.1"]}
                    ],
                }
            ]
        },
        "spec.tables[0].sets[0].elements[1]: element '10.0.0.1' is listed twice",
    ),
    (
        "Firewall",
        {
            "tables": [
                {"name": "f", "chains": [{"name": "c", "services": [{"port": 1, "ports": [2]}]}]}
            ]
        },
        "spec.tables[0].chains[0].services[0]: a service needs exactly one of port or ports",
    ),
    (
        "Firewall",
        {"tables": [{"name": "f", "family": "ip6"}, {"name": "f", "family": "ip6"}]},
        "spec.tables[1].name: nft table ip6/f is already claimed by Firewall/x",
    ),
    # Packages
    (
        "Packages",
        {"packages": [{"name": "aios-demo-base", "state": "absent", "version": "1.0-1"}]},
        "spec.packages[0].version: an absent package takes no version or hold",
    ),
    (
        "Packages",
        {"repositories": [{"name": "r", "url": "https://deb.example.org", "suite": "stable"}]},
        "spec.repositories[0]: a suite without components",
    ),
    ("Packages", {"backend": "yum"}, "spec.backend: must be 'auto', 'apt' or 'apk'"),
    # Storage
    (
        "Storage",
        {"filesystems": [{"type": "ext4"}]},
        "spec.filesystems[0]: a filesystem needs exactly one of device or image",
    ),
    (
        "Storage",
        {"filesystems": [{"device": "/dev/vdb", "type": "xfs", "label": "a-very-long-label"}]},
        "spec.filesystems[0].label: xfs labels are at most 12 characters",
    ),
    (
        "Storage",
        {"mounts": [{"target": "/mnt/a", "source": "tmpfs"}]},
        "spec.mounts[0].type: source tmpfs needs type: tmpfs",
    ),
    (
        "Storage",
        {"mounts": [{"target": "/", "source": "/dev/vda1"}]},
        "spec.mounts[0].target: the root filesystem is not managed",
    ),
    (
        "Storage",
        {"mounts": [{"target": "/mnt/a", "source": "srv/a", "type": "bind"}]},
        "spec.mounts[0].source: source 'srv/a' must be an absolute path",
    ),
    (
        "Storage",
        {"directories": [{"path": "/srv/a", "owner": "Root User"}]},
        "spec.directories[0].owner: 'Root User' does not match the pattern",
    ),
    # Models
    (
        "Models",
        {"models": [{"name": "m", "source": URL}]},
        "spec.models[0].sha256: a model from http(s) needs sha256",
    ),
    ("Models", {"models": [{"name": "m"}]}, "spec.models[0].source: a present model needs"),
    (
        "Models",
        {"models": [{"name": "m", "source": URL, "sha256": SHA, "contextLength": 64}]},
        "spec.models[0].contextLength: must be at least 128",
    ),
    (
        "Models",
        {"models": [{"name": "m", "source": URL, "sha256": SHA, "layer": "cloud"}]},
        "spec.models[0].layer: must be 'operational', 'tactical' or 'strategic'",
    ),
    (
        "Models",
        {
            "models": [
                {"name": "a", "source": URL, "sha256": SHA},
                {"name": "b", "source": URL, "sha256": SHA, "path": "/var/lib/aios/models/a.gguf"},
            ]
        },
        "spec.models[1].path: model path /var/lib/aios/models/a.gguf is already claimed",
    ),
]


@pytest.mark.parametrize(("kind", "spec"), VALID, ids=lambda v: json.dumps(v)[:50])
def test_valid_specs_load(kind: str, spec: dict[str, Any]) -> None:
    assert _errors(kind, spec) == []


@pytest.mark.parametrize(("kind", "spec", "expected"), INVALID, ids=lambda v: str(v)[:60])
def test_invalid_specs_fail_at_the_field(kind: str, spec: dict[str, Any], expected: str) -> None:
    errors = _errors(kind, spec)
    assert any(e.startswith(f"{kind}/x: {expected}") for e in errors), errors


def test_models_normalise_values() -> None:
    specset = load_documents([("t.yaml", _doc("Network", VALID[2][1]))])
    network = specset.get("Network/x")
    assert isinstance(network, Network)
    assert network.spec.sysctls == {"net.ipv4.ip_forward": "1"}
    assert network.spec.rules[0].fwmark == "0x3"
    assert network.spec.routes[0].family == "inet"
    claims = {c.key for c in network.claims()}
    assert {"interface:v0", "interface:v1", "interface:m0", "rule:inet/100"} <= claims


def test_claims_of_each_kind() -> None:
    firewall = Firewall.model_validate(json.loads(_doc("Firewall", VALID[3][1])))
    assert [c.key for c in firewall.claims()] == ["nft-table:inet/filter"]
    storage = Storage.model_validate(json.loads(_doc("Storage", VALID[6][1])))
    assert [c.key for c in storage.claims()] == [
        "filesystem:/img/a.img",
        "mount:/mnt/a",
        "directory:/srv/a",
        "swapfile:/swap",
    ]
    models = Models.model_validate(json.loads(_doc("Models", VALID[7][1])))
    assert "model-path:/var/lib/aios/models/demo-tiny.gguf" in {c.key for c in models.claims()}


@pytest.mark.parametrize(
    "rule",
    [
        "ip saddr 10.0.1.0/24 tcp dport 1025 accept",
        "  tcp dport 22 accept  ",
        "counter drop",
        "flush ruleset",
        "table inet x",
        "accept\n",
        "accept\r",
        "",
        "   ",
        "a" * 4097,
        "tcp dport 22 accept; flush ruleset",
        "tcp dport 22 accept # c",
        'iif "lo" accept',
        "tcp dport { 22, 80 } accept",
        "ip saddr 10.0.0.1 accept\x00",
    ],
)
def test_rule_text_fast_path_agrees_with_the_full_check(rule: str) -> None:
    from contract.vocab import nft as firewall  # the check specs.firewall validates with

    def full(value: str) -> str:
        pattern = firewall._SIMPLE_RULE
        try:
            firewall._SIMPLE_RULE = re.compile(r"(?!)")  # never matches: the full check only
            return firewall.check_rule_text(value)
        finally:
            firewall._SIMPLE_RULE = pattern

    try:
        expected: object = full(rule)
    except ValueError as exc:
        expected = ValueError(str(exc))
    try:
        got: object = firewall.check_rule_text(rule)
    except ValueError as exc:
        got = ValueError(str(exc))
    assert type(got) is type(expected) and str(got) == str(expected)
