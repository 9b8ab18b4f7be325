"""The attack corpus, registry side, for storage.mkfs and storage.mount (issue 8, escapes 3, 4).

The same hostile values as tests/attack/specs/mkfs-* and mount-*, sent to the
registry's tools directly, at both of its layers:

- the input schema (what Execute checks first): `Invalid input: $.options[i]: ...`
  exactly as registry.server.pipeline words it, or no refusal where JSON Schema cannot
  say it (a relative positional, a second label, a flag without its value);
- the handler, run for real with mkfs and mount(8) inside a private mount
  namespace (a `unshare -m` holder; tests/system/tooldriver.py refuses to run in
  the test's own namespace) on a scratch root under tmp_path, bypassing the
  schema: it must refuse with `options[i]: ...` before it creates anything.

Each case then checks that nothing changed: a sentinel "host" directory
outside the root (a 128 MiB image file an injected positional would format, a
directory an injected `-d`/`--rootdir`/upperdir would read or write, a
protofile, a symlink) byte for byte and mode for mode, the scratch root, the
namespace's mount table, and the loop devices. Positive controls: allowed
options make real filesystems of each type; overlay layers, even one spelled
as a host path or reached through an absolute or relative link planted in
the root, are mapped under the root and writes land there; a refused remount
leaves the mount as it was; and the sentinel check itself notices a changed
byte or mode. Runs as root (skipped otherwise).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract.catalogue import catalogue
from contract.catalogue.storage import mkfs_item_schema, mount_item_schema
from contract.vocab.fsoptions import CHARSET
from registry.server.pipeline import first_error
from tests.system.helpers import run
from tests.system.test_storage_tools import Namespace, blkid, wait_for_own_namespace

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mount namespaces, mkfs")

IMAGE_SIZE = 128 << 20
HEADER = b"aios host sentinel: must never be formatted\n" * 64


def make_host(directory: Path) -> Path:
    """The sentinel 'host' tree outside the scratch root."""
    directory.mkdir()
    with (directory / "host.img").open("wb") as image:  # big enough for any mkfs
        image.write(HEADER)
        image.truncate(IMAGE_SIZE)
    (directory / "etc").mkdir(mode=0o755)
    (directory / "etc/shadow").write_text("root:$6$secret:19000:0:99999:7:::\n")
    (directory / "etc/shadow").chmod(0o600)
    (directory / "etc/proto").write_text("/dev/null\n0 0\nd--755 0 0\n$\n")
    (directory / "upper").mkdir(mode=0o700)
    (directory / "work").mkdir(mode=0o700)
    (directory / "link").symlink_to("/etc")
    return directory


def snapshot(directory: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under `directory`: type and mode bits, owner, size, content digest or link."""
    out: dict[str, tuple[Any, ...]] = {}
    for path in [directory, *sorted(directory.rglob("*"))]:
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            digest = os.readlink(path)
        else:
            digest = ""
        out[str(path.relative_to(directory))] = (
            st.st_mode,
            st.st_uid,
            st.st_gid,
            st.st_size,
            digest,
        )
    return out


def schema_refusal(tool: str, args: dict[str, Any]) -> str | None:
    """What Execute answers before running anything (registry.server.pipeline's wording)."""
    problem = first_error(catalogue()[tool].input_schema, args)
    return None if problem is None else f"Invalid input: {problem}"


@dataclass
class World:
    ns: Namespace
    host: Path

    def mounts(self) -> list[str]:
        """The namespace's mount table, but network namespace handles: `ip netns del` of
        another test elsewhere detaches its /run/netns mount in every namespace."""
        table = self.ns.sh("findmnt", "-rn", "-o", "TARGET,SOURCE,FSTYPE,OPTIONS")
        return [line for line in table.splitlines() if line.split(" ")[2:3] != ["nsfs"]]

    def loops_on(self, directory: Path) -> list[str]:
        devices = json.loads(run(["losetup", "-J"]) or "{}").get("loopdevices", [])
        return [
            d["name"] for d in devices if str(d.get("back-file") or "").startswith(str(directory))
        ]


