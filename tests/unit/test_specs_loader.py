"""specs.loader and SpecSet: the API the engine and the daemon call.

Digest independence (file order, layout, comments, formatting), origin and
locate, multi-document files, directory walking rules, size and encoding
limits, YAML 1.2 scalars and the safety caps, SpecSet immutability.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from specs.errors import Issue, SpecError
from specs.loader import MAX_FILE_BYTES, load_documents, load_paths, skipped_name
from specs.parsing import ALIAS_BUDGET, MAX_DEPTH, parse, resolve_plain
from specs.specset import Origin, SpecSet

NETWORK = """\
apiVersion: aios.dev/v1
kind: Network
metadata:
  name: lan
spec:
  links:
    - name: br0
      kind: bridge
      addresses: [10.0.0.1/24]
"""
PACKAGES = """\
apiVersion: aios.dev/v1
kind: Packages
metadata:
  name: base
  labels: {tier: core, role: base}
spec:
  packages:
    - name: aios-demo-base
      version: "1.1-1"
"""
# The same two resources: one file, flow style, comments, other key order,
# spellings that validate to the same values.
REFORMATTED = """\
# both resources in one file
kind: Packages
apiVersion: aios.dev/v1
metadata: {labels: {role: base, tier: core}, name: base}
spec: {packages: [{version: "1.1-1", name: aios-demo-base}]}   # flow style
---
apiVersion: "aios.dev/v1"
kind: Network
metadata:
  name: lan
spec:
  links:
    - kind: bridge
      name: br0
      state: up          # the default, spelled out
      addresses:
        - 10.0.0.1/255.255.255.0
