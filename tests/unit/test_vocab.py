"""contract.vocab: each shared vocabulary exists once and every layer takes it from there.

Link kinds: the registry's link_add and net.state enums, the spec language's
accepted kinds (the Literal of specs.network.Link.kind) and the network
controller's virtual/child/master sets are derived from contract.vocab.links —
checked by equality and identity here, and by patching the vocabulary in a
fresh interpreter and watching every layer follow. Network values and nft
checks: the spec validator and the registry's drivers call the same functions.
Chain priority names, fwmarks, WireGuard keys, MACs and sizes: the spec side,
the tool schemas and the registry's checks judge a corpus alike (or differ
exactly where the vocabulary says why); the storage controller and storage.mount
compare every allow-listed mount option alike. A source scan fails when a copy
of a vocabulary appears outside its module. The registry, the sandbox and the
contract import nothing from specs, and contract.vocab imports no pydantic,
jsonschema or grpc.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter, ValidationError

from contract.catalogue import links as link_schemas
from contract.catalogue import net as net_catalogue
from contract.catalogue import parts
from contract.vocab import fsoptions, netvalues, nft, sizes
from contract.vocab import links as vocab
from controllers.network import state as net_state
from registry.core.errors import ToolError
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
    assert link_schemas.BLOCKS["macvlan"]["properties"]["mode"]["enum"] == list(vocab.MACVLAN_MODES)
    assert link_schemas.BLOCKS["bond"]["properties"]["mode"]["enum"] == list(vocab.BOND_MODES)


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
    assert spec_network.canonical_fwmark is netvalues.canonical_fwmark
    assert netcmd.canonical_fwmark is netvalues.canonical_fwmark
    assert netcmd.is_mac is netvalues.is_mac and netcmd.is_wg_key is netvalues.is_wg_key
    assert spec_types.canonical_mac is netvalues.canonical_mac
    assert spec_types.size_bytes is sizes.size_bytes is parts.size_bytes
    assert spec_firewall.named_priority is ruleset.named_priority is nft.named_priority
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
    assert netschema.IFNAME["pattern"] == anchored(netvalues.IFNAME_PATTERN)
    assert fw_schemas.PRIORITY["oneOf"][1]["pattern"] == anchored(nft.PRIORITY_PATTERN)
    assert netschema.MAC["pattern"] == anchored(netvalues.MAC_PATTERN)
    fwmark = netschema.RULE_FIELDS["fwmark"]["oneOf"][1]["pattern"]
    assert fwmark == anchored(netvalues.FWMARK_PATTERN)


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


# --- chain priorities, fwmarks, WireGuard keys, MACs ----------------------------------


def _tool_priority(value: object) -> str | None:
    try:
        return ruleset._priority(value, "chain")
    except ToolError:
        return None


def _spec_priority(value: object) -> object:
    try:
        chain = {"name": "c", "type": "filter", "hook": "input", "priority": value}
        return spec_firewall.Chain.model_validate(chain).priority
    except ValidationError:
        return None


PRIORITIES: list[tuple[object, object, object]] = [
    # value, the tools' normal form, the spec's (None: refused)
    ("filter", "filter", "filter"),
    ("srcnat", "srcnat", "srcnat"),
    ("filter+10", "filter + 10", "filter + 10"),
    ("mangle -  5", "mangle - 5", "mangle - 5"),
    ("  raw ", "raw", "raw"),
    ("out", "out", None),  # the bridge family's name: the tools only
    ("out + 5", "out + 5", None),
    ("filter\t+\t10", None, "filter + 10"),  # people type whitespace: the spec only
    ("\tdstnat\n", None, "dstnat"),
    ("filter + 12345", None, None),
    ("filter + \u0661\u0660", None, None),  # other scripts' digits: neither (ASCII only)
    ("nat", None, None),
    ("filter; flush ruleset", None, None),
    (-150, "-150", -150),
]


@pytest.mark.parametrize(("value", "tool", "spec"), PRIORITIES)
def test_priority_names_one_list_two_documented_rules(
    value: object, tool: object, spec: object
) -> None:
    from contract.catalogue.firewall import PRIORITY

    assert _tool_priority(value) == tool
    assert _spec_priority(value) == spec
    schema_ok = Draft202012Validator(PRIORITY).is_valid(value)
    assert schema_ok is (tool is not None and not str(value).startswith(" "))  # no trimming
    if spec is not None:  # what a spec writes, the tools take as it is
        assert _tool_priority(spec) == str(spec)


def test_the_priority_names_differ_by_out_only() -> None:
    assert set(nft.PRIORITY_NAMES) - set(nft.DECLARABLE_PRIORITY_NAMES) == {"out"}
    assert tuple(n for n in nft.PRIORITY_NAMES if n != "out") == nft.DECLARABLE_PRIORITY_NAMES
    for name in nft.PRIORITY_NAMES:
        assert nft.named_priority(f"{name} + 1") == f"{name} + 1"
        declared = nft.named_priority(f"{name}\t-1", declared=True)
        assert declared == (None if name == "out" else f"{name} - 1")


def _tool_fwmark(value: object) -> str | None:
    try:
        return netcmd.fwmark(value)
    except ToolError:
        return None


def _spec_fwmark(value: object) -> str | None:
    rule = {"priority": 5, "table": 5, "fwmark": value}
    try:
        spec = spec_network.NetworkSpec.model_validate({"rules": [rule]})
    except ValidationError:
        return None
    return spec.rules[0].fwmark


FWMARKS: list[tuple[object, str | None]] = [
    (3, "0x3"),
    (0, "0x0"),
    (0xFFFFFFFF, "0xffffffff"),
    (0x100000000, None),
    (-1, None),
    (True, None),
    ("16/0xff", "0x10/0xff"),
    ("0x1/0xFF", "0x1/0xff"),
    ("4294967295", "0xffffffff"),
    ("4294967296", None),  # 10 digits but more than 32 bits (was sent on as 0x100000000)
    ("010", None),  # ip reads octal: refused instead of guessing
    ("0", "0x0"),
    ("0x123456789", None),
    ("1 x", None),
    ("0x1/", None),
    ("\u0661", None),  # ASCII digits only
    ("zz", None),
]


@pytest.mark.parametrize(("value", "canonical"), FWMARKS)
def test_fwmarks_are_judged_and_written_alike(value: object, canonical: str | None) -> None:
    schema = Draft202012Validator(_fwmark_schema())
    assert _tool_fwmark(value) == canonical
    assert _spec_fwmark(value) == canonical
    if canonical is not None:  # the spec's form passes the tool schema and reads back
        assert schema.is_valid(canonical) and _tool_fwmark(canonical) == canonical


def _fwmark_schema() -> dict[str, Any]:
    from contract.catalogue.netschema import RULE_FIELDS

    return dict(RULE_FIELDS["fwmark"])


def test_fwmark_refusals_say_why() -> None:
    with pytest.raises(ToolError, match="octal"):
        netcmd.fwmark("010")
    with pytest.raises(ToolError, match="32 bits"):
        netcmd.fwmark("0/4294967296")
    with pytest.raises(ToolError, match=r"invalid mark 'zz' \(a number or 'mark/mask'\)"):
        netcmd.fwmark("zz")


KEY = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
WG_KEYS = [KEY, KEY[:-2] + "h=", KEY[:-1], KEY + "\n", KEY.replace("x", "-"), "", 42]


@pytest.mark.parametrize("key", WG_KEYS)
def test_wireguard_keys_are_judged_alike(key: object) -> None:
    from contract.catalogue.links import BLOCKS

    peer_schema = BLOCKS["wireguard"]["properties"]["peers"]["items"]["properties"]
    schema_ok = Draft202012Validator(peer_schema["public_key"]).is_valid(key)
    try:
        spec_network.WireguardPeer.model_validate({"public_key": key})
        spec_ok = True
    except ValidationError:
        spec_ok = False
    assert schema_ok is spec_ok is netvalues.is_wg_key(key) is (key == KEY)


MACS = [
    "02:00:5E:00:00:01",
    "02:00:5e:00:00:01",
    "02:00:5e:00:00",
    "02-00-5e-00-00-01",
    "02:00:5e:00:00:01\n",
    "02:00:5e:00:00:0g",
    "\uff10\uff12:00:5e:00:00:01",
]


@pytest.mark.parametrize("mac", MACS)
def test_macs_are_judged_and_written_alike(mac: str) -> None:
    from contract.catalogue.netschema import MAC

    ok = mac.lower() == "02:00:5e:00:00:01"
    assert Draft202012Validator(MAC).is_valid(mac) is netvalues.is_mac(mac) is ok
    try:
        tool: str | None = netcmd.mac(mac)
    except ToolError:
        tool = None
    try:
        spec: str | None = TypeAdapter(spec_types.MacAddress).validate_python(mac)
    except ValidationError:
        spec = None
    assert tool == spec == ("02:00:5e:00:00:01" if ok else None)


# --- sizes and mount options -------------------------------------------------------


def test_size_bytes_reads_both_spellings() -> None:
    assert sizes.size_bytes("64M") == 64 << 20
    assert sizes.size_bytes("3") == 3 and sizes.size_bytes(4096) == 4096
    assert sizes.size_bytes("2T") == 2 << 40
    for bad in ("1.5G", "", "1k", " 1M", "1_000", "\u0661M", "1P"):
        with pytest.raises(ValueError, match="suffix"):
            sizes.size_bytes(bad)
    assert sizes.memparse_bytes("1t") == sizes.memparse_bytes("1073741824k") == 1 << 40
    assert sizes.memparse_bytes("2P") == 2 << 50 and sizes.memparse_bytes("1e") == 1 << 60
    assert sizes.memparse_bytes("50%") is None and sizes.memparse_bytes("1kk") is None


@pytest.mark.parametrize("size", ["64M", "1G", "2T", "512", 1024, "0", "1.5G", "1P", "\u0661M"])
def test_a_declared_size_reads_the_same_on_both_sides(size: object) -> None:
    try:
        declared = TypeAdapter(spec_types.Size).validate_python(size)
    except ValidationError:
        declared = None
    schema_ok = Draft202012Validator(parts.SIZE).is_valid(size)
    if declared is not None:  # what the spec takes, the schema takes, and both read alike
        assert schema_ok and parts.size_bytes(size) == sizes.size_bytes(declared)  # type: ignore[arg-type]
    else:
        assert not schema_ok


def test_the_mount_option_normal_form() -> None:
    normal = fsoptions.normal_mount_option
    assert normal("size=1t") == normal("size=1073741824k") == "size=1099511627776"
    assert (
        normal("size=2P") == f"size={2 << 50}" and normal("nr_blocks=1E") == f"nr_blocks={1 << 60}"
    )
    assert normal("nr_inodes=2k") == "nr_inodes=2048" and normal("mode=0000") == "mode=0"
    assert normal("mode=0750") == normal("mode=750") == "mode=750"
    assert normal("size=50%") == "size=50%" and normal("noatime") == "noatime"


def _findmnt_form(option: str) -> str:
    """How findmnt shows an option the kernel took (sizes in k, modes without zeros)."""
    key, _, value = option.partition("=")
    size = sizes.memparse_bytes(value) if key in fsoptions.SIZE_KEYS else None
    if size is not None and key == "size":
        return f"size={size // 1024}k" if size % 1024 == 0 else f"size={size}"
    if key == "mode":
        return f"mode={int(value, 8):o}"
    return option


def _allow_listed_options() -> list[tuple[str, str]]:
    """(type, option) for every allow-listed flag and, per `key=`, each sample value its
    pattern takes: sizes with every suffix, modes, words."""
    samples = ["1", "64", "0750", "750", "50%", "on", "off", "auto", "always", "never", "0"]
    samples += [f"{n}{u}" for n in (1, 3, 512) for u in sizes.MEMPARSE_SUFFIXES]
    samples += ["v2", "zstd", "zstd:3", "/a", "/a:/b", "journal", "continue", "1000"]
    out = []
    for kind in ("tmpfs", "bind", "overlay", "ext4", "xfs", "btrfs", "auto"):
        for key, pattern in fsoptions.mount_table(kind).items():
            candidates = [key] if pattern is None else [f"{key}{v}" for v in samples]
            out += [
                (kind, o) for o in candidates if fsoptions.mount_option_problem(kind, o) is None
            ]
    return out


def test_controller_and_registry_agree_on_every_allow_listed_option() -> None:
    """The storage controller's "still missing" and storage.mount's "already mounted as
    wanted" read every option the allow-lists take alike (they disagreed on size=1t,
    and neither read p or e)."""
    from controllers.storage.options import IMPLIED, ignored, missing
    from registry.drivers.storage.mounting import wanted_options_present

    checked = 0
    for _kind, option in _allow_listed_options():
        if ignored(option) or option in IMPLIED:
            continue  # the controller never compares these; fstab and defaults carry them
        for live in ([_findmnt_form(option)], ["rw"], ["rw", "size=1k", "mode=1777"]):
            controller = missing([option], live) == ()
            assert controller is wanted_options_present([option], live), (option, live)
        assert wanted_options_present([option], ["rw", _findmnt_form(option)])
        checked += 1
    assert checked > 300
    assert wanted_options_present(["size=1t"], ["rw", "size=1073741824k"])
    assert wanted_options_present(
        ["size=2P", "nr_inodes=1e"], [f"size={2 << 40}k", f"nr_inodes={1 << 60}"]
    )


# --- one definition each ---------------------------------------------------------

# A mark each copy would carry, and the one module allowed to carry it.
HOMES = {
    "WireGuard key": (r"AEIMQUYcgkosw480", "contract/vocab/netvalues.py"),
    "mark": (r"0x\[0-9a-fA-F\]\{1,8\}|0x\[0-9A-Fa-f\]\{1,8\}", "contract/vocab/netvalues.py"),
    "MAC": (r"\{2\}\)\{5\}", "contract/vocab/netvalues.py"),
    "priority names": (r"\b(?:mangle|dstnat)\b", "contract/vocab/nft.py"),
    "size suffixes": (r"KMGT|kKmMgGtT|<< 40|<< 50|\*\* 4", "contract/vocab/sizes.py"),
    "mount option normal form": (r'"nr_blocks"|"nr_inodes"', "contract/vocab/fsoptions.py"),
    "DNS host label": (
        r"\[A-Za-z0-9\]\((?:\?:)?\[A-Za-z0-9-\]\{0,61\}",
        "contract/vocab/netvalues.py",
    ),
}
PACKAGES = ("contract", "specs", "registry", "controllers", "reconciler", "runtime", "sandbox")


@pytest.mark.parametrize("vocabulary", sorted(HOMES))
def test_each_vocabulary_is_written_once(vocabulary: str) -> None:
    """A copy of a vocabulary anywhere in the packages fails here: import it instead."""
    pattern, home = HOMES[vocabulary]
    found = sorted(
        {
            path.relative_to(ROOT).as_posix()
            for package in PACKAGES
            for path in (ROOT / package).rglob("*.py")
            if "_gen" not in path.parts and re.search(pattern, path.read_text())
        }
    )
    assert found == [home]


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
        "contract.vocab.fsoptions, contract.vocab.sizes; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pydantic', 'jsonschema', 'grpc', 'specs', 'registry', 'reconciler', "
        "'controllers', 'sandbox'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
