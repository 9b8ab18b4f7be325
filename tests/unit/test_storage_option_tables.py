"""The mkfs and mount option allow-lists: one table for the spec validator and the registry.

contract/vocab/fsoptions.py holds the tables and checks; the registry's storage
handlers and drivers import those very objects (registry/drivers/storage/optionpaths.py
adds only the overlay path mapping), and
contract/catalogue/storage.py turns them into JSON Schema (storage.mkfs /
storage.mount `options`). Here: the registry holds no copy of its own, the
checker's verdicts on a corpus, the registry's schema accepting exactly what
the checker accepts for single mount options,
no key but overlay's mapped ones takes a host path, what the examples and
tests use stays allowed, and no string pattern of the storage schemas lets a
trailing newline through.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import contract.vocab.fsoptions as spec
import registry.drivers.storage.optionpaths as reg
from contract.catalogue import parts as schema_parts
from contract.catalogue import storage as storage_defs
from contract.catalogue.storage import STORAGE_MKFS, STORAGE_MOUNT

MOUNT_KINDS = ("ext4", "xfs", "btrfs", "tmpfs", "bind", "overlay", "auto")
# Keys whose value is a path *inside* the filesystem being mounted, never a host path.
IN_FILESYSTEM = {"subvol="}


def test_the_registry_uses_the_spec_tables_themselves() -> None:
    """No second copy to drift: the registry checks with the spec module itself, and
    the path mapping defines none of its names (what it imports is the object itself)."""
    from registry.drivers.storage import mounting
    from registry.handlers import storage_mount

    assert mounting.fsoptions is spec and storage_mount.fsoptions is spec
    for name in ("MKFS", "MOUNT_COMMON", "MOUNT_BY_TYPE", "CHARSET", "MARKERS", "LABEL_FLAGS",
                 "DISK_TYPES", "mkfs_problem", "mount_option_problem", "mount_table"):  # fmt: skip
        assert getattr(reg, name, getattr(spec, name)) is getattr(spec, name), name


def test_auto_takes_every_disk_filesystem_option_and_no_pseudo_one() -> None:
    auto = spec.mount_table("auto")
    for fstype in spec.DISK_TYPES:
        assert set(spec.MOUNT_BY_TYPE[fstype]) <= set(auto)
    assert "lowerdir=" not in auto and "uid=" not in auto and "bind" not in auto


MKFS_CASES: list[tuple[str, list[str], int | None]] = [
    # (type, options, index of the refused item or None)
    ("ext4", ["-m", "0"], None),
    ("ext4", ["-L", "data", "-b", "4096", "-O", "^has_journal", "-E", "lazy_itable_init=0"], None),
    ("ext4", ["-j", "-J", "size=4", "-U", "random", "-T", "small"], None),
    ("xfs", ["-m", "crc=1", "-d", "agcount=4", "-l", "size=16m", "-n", "ftype=1", "-K"], None),
    ("btrfs", ["-m", "dup", "--data", "single", "--nodesize", "16k", "-O", "no-holes"], None),
    ("btrfs", ["--csum", "xxhash", "-M", "--label", "x"], None),
    ("btrfs", ["/tmp/host.img"], 0),
    ("btrfs", ["-m", "dup", "/dev/sda"], 2),
    ("ext4", ["/srv/other.img"], 0),
    ("xfs", ["../host.img"], 0),
    ("ext4", ["-d", "/etc"], 0),
    ("ext4", ["-l", "/etc/badblocks"], 0),
    ("ext4", ["-z", "/tmp/undo"], 0),
    ("ext4", ["-J", "device=/dev/sdb"], 1),
    ("ext4", ["-E", "offset=4096"], 1),
    ("ext4", ["-m"], 0),
    ("ext4", ["-m", "-d"], 1),
    ("ext4", ["-m0"], 0),
    ("ext4", ["-O", "^has_journal,metadata_csum"], 1),
    ("ext4", ["--", "-m", "0"], 0),
    ("xfs", ["-p", "/etc/proto"], 0),
    ("xfs", ["-d", "name=/host.img"], 1),
    ("xfs", ["-d", "file=1"], 1),
    ("xfs", ["-l", "logdev=/dev/sdb"], 1),
    ("xfs", ["-r", "rtdev=/dev/sdb"], 1),
    ("xfs", ["-c", "options=/etc/x"], 0),
    ("btrfs", ["--rootdir", "/etc"], 0),
    ("btrfs", ["-r", "/etc"], 0),
    ("btrfs", ["--rootdir=/etc"], 0),
    ("btrfs", ["--root", "/etc"], 0),
    ("btrfs", ["--subvol", "x"], 0),
    ("btrfs", ["-b", "1G"], 0),
    ("btrfs", ["-O", "quota\n"], 1),
    ("btrfs", ["-L", "a b"], 1),
]


@pytest.mark.parametrize(("fstype", "options", "refused"), MKFS_CASES)
def test_mkfs_checker_and_schema_agree(
    fstype: str, options: list[str], refused: int | None
) -> None:
    verdict = spec.mkfs_problem(fstype, options)
    assert (verdict[0] if verdict else None) == refused, verdict
    schema_ok = Draft202012Validator(STORAGE_MKFS.input_schema).is_valid(
        {"target": "/images/a.img", "type": fstype, "options": options}
    )
    if refused is None:
        assert schema_ok
    elif "/" in options[refused] or "," in options[refused] or "\n" in options[refused]:
        assert not schema_ok  # a path or comma never gets past the schema


MOUNT_CASES: list[tuple[str, str, bool]] = [
    ("ext4", "noatime", True),
    ("ext4", "loop", True),
    ("ext4", "errors=remount-ro", True),
    ("ext4", "barrier", True),
    ("ext4", "barrier=0", True),
    ("ext4", "journal_path=/dev/sdb", False),
    ("ext4", "journal_dev=2049", False),
    ("ext4", "usrjquota=aquota.user", False),
    ("ext4", "loop=/dev/loop0", False),
    ("ext4", "offset=4096", False),
    ("ext4", "sizelimit=4096", False),
    ("ext4", "context=system_u:object_r:tmp_t:s0", False),
    ("ext4", "noatime,upperdir=/HOST", False),
    ("ext4", "noatime\n", False),
    ("ext4", "noatime=1", False),
    ("ext4", "errors", False),
    ("xfs", "logdev=/dev/sdb", False),
    ("xfs", "rtdev=/dev/sdb", False),
    ("xfs", "logbsize=256k", True),
    ("btrfs", "device=/dev/sdb", False),
    ("btrfs", "subvol=@home", True),
    ("btrfs", "subvol=/a/../b", False),
    ("btrfs", "compress=zstd:3", True),
    ("btrfs", "x-systemd.requires-mounts-for=/HOST", False),
    ("tmpfs", "size=64M", True),
    ("tmpfs", "size=50%", True),
    ("tmpfs", "mode=0755", True),
    ("tmpfs", "uid=0", True),
    ("tmpfs", "gid=1000", True),
    ("tmpfs", "uid=root", False),
    ("tmpfs", "size=1M,mode=0777", False),
    ("tmpfs", "loop", False),
    ("bind", "ro", True),
    ("bind", "nosuid", True),
    ("bind", "rbind", True),
    ("bind", "discard", False),
    ("overlay", "lowerdir=/srv/lower", True),
    ("overlay", "lowerdir=/a:/b", True),
    ("overlay", "upperdir=/srv/upper", True),
    ("overlay", "workdir=/srv/work", True),
    ("overlay", "lowerdir=/srv/lower,upperdir=/HOST,workdir=/HOST", False),
    ("overlay", "lowerdir+=/HOST", False),
    ("overlay", "datadir+=/HOST", False),
    ("overlay", "lowerdir=/a/../../HOST", False),
    ("overlay", "lowerdir=/a::/b", False),
    ("overlay", "lowerdir=relative", False),
    ("overlay", "upperdir=/a//b", False),
    ("overlay", "upperdir=/a/", False),
    ("overlay", "upperdir=/a\\:b", False),
    ("overlay", "redirect_dir=on", True),
    ("auto", "noatime", True),
    ("auto", "subvol=@", True),
    ("auto", "lowerdir=/x", False),
    ("auto", "x-mount.mkdir", False),
    ("auto", "comment=x", False),
    ("auto", "user", False),
    ("auto", "shared", False),
]


@pytest.mark.parametrize(("kind", "option", "allowed"), MOUNT_CASES)
def test_mount_checker_and_schema_agree(kind: str, option: str, allowed: bool) -> None:
    verdict = spec.mount_option_problem(kind, option)
    assert (verdict is None) == allowed, verdict
    source = {"tmpfs": "tmpfs", "overlay": "overlay", "bind": "/srv/a"}.get(kind, "/a.img")
    args = {"target": "/srv", "source": source, "type": kind, "options": [option]}
    assert Draft202012Validator(STORAGE_MOUNT.input_schema).is_valid(args) == allowed


@pytest.mark.parametrize("kind", MOUNT_KINDS)
def test_only_mapped_keys_take_a_host_path(kind: str) -> None:
    """Every key, given '/HOST' (and a flag given '=/HOST'), is refused by both layers
    unless its value is one the registry maps under the root."""
    mount = Draft202012Validator(STORAGE_MOUNT.input_schema)
    source = {"tmpfs": "tmpfs", "overlay": "overlay", "bind": "/srv/a"}.get(kind, "/a.img")
    for key, pattern in spec.mount_table(kind).items():
        option = f"{key}/HOST" if key.endswith("=") else f"{key}=/HOST"
        expected = pattern in spec.MARKERS or key in IN_FILESYSTEM
        assert (spec.mount_option_problem(kind, option) is None) == expected, option
        args = {"target": "/srv", "source": source, "type": kind, "options": [option]}
        assert mount.is_valid(args) == expected, option


@pytest.mark.parametrize("fstype", sorted(spec.MKFS))
def test_no_mkfs_flag_takes_a_path(fstype: str) -> None:
    """'/HOST' after any flag is refused: as the flag's value, or as a positional."""
    for flag in spec.MKFS[fstype]:
        problem = spec.mkfs_problem(fstype, [flag, "/HOST"])
        assert problem is not None and problem[0] == 1, (flag, problem)