"""


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _issues(excinfo: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return list(excinfo.value.issues)


# --- digest and SpecSet ------------------------------------------------------


def test_digest_ignores_layout_order_comments_and_formatting(tmp_path: Path) -> None:
    split = _tree(tmp_path / "split", {"a/net.yaml": NETWORK, "b/pkgs.yml": PACKAGES})
    one = load_paths([split])
    two = load_paths([split / "b/pkgs.yml", split / "a/net.yaml"])
    three = load_documents([("all.yaml", REFORMATTED.encode())])
    assert one.digest == two.digest == three.digest
    assert len(one.digest) == 64 and one == three and hash(one) == hash(three)
    assert one.keys() == ("Network/lan", "Packages/base")


def test_digest_changes_with_content() -> None:
    base = load_documents([("n.yaml", NETWORK.encode())])
    changed = load_documents([("n.yaml", NETWORK.replace("10.0.0.1/24", "10.0.0.2/24").encode())])
    assert base.digest != changed.digest


def test_specset_lookups_and_immutability() -> None:
    specset = load_documents([("all.yaml", REFORMATTED.encode())])
    assert [r.key for r in specset.resources] == ["Network/lan", "Packages/base"]
    assert specset.get("Network/lan") is specset.resources[0]
    assert specset.get("Network/wan") is None
    assert "Packages/base" in specset and len(specset) == 2
    assert [r.key for r in specset.by_kind("Packages")] == ["Packages/base"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        specset.digest = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        specset._index["x"] = specset.resources[0]  # type: ignore[index]
    with pytest.raises(Exception, match="frozen"):
        specset.resources[0].metadata.name = "wan"  # type: ignore[misc]


def test_origin_and_locate() -> None:
    specset = load_documents([("all.yaml", REFORMATTED.encode())])
    assert specset.origin("Packages/base") == Origin("all.yaml", 2, 1)
    assert specset.origin("Network/lan") == Origin("all.yaml", 7, 1)
    assert str(specset.origin("Network/lan")) == "all.yaml:7:1"
    locate = specset.locate
    assert locate("Network/lan", ("spec", "links", 0, "addresses", 0)) == Origin("all.yaml", 17, 11)
    assert locate("Network/lan", ("spec", "links", 0, "name")) == Origin("all.yaml", 14, 13)
    # a block mapping or list is reported at its key
    assert locate("Network/lan", ("spec", "links")) == Origin("all.yaml", 12, 3)
    # a field left to its default: the mapping it would be in
    assert locate("Network/lan", ("spec", "links", 0, "mtu")) == Origin("all.yaml", 13, 7)
    # Python attribute names work too
    assert locate("Packages/base", ("api_version",)) == Origin("all.yaml", 3, 13)
    with pytest.raises(KeyError):
        specset.origin("Models/x")


def test_from_resources_rebuilds_the_same_set() -> None:
    loaded = load_documents([("all.yaml", REFORMATTED.encode())])
    rebuilt = SpecSet.from_resources(reversed(loaded.resources))
    assert rebuilt == loaded and rebuilt.resources == loaded.resources
    assert rebuilt.origin("Network/lan") == Origin("")
    assert rebuilt.locate("Network/lan", ("spec",)) == Origin("")
    placed = SpecSet.from_resources(loaded.resources, origins={"Network/lan": Origin("x", 1, 1)})
    assert placed.locate("Network/lan", ("spec",)) == Origin("x", 1, 1)
    with pytest.raises(ValueError, match="Network/lan"):
        SpecSet.from_resources([*loaded.resources, loaded.resources[0]])


# --- documents, errors ---------------------------------------------------------


def test_multi_document_file_and_all_errors_at_once() -> None:
    text = NETWORK + "---\n" + PACKAGES.replace("1.1-1", "") + "---\n" + "kind: Storage\n"
    with pytest.raises(SpecError) as excinfo:
        load_documents([("multi.yaml", text.encode()), ("other.yaml", b"a: [\n")])
    assert _issues(excinfo) == [
        "multi.yaml:19:16: Packages/base: spec.packages[0].version: version '' must be a "
        "version ('1.2-1') or constraints like '>=1.0, <2'",
        "multi.yaml:21:1: Storage/?: apiVersion: field required",
        "multi.yaml:21:1: Storage/?: metadata: field required",
        "multi.yaml:21:1: Storage/?: spec: field required",
        "other.yaml:2:1: yaml: did not find expected node content",
    ]
    details = excinfo.value.details
    assert all(isinstance(d, Issue) for d in details)
    assert [(d.path, d.line) for d in details] == sorted((d.path, d.line) for d in details)
    assert details[-1].path == "other.yaml" and details[-1].resource == "yaml"


def test_invalid_document_does_not_hide_dependson_targets() -> None:
    broken = NETWORK.replace("bridge", "bridgee")
    firewall = "apiVersion: aios.dev/v1\nkind: Firewall\nmetadata:\n  name: fw\n"
    firewall += "  dependsOn: [Network/lan]\nspec: {}\n"
    with pytest.raises(SpecError) as excinfo:
        load_documents([("a.yaml", broken.encode()), ("b.yaml", firewall.encode())])
    assert [line.split(": ")[0] for line in _issues(excinfo)] == ["a.yaml:8:13"]


def test_issue_format_escapes_control_characters() -> None:
    issue = Issue("a.yaml", 1, 2, "Network/?", "metadata.name", "bad\nfake.yaml:1:1: x")
    assert issue.format() == "a.yaml:1:2: Network/?: metadata.name: bad\\nfake.yaml:1:1: x"
    assert Issue("a.yaml", message="no such file or directory").format() == (
        "a.yaml: no such file or directory"
    )
    assert SpecError(["plain text"]).issues == ("plain text",)


# --- files and directories -------------------------------------------------------


def test_directory_walk_rules(tmp_path: Path) -> None:
    bad = "this: is: not valid: yaml\n"
    root = _tree(
        tmp_path,
        {
            "10-net.yaml": NETWORK,
            "sub/deeper/20-pkgs.yml": PACKAGES,
            ".hidden.yaml": bad,
            ".git/config.yaml": bad,
            "net.yaml~": bad,
            ".net.yaml.swp": bad,
            "net.yaml.swo": bad,
            "net.tmp": bad,
            "#net.yaml#": bad,
            "notes.txt": bad,
            "README.md": bad,
        },
    )
    (root / "loop").symlink_to(root)  # a symlink loop must not hang the walk
    (root / "sub/dangling.yaml").symlink_to(root / "missing.yaml")
    with pytest.raises(SpecError) as excinfo:
        load_paths([root])
    assert _issues(excinfo) == [f"{root}/sub/dangling.yaml: broken symbolic link"]
    (root / "sub/dangling.yaml").unlink()
    assert load_paths([root]).keys() == ("Network/lan", "Packages/base")


def test_paths_are_reported_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path, {"specs/net.yaml": NETWORK.replace("br0", "br/0")})
    monkeypatch.chdir(tmp_path)
    for given, shown in (("specs", "specs/net.yaml"), ("./specs/", "specs/net.yaml")):
        with pytest.raises(SpecError) as excinfo:
            load_paths([given])
        assert _issues(excinfo)[0].startswith(f"{shown}:7:13: Network/lan: spec.links[0].name:")
    with pytest.raises(SpecError) as excinfo:
        load_paths(["./specs/net.yaml", "missing.yaml"])
    assert _issues(excinfo)[0].startswith("./specs/net.yaml:7:13:")
    assert _issues(excinfo)[1] == "missing.yaml: no such file or directory"


def test_explicit_file_is_read_whatever_its_suffix(tmp_path: Path) -> None:
    _tree(tmp_path, {"spec.txt": NETWORK})
    assert load_paths([tmp_path / "spec.txt"]).keys() == ("Network/lan",)


def test_special_files_are_refused_without_opening(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # opening it would block until a writer came
    with pytest.raises(SpecError) as excinfo:
        load_paths([fifo])
    assert _issues(excinfo) == [f"{fifo}: not a regular file or directory"]
    assert load_paths([tmp_path]).keys() == ()  # a walk skips it too


def test_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    exact = tmp_path / "exact.yaml"
    exact.write_bytes(NETWORK.encode() + b"#" * (MAX_FILE_BYTES - len(NETWORK)))
    assert os.path.getsize(exact) == MAX_FILE_BYTES
    assert load_paths([exact]).keys() == ("Network/lan",)
    over = tmp_path / "over.yaml"
    with over.open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse NULs: reading it would say "binary"
    with pytest.raises(SpecError, match="limited to 4 MiB"):
        load_paths([over])
    with pytest.raises(SpecError, match="limited to 4 MiB"):
        load_documents([("big.yaml", b" " * (MAX_FILE_BYTES + 1))])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "x.yaml:1:1: yaml: no documents"),
        (b"# only a comment\n", "x.yaml:1:1: yaml: no documents"),
        (b"\xef\xbb\xbf" + b"[1]\n", "x.yaml:1:1: yaml: a spec document must be a mapping"),
        (b"\xef\xbb\xbfa: \xff\n", "x.yaml:1:4: yaml: invalid UTF-8 (byte 0xff)"),
        (b"a: b\n\tc: d\n", "x.yaml:2:1: yaml: found a tab character"),
        (b"a: 1\r\nb: \x80\r\n", "x.yaml:2:4: yaml: invalid UTF-8 (byte 0x80)"),
        (b"a: \xc3\xa9\x1b\n", "x.yaml:1:5: yaml: control character U+001B"),
        ("a: \u2028\n".encode(), None),  # a line separator is printable YAML
    ],
)
def test_text_problems(data: bytes, expected: str | None) -> None:
    with pytest.raises(SpecError) as excinfo:
        load_documents([("x.yaml", data)])
    if expected is not None:
        assert _issues(excinfo)[0].startswith(expected), _issues(excinfo)


# --- YAML --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("true", True),
        ("False", False),
        ("~", None),
        ("null", None),
        ("", None),
        ("0755", 755),
        ("0o755", 0o755),
        ("0x1F", 31),
        ("-12", -12),
        ("1.10", 1.1),
        ("1e3", 1000.0),
        (".inf", float("inf")),
        ("1_000", "1_000"),
        ("10.0.0.1", "10.0.0.1"),
        ("1.2-1", "1.2-1"),
        ("2001:db8::1", "2001:db8::1"),
        ("9" * 80, "9" * 80),
    ],
)
def test_yaml_1_2_core_scalars(text: str, value: object) -> None:
    assert resolve_plain(text) == value
    assert type(resolve_plain(text)) is type(value)


def test_quoted_scalars_stay_strings() -> None:
    [doc], issues = parse("a: '0755'\nb: \"true\"\nc: |\n  12\n", "x.yaml")
    assert not issues
    assert doc.value == {"a": "0755", "b": "true", "c": "12\n"}


def test_anchors_and_aliases_within_budget() -> None:
    text = "a: &x [1, 2, {b: c}]\nd: *x\n"
    [doc], issues = parse(text, "x.yaml")
    assert not issues and doc.value == {"a": [1, 2, {"b": "c"}], "d": [1, 2, {"b": "c"}]}


def test_alias_budget_and_depth_caps() -> None:
    wide = "a: &a [" + ", ".join(["x"] * 999) + "]\nb: [" + ", ".join(["*a"] * 11) + "]\n"
    _, issues = parse(wide, "x.yaml")
    assert [i.message for i in issues] == [f"aliases expand to more than {ALIAS_BUDGET} nodes"]
    deep = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH
    _, issues = parse(deep, "x.yaml")
    assert issues and "nesting deeper" in issues[0].message
    ok = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert parse(ok, "x.yaml")[1] == []


def test_recursive_alias_and_complex_keys() -> None:
    _, issues = parse("a: &a [*a]\n", "x.yaml")
    assert [i.message for i in issues] == ["alias '*a' refers to a node that contains it"]
    _, issues = parse("? [a, b]\n: c\n", "x.yaml")
    assert [(i.line, i.column, i.message) for i in issues] == [
        (1, 3, "mapping keys must be scalars (plain strings)")
    ]


def test_skipped_names() -> None:
    for name in (".x.yaml", "x.yaml~", ".x.yaml.swp", "x.swo", "x.tmp", "#x.yaml#", ".git"):
        assert skipped_name(name), name
    for name in ("x.yaml", "10-x.yml", "#", "a#b.yaml"):
        assert not skipped_name(name), name