def _holder() -> subprocess.Popen[bytes]:
    holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "infinity"])
    try:
        wait_for_own_namespace(holder.pid)
    except BaseException:
        holder.kill()
        holder.wait()
        raise
    return holder


def _detach(directory: Path) -> None:
    devices = json.loads(run(["losetup", "-J"]) or "{}").get("loopdevices", [])
    for dev in devices:
        if str(dev.get("back-file") or "").startswith(str(directory)):
            subprocess.run(["losetup", "-d", dev["name"]], check=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One namespace, root and sentinel for the refusal cases (they must change nothing)."""
    tmp = tmp_path_factory.mktemp("storage-attack")
    holder = _holder()
    try:
        yield World(Namespace(holder.pid, tmp), make_host(tmp / "host"))
    finally:
        holder.kill()
        holder.wait()
        _detach(tmp)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[World]:
    """A namespace of its own, for the cases that really mount and format."""
    holder = _holder()
    try:
        yield World(Namespace(holder.pid, tmp_path), make_host(tmp_path / "host"))
    finally:
        holder.kill()
        holder.wait()
        _detach(tmp_path)


# --- the cases ---------------------------------------------------------------------------

EXT4_FLAGS = "-C, -E, -G, -I, -J, -L, -N, -O, -T, -U, -b, -e, -g, -i, -j, -m, -r"
XFS_FLAGS = "-K, -L, -b, -d, -i, -l, -m, -n, -r, -s"
BTRFS_FLAGS = (
    "--checksum, --csum, --data, --features, --label, --metadata, --mixed, --nodesize, "
    "--nodiscard, --runtime-features, --sectorsize, --uuid, -K, -L, -M, -O, -R, -U, -d, -m, -n, -s"
)
POSITIONAL = (
    "is a positional argument: mkfs.{t} formats only the declared device or image, every "
    "other item is an allowed option or its value"
)
COMMA = "should not be valid under {'pattern': '[,\\\\s]'}"
OUTSIDE = "has characters outside [A-Za-z0-9_.=:/+@%^-] (or is too long)"
OVERLAY_OWN = (
    "(type overlay takes index=, lowerdir=, metacopy=, nfs_export=, redirect_dir=, upperdir=, "
    "userxattr, uuid=, volatile, workdir=, xino= besides common ones such as ro, nosuid, nodev, "
    "noexec, noatime)"
)
TMPFS_OWN = (
    "(type tmpfs takes gid=, grpquota, huge=, inode32, inode64, mode=, mpol=, noswap, "
    "nr_blocks=, nr_inodes=, quota, size=, uid=, usrquota besides common ones such as ro, "
    "nosuid, nodev, noexec, noatime)"
)


@dataclass(frozen=True)
class Case:
    """`args` and both refusals may name {HOST} (the sentinel); `schema` may be {SCHEMA} or
    {SCHEMA@N} (see `expected_schema`)."""

    name: str
    tool: str
    args: dict[str, Any]
    schema: str | None  # the exact Invalid input, None: the schema cannot say it
    handler: str  # the exact ToolError of the handler run without the schema


def mkfs(name: str, fstype: str, options: list[str], schema: str | None, handler: str,
         **extra: Any) -> Case:  # fmt: skip
    args = {"target": "/images/a.img", "image": {"size": "128M"}, "type": fstype,
            "options": options, **extra}  # fmt: skip
    return Case(name, "storage.mkfs", args, schema, handler)


def mount(name: str, kind: str, options: list[str], schema: str | None, handler: str) -> Case:
    source = {"overlay": "overlay", "tmpfs": "tmpfs", "bind": "/srv/content"}.get(kind, "/a.img")
    args = {"target": "/srv/merged", "source": source, "type": kind, "options": options}
    return Case(name, "storage.mount", args, schema, handler)


def _mkfs_pattern(fstype: str, value: str, index: int) -> str:
    """The schema's exact words for an item no flag or value pattern of `fstype` takes."""
    pattern = mkfs_item_schema(fstype)["allOf"][1]["pattern"]
    return f"Invalid input: $.options[{index}]: {value!r} does not match {pattern!r}"


def _mount_key(kind: str, value: str, index: int) -> str:
    """The schema's exact words for an option outside `kind`'s allow-list."""
    pattern = mount_item_schema(kind)["allOf"][2]["pattern"]
    return f"Invalid input: $.options[{index}]: {value!r} does not match {pattern!r}"


MKFS_CASES = [
    mkfs("mkfs-btrfs-positional-host-file", "btrfs", ["{HOST}/host.img"],
         "{SCHEMA}", "options[0]: '{HOST}/host.img' " + POSITIONAL.format(t="btrfs")),
    mkfs("mkfs-ext4-positional-host-file", "ext4", ["-m", "0", "{HOST}/host.img"],
         "{SCHEMA}", "options[2]: '{HOST}/host.img' " + POSITIONAL.format(t="ext4")),
    mkfs("mkfs-xfs-positional-host-file", "xfs", ["{HOST}/host.img"],
         "{SCHEMA}", "options[0]: '{HOST}/host.img' " + POSITIONAL.format(t="xfs")),
    mkfs("mkfs-btrfs-positional-dev", "btrfs", ["-m", "dup", "/dev/sda"],
         "{SCHEMA}", "options[2]: '/dev/sda' " + POSITIONAL.format(t="btrfs")),
    mkfs("mkfs-ext4-positional-relative", "ext4", ["host.img"],
         None, "options[0]: 'host.img' " + POSITIONAL.format(t="ext4")),
    mkfs("mkfs-ext4-copy-host-dir", "ext4", ["-d", "{HOST}/etc"],
         "{SCHEMA@1}", f"options[0]: mkfs.ext4 option '-d' is not allowed (allowed: {EXT4_FLAGS})"),
    mkfs("mkfs-ext4-undo-file", "ext4", ["-z", "{HOST}/undo"],
         "{SCHEMA@1}", f"options[0]: mkfs.ext4 option '-z' is not allowed (allowed: {EXT4_FLAGS})"),
    mkfs("mkfs-ext4-badblocks-file", "ext4", ["-l", "{HOST}/etc/shadow"],
         "{SCHEMA@1}", f"options[0]: mkfs.ext4 option '-l' is not allowed (allowed: {EXT4_FLAGS})"),
    mkfs("mkfs-ext4-journal-device", "ext4", ["-J", "device={HOST}/host.img"], "{SCHEMA}",
         "options[1]: value 'device={HOST}/host.img' of mkfs.ext4 option -J must match "
         "size=[0-9]{1,6}"),
    mkfs("mkfs-ext4-comma-value", "ext4", ["-E", "lazy_itable_init=0,offset=0"],
         "Invalid input: $.options[1]: 'lazy_itable_init=0,offset=0' " + COMMA,
         "options[1]: mkfs argument 'lazy_itable_init=0,offset=0' has a comma: list every "
         "option as its own item (a comma would add options that are never checked)"),
    mkfs("mkfs-ext4-newline", "ext4", ["-m", "0\n"], "Invalid input: $.options[1]: '0\\n' " + COMMA,
         "options[1]: mkfs argument '0\\n' " + OUTSIDE),
    mkfs("mkfs-ext4-nul", "ext4", ["-m", "0\x00{HOST}/host.img"], "{SCHEMA}",
         "options[1]: mkfs argument '0\\x00{HOST}/host.img' " + OUTSIDE),
    mkfs("mkfs-ext4-quote", "ext4", ["-T", "small'"], "{SCHEMA}",
         "options[1]: mkfs argument \"small'\" " + OUTSIDE),
    mkfs("mkfs-ext4-dangling-flag", "ext4", ["-m"],
         None, "options[0]: mkfs.ext4 option -m needs a value (the next item)"),
    mkfs("mkfs-ext4-label-twice", "ext4", ["-L", "other"],
         None, "options[0]: -L sets the label, which `label` already sets", label="data"),
    mkfs("mkfs-xfs-protofile", "xfs", ["-p", "{HOST}/etc/proto"],
         "{SCHEMA@1}", f"options[0]: mkfs.xfs option '-p' is not allowed (allowed: {XFS_FLAGS})"),
    mkfs("mkfs-xfs-data-name", "xfs", ["-d", "name={HOST}/host.img"], "{SCHEMA}",
         "options[1]: value 'name={HOST}/host.img' of mkfs.xfs option -d must match "
         "(?:agcount|agsize|su|sw|sunit|swidth|cowextsize|extszinherit)=[0-9]{1,12}[kmgtbs]?"
         "|noalign|daxinherit=[01]|concurrency=[0-9]{1,4}"),
    mkfs("mkfs-xfs-logdev", "xfs", ["-l", "logdev={HOST}/host.img"], "{SCHEMA}",
         "options[1]: value 'logdev={HOST}/host.img' of mkfs.xfs option -l must match "
         "(?:size|sunit|su)=[0-9]{1,12}[kmgtbs]?|version=[12]|lazy-count=[01]"),
    mkfs("mkfs-btrfs-rootdir", "btrfs", ["--rootdir", "{HOST}/etc"], "{SCHEMA@1}",
         f"options[0]: mkfs.btrfs option '--rootdir' is not allowed (allowed: {BTRFS_FLAGS})"),
    mkfs("mkfs-btrfs-rootdir-short", "btrfs", ["-r", "{HOST}/etc"], "{SCHEMA@1}",
         f"options[0]: mkfs.btrfs option '-r' is not allowed (allowed: {BTRFS_FLAGS})"),
    mkfs("mkfs-btrfs-rootdir-glued", "btrfs", ["--rootdir={HOST}/etc"], "{SCHEMA}",
         f"options[0]: mkfs.btrfs option '--rootdir={{HOST}}/etc' is not allowed "
         f"(allowed: {BTRFS_FLAGS})"),
    mkfs("mkfs-btrfs-rootdir-via-link", "btrfs", ["--rootdir", "{HOST}/link"], "{SCHEMA@1}",
         f"options[0]: mkfs.btrfs option '--rootdir' is not allowed (allowed: {BTRFS_FLAGS})"),
]  # fmt: skip

MOUNT_CASES = [
    mount("mount-overlay-comma-upperdir", "overlay",
          ["lowerdir=/srv/lower,upperdir={HOST}/upper,workdir={HOST}/work"],
          "Invalid input: $.options[0]: 'lowerdir=/srv/lower,upperdir={HOST}/upper,"
          "workdir={HOST}/work' " + COMMA,
          "options[0]: mount option 'lowerdir=/srv/lower,upperdir={HOST}/upper,"
          "workdir={HOST}/work' has a comma: list every option as its own item (a comma "
          "would add options that are never checked)"),
    mount("mount-overlay-lowerdir-append", "overlay",
          ["lowerdir+={HOST}/etc", "upperdir=/srv/upper", "workdir=/srv/work"], "{SCHEMA}",
          f"options[0]: mount option 'lowerdir+=' is not in the allow-list of type overlay "
          f"{OVERLAY_OWN}"),
    mount("mount-overlay-datadir-append", "overlay", ["lowerdir=/srv/lower", "datadir+={HOST}/etc"],
          "{SCHEMA}", f"options[1]: mount option 'datadir+=' is not in the allow-list of type "
          f"overlay {OVERLAY_OWN}"),
    mount("mount-overlay-dotdot", "overlay",
          ["lowerdir=/srv/lower", "upperdir=/../../{HOST}/upper"],
          "{SCHEMA}", "options[1]: mount option upperdir= needs <path>: absolute, normalised paths "
          "of [A-Za-z0-9_.+@-] (mapped under the root), not '/../../{HOST}/upper'"),
    mount("mount-overlay-relative", "overlay", ["lowerdir=/srv/lower", "workdir=work"], "{SCHEMA}",
          "options[1]: mount option workdir= needs <path>: absolute, normalised paths of "
          "[A-Za-z0-9_.+@-] (mapped under the root), not 'work'"),
    mount("mount-overlay-escaped-colon", "overlay", ["lowerdir=/srv/a\\:{HOST}/etc"], "{SCHEMA}",
          "options[0]: mount option 'lowerdir=/srv/a\\\\:{HOST}/etc' " + OUTSIDE),
    mount("mount-ext4-journal-path", "ext4", ["journal_path={HOST}/host.img"], "{SCHEMA}",
          "options[0]: mount option 'journal_path=' is not in the allow-list of type ext4"),
    mount("mount-xfs-logdev", "xfs", ["logdev={HOST}/host.img"], "{SCHEMA}",
          "options[0]: mount option 'logdev=' is not in the allow-list of type xfs"),
    mount("mount-xfs-rtdev", "xfs", ["rtdev={HOST}/host.img"], "{SCHEMA}",
          "options[0]: mount option 'rtdev=' is not in the allow-list of type xfs"),
    mount("mount-btrfs-device", "btrfs", ["device={HOST}/host.img"], "{SCHEMA}",
          "options[0]: mount option 'device=' is not in the allow-list of type btrfs"),
    mount("mount-loop-device", "auto", ["loop=/dev/loop0"], "{SCHEMA}",
          "options[0]: mount option 'loop' takes no value"),
    mount("mount-loop-offset", "auto", ["offset=1048576"], "{SCHEMA}",
          "options[0]: mount option 'offset=' is not in the allow-list of type auto"),
    mount("mount-selinux-context", "tmpfs", ["context=system_u:object_r:shadow_t:s0"], "{SCHEMA}",
          f"options[0]: mount option 'context=' is not in the allow-list of type tmpfs "
          f"{TMPFS_OWN}"),
    mount("mount-x-systemd-path", "ext4", ["x-systemd.requires-mounts-for={HOST}"], "{SCHEMA}",
          "options[0]: mount option 'x-systemd.requires-mounts-for=' is not in the allow-list "
          "of type ext4"),
    mount("mount-tmpfs-comma", "tmpfs", ["size=1M,mode=0777"],
          "Invalid input: $.options[0]: 'size=1M,mode=0777' " + COMMA,
          "options[0]: mount option 'size=1M,mode=0777' has a comma: list every option as its "
          "own item (a comma would add options that are never checked)"),
    mount("mount-option-newline", "tmpfs", ["size=1M\n"],
          "Invalid input: $.options[0]: 'size=1M\\n' " + COMMA,
          "options[0]: mount option 'size=1M\\n' " + OUTSIDE),
    mount("mount-option-nul", "tmpfs", ["size=1M\x00upperdir={HOST}"], "{SCHEMA}",
          "options[0]: mount option 'size=1M\\x00upperdir={HOST}' " + OUTSIDE),
    mount("mount-option-quote", "tmpfs", ['mode="0777"'], "{SCHEMA}",
          "options[0]: mount option 'mode=\"0777\"' " + OUTSIDE),
    mount("mount-flag-with-value", "bind", ["ro={HOST}"], "{SCHEMA}",
          "options[0]: mount option 'ro' takes no value"),
    mount("mount-tmpfs-foreign-option", "tmpfs", ["upperdir={HOST}/upper"], "{SCHEMA}",
          f"options[0]: mount option 'upperdir=' is not in the allow-list of type tmpfs "
          f"{TMPFS_OWN}"),
]  # fmt: skip

# The schema's own words for the cases marked {SCHEMA}: an item that no flag/value
# pattern of the type takes, or whose key is not listed, or whose value misses its key's
# pattern (`then` of the key's if/then).
SCHEMA_FORMS = {
    "mkfs-ext4-nul": lambda h: _mkfs_pattern("ext4", f"0\x00{h}/host.img", 1),
    "mkfs-ext4-quote": lambda h: _mkfs_pattern("ext4", "small'", 1),
    "mount-overlay-dotdot": lambda h: _mount_value("overlay", f"upperdir=/../../{h}/upper", 1),
    "mount-overlay-relative": lambda h: _mount_value("overlay", "workdir=work", 1),
    "mount-overlay-escaped-colon": lambda h: _mount_charset(f"lowerdir=/srv/a\\:{h}/etc", 0),
    "mount-option-nul": lambda h: _mount_charset(f"size=1M\x00upperdir={h}", 0),
    "mount-option-quote": lambda h: _mount_charset('mode="0777"', 0),
}


def _mount_value(kind: str, value: str, index: int) -> str:
    key = value.partition("=")[0] + "="
    for rule in mount_item_schema(kind)["allOf"][3:]:
        if rule["if"]["pattern"] == f"^{key}":
            pattern = rule["then"]["pattern"]
            return f"Invalid input: $.options[{index}]: {value!r} does not match {pattern!r}"
    raise AssertionError(f"{key} has no value pattern")


def _mount_charset(value: str, index: int) -> str:
    return f"Invalid input: $.options[{index}]: {value!r} does not match {CHARSET.pattern!r}"


def _fill(value: Any, host: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{HOST}", str(host))
    if isinstance(value, list):
        return [_fill(v, host) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, host) for k, v in value.items()}
    return value


def expected_schema(case: Case, host: Path) -> str | None:
    """The exact Invalid input of `case`: written out, or the schema's words for the item
    the handler names ({SCHEMA}) or for item N ({SCHEMA@N}: jsonschema reports the value
    after a refused flag, which no value pattern takes either)."""
    if case.schema is None or not case.schema.startswith("{SCHEMA"):
        return _fill(case.schema, host)
    if case.name in SCHEMA_FORMS:
        return SCHEMA_FORMS[case.name](str(host))
    args = _fill(case.args, host)
    if case.schema.startswith("{SCHEMA@"):
        index = int(case.schema[len("{SCHEMA@") : -1])
    else:
        index = int(re.match(r"options\[(\d+)\]", case.handler)[1])  # type: ignore[index]
    value = args["options"][index]
    if case.tool == "storage.mkfs":
        return _mkfs_pattern(args["type"], value, index)
    return _mount_key(args["type"], value, index)


@pytest.mark.parametrize("case", MKFS_CASES + MOUNT_CASES, ids=lambda c: c.name)
def test_registry_refuses_and_nothing_changes(case: Case, world: World) -> None:
    args = _fill(case.args, world.host)
    assert schema_refusal(case.tool, args) == expected_schema(case, world.host)

    host_before, root_before = snapshot(world.host), snapshot(world.ns.root)
    mounts_before = world.mounts()
    reply = world.ns.tool(case.tool, args)  # the handler, without the schema in front
    assert snapshot(world.host) == host_before, reply  # (unchecked, btrfs formatted host.img)
    assert snapshot(world.ns.root) == root_before  # not even the image or target dir
    assert world.mounts() == mounts_before
    assert world.loops_on(world.host) == []
    assert reply["error"] == _fill(case.handler, world.host)
    assert reply["output"] is None


def test_every_spec_case_has_a_registry_twin() -> None:
    """Every attack family of tests/attack/specs/{mkfs,mount}-* reaches the registry too."""
    names = {c.name for c in MKFS_CASES + MOUNT_CASES}
    families = {
        "mkfs-btrfs-positional-host-file", "mkfs-btrfs-positional-dev", "mkfs-ext4-copy-host-dir",
        "mkfs-ext4-undo-file", "mkfs-ext4-badblocks-file", "mkfs-ext4-journal-device",
        "mkfs-ext4-comma-value", "mkfs-ext4-newline", "mkfs-ext4-nul", "mkfs-ext4-quote",
        "mkfs-ext4-dangling-flag", "mkfs-ext4-label-twice", "mkfs-xfs-protofile",
        "mkfs-xfs-data-name", "mkfs-xfs-logdev", "mkfs-btrfs-rootdir", "mkfs-btrfs-rootdir-short",
        "mkfs-btrfs-rootdir-glued", "mount-overlay-comma-upperdir", "mount-overlay-lowerdir-append",
        "mount-overlay-datadir-append", "mount-overlay-dotdot", "mount-overlay-relative",
        "mount-overlay-escaped-colon", "mount-ext4-journal-path", "mount-xfs-logdev",
        "mount-xfs-rtdev", "mount-btrfs-device", "mount-loop-device", "mount-loop-offset",
        "mount-selinux-context", "mount-x-systemd-path", "mount-tmpfs-comma",
        "mount-option-newline", "mount-option-nul", "mount-option-quote", "mount-flag-with-value",
        "mount-tmpfs-foreign-option",
    }  # fmt: skip
    corpus = Path(__file__).parent / "specs"
    assert families <= {p.stem for p in corpus.glob("*.expect")}
    assert families <= names


def test_the_sentinel_check_notices_a_byte_and_a_mode(tmp_path: Path) -> None:
    host = make_host(tmp_path / "host")
    before = snapshot(host)
    with (host / "host.img").open("r+b") as image:
        image.seek(IMAGE_SIZE - 1)
        image.write(b"x")
    assert snapshot(host) != before
    host = make_host(tmp_path / "host2")
    before = snapshot(host)
    (host / "upper").chmod(0o777)
    assert snapshot(host) != before


# --- positive controls: what is allowed really works, and stays under the root ----------------

ALLOWED_MKFS = [
    ("ext4", ["-m", "0", "-O", "^has_journal", "-E", "lazy_itable_init=0"], "128M"),
    ("xfs", ["-m", "crc=1", "-d", "agcount=2", "-K"], "320M"),
    ("btrfs", ["-m", "dup", "--data", "single", "-O", "no-holes"], "128M"),
]


@pytest.mark.parametrize(
    ("fstype", "options", "size"), ALLOWED_MKFS, ids=[f for f, *_ in ALLOWED_MKFS]
)
def test_allowed_mkfs_options_make_the_filesystem(
    fstype: str, options: list[str], size: str, fresh: World
) -> None:
    args = {"target": "/images/a.img", "image": {"size": size}, "type": fstype,
            "options": options, "label": "data"}  # fmt: skip
    assert schema_refusal("storage.mkfs", args) is None
    host_before = snapshot(fresh.host)
    made = fresh.ns.ok("storage.mkfs", args)
    assert made["output"]["type"] == fstype and made["output"]["label"] == "data"
    assert blkid(fresh.ns, fresh.ns.root / "images/a.img")["TYPE"] == fstype
    assert snapshot(fresh.host) == host_before


def test_overlay_layers_are_mapped_under_the_root(fresh: World) -> None:
    root, host = fresh.ns.root, fresh.host
    (root / "srv/lower").mkdir(parents=True)
    (root / "srv/lower/from-root").write_text("root's lower layer\n")
    decoy = root / str(host / "etc").lstrip("/")  # the host path, spelled under the root
    decoy.mkdir(parents=True)
    (decoy / "decoy").write_text("mapped\n")
    for name in ("upper", "work"):
        (root / "srv" / name).mkdir()
    options = [f"lowerdir=/srv/lower:{host}/etc", "upperdir=/srv/upper", "workdir=/srv/work"]
    args = {"target": "/srv/merged", "source": "overlay", "type": "overlay", "options": options}
    assert schema_refusal("storage.mount", args) is None
    host_before = snapshot(host)

    mounted = fresh.ns.ok("storage.mount", args)
    assert mounted["output"]["changed"]
    seen = fresh.ns.mounted("/srv/merged")
    assert seen is not None and seen["fstype"] == "overlay"
    assert f"upperdir={root}/srv/upper" in seen["options"].split(",")
    merged = sorted(fresh.ns.sh("ls", "-A", str(root / "srv/merged")).split())
    assert merged == ["decoy", "from-root"]  # not the host's shadow or proto
    fresh.ns.sh("sh", "-c", f"echo written > {root}/srv/merged/new")
    assert (root / "srv/upper/new").read_text() == "written\n"
    assert fresh.ns.ok("storage.mount", args)["output"]["changed"] is False  # mapped compare

    fresh.ns.restore(mounted)
    assert fresh.ns.mounted("/srv/merged") is None
    assert snapshot(host) == host_before


def test_a_refused_remount_leaves_the_mount_as_it_was(fresh: World) -> None:
    first = {"target": "/run/cache", "source": "tmpfs", "type": "tmpfs", "options": ["size=1M"]}
    fresh.ns.ok("storage.mount", first)
    before = fresh.ns.mounted("/run/cache")
    hostile = first | {"options": ["size=2M,mode=0777"]}
    assert schema_refusal("storage.mount", hostile) == (
        "Invalid input: $.options[0]: 'size=2M,mode=0777' " + COMMA
    )
    refused = fresh.ns.tool("storage.mount", hostile)
    assert refused["error"] == (
        "options[0]: mount option 'size=2M,mode=0777' has a comma: list every option as its "
        "own item (a comma would add options that are never checked)"
    )
    assert fresh.ns.mounted("/run/cache") == before


# Links planted in the root where overlay's layers are named: an absolute target means
# "from the root" and '..' stops there (registry.core.rootfs behind ctx.path), so each layer
# is the decoy under the root, never the sentinel host directory the link text names.
LAYER_LINKS = [
    ("lowerdir-absolute-link", "lowerdir", "{HOST}/etc", "{ROOT}{HOST}/etc"),
    ("lowerdir-relative-link", "lowerdir", "../../host/etc", "{ROOT}/host/etc"),
    ("upperdir-absolute-link", "upperdir", "{HOST}/upper", "{ROOT}{HOST}/upper"),
]


@pytest.mark.parametrize(
    ("name", "key", "link", "decoy"), LAYER_LINKS, ids=[c[0] for c in LAYER_LINKS]
)
def test_overlay_layer_links_resolve_inside_the_root(
    name: str, key: str, link: str, decoy: str, fresh: World
) -> None:
    root, host = fresh.ns.root, fresh.host
    fill = {"{HOST}": str(host), "{ROOT}": str(root)}
    for marker, value in fill.items():
        link, decoy = link.replace(marker, value), decoy.replace(marker, value)
    layers = {k: root / "srv" / k for k in ("lowerdir", "upperdir", "workdir")}
    for directory in layers.values():
        directory.mkdir(parents=True)
    (layers["lowerdir"] / "from-root").write_text("root's lower layer\n")
    Path(decoy).mkdir(parents=True)
    (Path(decoy) / "decoy").write_text("mapped\n")
    (root / "srv/evil").symlink_to(link)  # the link the attacker planted
    assert (root / "srv/evil").resolve() in (host / "etc", host / "upper")  # followed naively
    options = {k: f"{k}=/srv/{k}" for k in layers} | {key: f"{key}=/srv/evil"}
    args = {"target": "/srv/merged", "source": "overlay", "type": "overlay",
            "options": list(options.values())}  # fmt: skip
    assert schema_refusal("storage.mount", args) is None  # a normal path: the root decides
    host_before = snapshot(host)

    mounted = fresh.ns.ok("storage.mount", args)
    merged = root / "srv/merged"
    listed = sorted(fresh.ns.sh("ls", "-A", str(merged)).split())
    if key == "lowerdir":
        assert listed == ["decoy"]  # the decoy under the root, not the host's etc
    else:
        assert listed == ["decoy", "from-root"]  # (the upper layer shows too)
    fresh.ns.sh("sh", "-c", f"echo written > {merged}/new")
    written = Path(decoy if key == "upperdir" else layers["upperdir"]) / "new"
    assert written.read_text() == "written\n"
    fresh.ns.restore(mounted)
    assert fresh.ns.mounted("/srv/merged") is None
    assert snapshot(host) == host_before
