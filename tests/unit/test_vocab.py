"""contract.vocab: each shared vocabulary exists once and every layer takes it from there.

Link kinds: the registry's link_add and net.state enums, the spec language's
accepted kinds (the Literal of specs.network.Link.kind) and the network
controller's virtual/child/master sets are derived from contract.vocab.links —
checked by equality and identity here, and by patching the vocabulary in a
fresh interpreter and watching every layer follow. Network values and nft
checks: the spec validator and the registry's drivers call the same functions.
The registry, the sandbox and the contract import nothing from specs, and
contract.vocab imports no pydantic, jsonschema or grpc.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from contract.catalogue import links as link_schemas
from contract.catalogue import net as net_catalogue
from contract.vocab import links as vocab
from contract.vocab import netvalues, nft
from controllers.network import state as net_state
from registry.drivers.net import commands as netcmd
from registry.drivers.net import revert as netrevert
from registry.drivers.net import state as netobserve
from registry.drivers.net import system as netsys
from registry.drivers.nft import ruleset
from specs import firewall as spec_firewall
from specs import network as spec_network
from specs import types as spec_types

ROOT = Path(__file__).resolve().parents[2]


def _kind_enum(schema: Any) -> list[str]:
    """The enum of the first `kind` property found in a JSON Schema."""
    if isinstance(schema, dict):
        kind = schema.get("properties", {}).get("kind")
        if isinstance(kind, dict) and "enum" in kind:
            return list(kind["enum"])
        for value in schema.values():
            found = _kind_enum(value)
            if found:
                return found
    if isinstance(schema, list):
        for value in schema:
            found = _kind_enum(value)
            if found:
                return found
    return []


# --- link kinds ----------------------------------------------------------------


def test_every_kind_is_one_row() -> None:
    names = [k.name for k in vocab.LINK_KINDS]
    assert len(names) == len(set(names))
    assert tuple(names) == vocab.KINDS
    assert set(vocab.CREATABLE_KINDS) | set(vocab.DECLARABLE_KINDS) <= set(vocab.KINDS)
    assert vocab.CHILD_KINDS <= vocab.VIRTUAL_KINDS and vocab.MASTER_KINDS <= vocab.VIRTUAL_KINDS


def test_the_registry_schemas_enumerate_the_vocabulary() -> None:
    assert link_schemas.LINK_ADD["properties"]["kind"]["enum"] == list(vocab.CREATABLE_KINDS)
    assert _kind_enum(net_catalogue.NET_STATE.output_schema) == list(vocab.KINDS)
    assert set(link_schemas.BLOCKS) == set(vocab.BLOCK_KINDS)
    assert list(vocab.MACVLAN_MODES) == link_schemas.MACVLAN_MODES
    assert list(vocab.BOND_MODES) == link_schemas.BOND_MODES


def test_the_spec_language_accepts_the_declarable_kinds() -> None:
    annotation = spec_network.Link.model_fields["kind"].annotation
    assert get_args(annotation) == vocab.DECLARABLE_KINDS
    schema = spec_network.Link.model_json_schema()
    assert schema["properties"]["kind"]["enum"] == list(vocab.DECLARABLE_KINDS)
    assert spec_network.KIND_BLOCKS is vocab.BLOCKS
    assert all(block in spec_network.Link.model_fields for block in vocab.BLOCKS)


def test_the_controller_sets_are_the_vocabulary() -> None:
    assert net_state.VIRTUAL_KINDS is vocab.VIRTUAL_KINDS
    assert net_state.CHILD_KINDS is vocab.CHILD_KINDS
    assert net_state.MASTER_KINDS is vocab.MASTER_KINDS


def test_the_registry_drivers_derive_their_kind_sets() -> None:
    assert vocab.VIRTUAL_KINDS - {"tun", "tap"} == netobserve._KINDS
    assert vocab.VIRTUAL_KINDS - {"wireguard"} == netrevert._CREATABLE


def test_today_s_differences_are_explicit() -> None:
    """The layers differ on purpose where the vocabulary says so (its docstring says why)."""
    assert set(vocab.CREATABLE_KINDS) - set(vocab.DECLARABLE_KINDS) == {"dummy"}
    assert set(vocab.DECLARABLE_KINDS) - set(vocab.CREATABLE_KINDS) == {"ethernet"}
    assert set(vocab.KINDS) - set(vocab.CREATABLE_KINDS) - set(vocab.DECLARABLE_KINDS) == {
        "loopback",
        "other",
    }
    assert {"macvlan", "vlan", "vxlan"} == vocab.CHILD_KINDS
    assert {"bridge", "bond"} == vocab.MASTER_KINDS
    assert vocab.block_of("tap") == vocab.block_of("tun") == "tun"
    assert vocab.block_of("ethernet") is None and vocab.block_of("nope") is None


def _spec_link(kind: str) -> dict[str, Any]:
    link: dict[str, Any] = {"name": "l0", "kind": kind}
    block = vocab.REQUIRED_BLOCK.get(kind)
    if block is not None:
        link[block] = {
            "veth": {"peer": "l1"},
            "macvlan": {"parent": "eth0"},
            "vxlan": {"id": 1},
            "vlan": {"parent": "eth0", "id": 1},
            "wireguard": {"private_key": {"secret_ref": "file:/etc/wg.key"}},
        }[block]
    return link


@pytest.mark.parametrize("kind", vocab.KINDS)
def test_each_layer_behaves_as_its_row_says(kind: str) -> None:
    row = vocab.BY_NAME[kind]
    try:
        spec_network.Link.model_validate(_spec_link(kind))
        declared = True
    except ValidationError:
        declared = False
    assert declared is row.declarable
    args = _spec_link(kind)
    if kind == "wireguard":
        args["wireguard"] = {"private_key_file": "/etc/wg.key"}
    created = Draft202012Validator(link_schemas.LINK_ADD).is_valid(args)
    assert created is row.creatable
    assert (kind in net_state.VIRTUAL_KINDS) is row.creatable
    assert (kind in net_state.CHILD_KINDS) is row.child
    assert (kind in net_state.MASTER_KINDS) is row.master


PATCHED = """
import json, typing
from contract.vocab import links
links.DECLARABLE_KINDS = (*links.DECLARABLE_KINDS, "dummy")
links.CREATABLE_KINDS = tuple(k for k in links.CREATABLE_KINDS if k != "ifb")
links.VIRTUAL_KINDS = frozenset(links.CREATABLE_KINDS)
from specs.network import Link
from contract.catalogue.links import LINK_ADD
from controllers.network.state import VIRTUAL_KINDS
print(json.dumps({
    "spec": list(typing.get_args(Link.model_fields["kind"].annotation)),
    "link_add": LINK_ADD["properties"]["kind"]["enum"],
    "virtual": sorted(VIRTUAL_KINDS),
}))
"""


def test_every_layer_follows_a_change_of_the_vocabulary() -> None:
    """Patch contract.vocab.links before anything imports it: the spec Literal, the
    registry's link_add enum and the controller's set change with it (none is a copy)."""
    out = subprocess.run(
        [sys.executable, "-c", PATCHED], capture_output=True, text=True, check=True, cwd=ROOT
    )
    got = json.loads(out.stdout)
    assert got["spec"] == [*vocab.DECLARABLE_KINDS, "dummy"]
    assert got["link_add"] == [k for k in vocab.CREATABLE_KINDS if k != "ifb"]
    assert got["virtual"] == sorted(vocab.VIRTUAL_KINDS - {"ifb"})


# --- network values and nft checks ---------------------------------------------


def test_both_sides_call_the_same_checks() -> None:
    assert netcmd.check_endpoint is netvalues.check_endpoint
    assert netsys.resolver_path_problem is netvalues.resolver_path_problem
    assert netsys.sysctl_fields_problem is netvalues.sysctl_fields_problem
    assert spec_network.check_endpoint is netvalues.check_endpoint
    assert spec_network.resolver_path_problem is netvalues.resolver_path_problem
    assert spec_types.is_ifname is netvalues.is_ifname
    assert spec_types.IFNAME_RE is netvalues.IFNAME_RE
    for name in ("check_rule_text", "check_comment", "check_element"):
        assert getattr(ruleset, name) is getattr(nft, name), name
        assert getattr(spec_firewall, name) is getattr(nft, name), name


def test_the_firewall_words_are_the_vocabulary() -> None:
    def args(model: Any, field: str) -> tuple[object, ...]:
        annotation = model.model_fields[field].annotation
        return tuple(a for a in get_args(annotation) if a is not type(None))

    def literal(model: Any, field: str) -> tuple[object, ...]:
        (inner,) = args(model, field)
        return get_args(inner)

    assert args(spec_firewall.Table, "family") == nft.FAMILIES
    assert literal(spec_firewall.Chain, "hook") == nft.HOOKS
    assert literal(spec_firewall.Chain, "type") == nft.CHAIN_TYPES
    assert literal(spec_firewall.Chain, "policy") == nft.POLICIES
    assert args(spec_firewall.NamedSet, "type") == nft.SET_TYPES
    (flag,) = get_args(spec_firewall.NamedSet.model_fields["flags"].annotation)[:1]
    assert get_args(flag) == nft.DECLARABLE_SET_FLAGS
    assert set(nft.SET_FLAGS) - set(nft.DECLARABLE_SET_FLAGS) == {"dynamic"}


def test_the_firewall_tool_schemas_enumerate_the_vocabulary() -> None:
    from contract.catalogue import firewall as fw_schemas
    from contract.catalogue import netschema
    from contract.catalogue.parts import anchored

    assert (list(nft.FAMILIES), list(nft.HOOKS)) == (fw_schemas.FAMILIES, fw_schemas.HOOKS)
    assert (
        list(nft.SET_TYPES),
        list(nft.SET_FLAGS),
    ) == (fw_schemas.SET_TYPES, fw_schemas.SET_FLAGS)
    assert anchored(nft.NFT_IDENT_PATTERN) == fw_schemas.NFT_IDENT_RE
    assert netschema.IFNAME_RE is netvalues.IFNAME_PATTERN


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("net.ipv4.ip_forward", "1", True),
        ("net.ipv4.ip_forward", "1 0", False),
        ("net.ipv4.tcp_rmem", "4096 87380 6291456", True),
        ("net.ipv4.tcp_rmem", "4096", False),
        ("net.ipv4.tcp_allowed_congestion_control", "reno cubic bbr", True),
    ],
)
def test_sysctl_fields_judged_alike(key: str, value: str, ok: bool) -> None:
    spec_ok = True
    try:
        spec_network.NetworkSpec.model_validate({"sysctls": {key: value}})
    except ValidationError:
        spec_ok = False
    registry_ok = True
    try:
        netsys.sysctl_value(value, key)
    except Exception:
        registry_ok = False
    assert spec_ok is registry_ok is ok


def test_the_resolver_file_schema_agrees_with_the_rule() -> None:
    from contract.catalogue.netschema import RESOLVER_FILE

    schema = Draft202012Validator(RESOLVER_FILE)
    paths = [
        "/etc/resolv.conf",
        "/etc/netns/lab/resolv.conf",
        "/etc/unbound/unbound.conf.d/aios-forward.conf",
        "/etc/shadow",
        "/etc/resolv.conf\n",
        "/etc/netns/../resolv.conf",
        "/etc/unbound/unbound_control.key",
    ]
    for path in paths:
        rule = any(
            netvalues.resolver_path_problem(r, path) is None for r in netvalues.RESOLVER_FILES
        )
        assert schema.is_valid(path) is rule, path


# --- layering --------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["registry", "sandbox", "contract"])
def test_the_wire_side_never_imports_the_spec_language(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in _imports(path)
        if name == "specs" or name.startswith("specs.")
    ]
    assert offenders == []


def test_the_vocabularies_import_nothing_heavy() -> None:
    code = (
        "import sys, contract.vocab.links, contract.vocab.netvalues, contract.vocab.nft, "
        "contract.vocab.fsoptions; print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pydantic', 'jsonschema', 'grpc', 'specs', 'registry', 'reconciler', "
        "'controllers', 'sandbox'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