def test_what_examples_and_tests_use_stays_allowed() -> None:
    assert spec.mkfs_problem("ext4", ["-m", "0"]) is None
    for fstype in spec.MKFS:
        assert spec.mkfs_problem(fstype, ["-L", "label"]) is None
    for kind, options in {
        "ext4": ["loop", "noatime", "nodev", "nosuid", "noexec", "ro", "defaults", "nofail"],
        "tmpfs": ["size=64M", "mode=0755", "mode=0750", "uid=0", "gid=0", "nosuid", "nodev"],
        "bind": ["ro", "bind"],
        "overlay": ["lowerdir=/a:/b", "upperdir=/u", "workdir=/w"],
        "auto": ["nofail", "noatime", "exec"],
    }.items():
        for option in options:
            assert spec.mount_option_problem(kind, option) is None, (kind, option)


def test_map_paths_maps_overlay_layers_and_nothing_else(tmp_path: Path) -> None:
    def mapper(value: str) -> Path:
        return tmp_path / value.lstrip("/")

    mapped = reg.map_paths(
        "overlay", ["lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "index=off", "ro"], mapper
    )
    assert mapped == [
        f"lowerdir={tmp_path}/a:{tmp_path}/b",
        f"upperdir={tmp_path}/u",
        f"workdir={tmp_path}/w",
        "index=off",
        "ro",
    ]
    assert reg.map_paths("btrfs", ["subvol=/@home"], mapper) == ["subvol=/@home"]
    assert set(reg.path_keys("overlay")) == {"lowerdir=", "upperdir=", "workdir="}
    assert all(reg.path_keys(kind) == {} for kind in MOUNT_KINDS if kind != "overlay")


FRAGMENTS = {  # a valid value of every string pattern the storage tools' schemas use
    "ABS_PATH": (schema_parts.ABS_PATH, "/srv/data"),
    "OPTION": (schema_parts.OPTION, "noatime"),
    "USER_OR_ID": (schema_parts.USER_OR_ID, "root"),
    "MODE": (schema_parts.MODE, "0755"),
    "SIZE": (schema_parts.SIZE, "64M"),
    "SHA256": (schema_parts.SHA256, "a" * 64),
    "PKG_NAME": (schema_parts.PKG_NAME, "curl"),
    "PKG_VERSION": (schema_parts.PKG_VERSION, "1.2-1"),
    "URL": (schema_parts.URL, "http://127.0.0.1/x"),
    "LABEL": (storage_defs.LABEL, "data"),
    "SOURCE": (storage_defs.SOURCE, "/images/a.img"),
    "FIELD": (storage_defs.FIELD, "LABEL=data"),
}


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_no_pattern_lets_a_trailing_newline_through(name: str) -> None:
    """'$' matches before a final newline under re.search: every pattern ends with END."""
    schema, valid = FRAGMENTS[name]
    validator = Draft202012Validator(schema)
    assert validator.is_valid(valid)
    assert not validator.is_valid(valid + "\n")
    assert not validator.is_valid(valid + "\n" + valid)
