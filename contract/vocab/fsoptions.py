"""Allow-lists of mkfs arguments and mount options, per filesystem type, as data.

`mkfsOptions` is an argv tail and `options` a mount option list, so anything
not spelled out here is refused: a positional argument (mkfs would format it
as another device), a host directory to copy in (`mke2fs -d`, `mkfs.xfs -p`,
`mkfs.btrfs --rootdir`), an option value holding a comma (mount(8) joins the
list with commas, so `lowerdir=/a,upperdir=/HOST` would smuggle in a second
option), or a path-valued key the registry does not map under its root
(`lowerdir+=`, `datadir+=`, `journal_path=`, `logdev=`, `device=`, `loop=`,
`context=`, `x-*`, ...).

MKFS: type -> flag -> None (a flag on its own) or the pattern its value (the
next list item) must match in full. MOUNT_COMMON and MOUNT_BY_TYPE: option
key -> None for a plain option (`noatime`), or for a `key=` entry the pattern
of its value; PATH / PATHS mark the values the registry maps under its root
(overlay's layer directories: an absolute normalised path, or several joined
with ':'). `mount_table(kind)` is what one mount type accepts (`auto` takes
every disk filesystem's options).

Plain data and `re`, no pydantic: the registry imports these same tables
and checks (registry.drivers.storage.optionpaths adds the path mapping,
contract.catalogue.storage the JSON Schemas), so both layers judge alike. Used by
specs.storage (validation), controllers.storage.export (which exports only options
that validate), registry.drivers.storage.mounting and registry.handlers.storage_mount.

`normal_mount_option` is the one form a wanted option and findmnt's are compared
in: by the storage controller (controllers.storage.options) and by storage.mount
(registry.drivers.storage.mounting.wanted_options_present) alike.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from contract.vocab.sizes import MEMPARSE_SUFFIXES, memparse_bytes

Table = dict[str, str | None]

PATH = "<path>"
PATHS = "<path>[:<path>...]"
_COMPONENT = r"/(?!\.\.?(?:/|:|$))[A-Za-z0-9_.+@\-]+"
PATH_PATTERN = rf"(?:{_COMPONENT})+"
PATHS_PATTERN = rf"{PATH_PATTERN}(?::{PATH_PATTERN})*"
MARKERS = {PATH: PATH_PATTERN, PATHS: PATHS_PATTERN}

# Characters any mkfs argument or mount option may hold (the per-key patterns
# narrow it further); never a comma, whitespace, quote, backslash or NUL.
CHARSET = re.compile(r"^[A-Za-z0-9_.=:/+@%^\-]{1,256}$")

_NUM = r"[0-9]{1,12}"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_XFS_SIZE = r"[0-9]{1,12}[kmgtbs]?"
_BTRFS_PROFILE = r"raid0|raid1|raid1c3|raid1c4|raid5|raid6|raid10|dup|single"
_BTRFS_FEATURE = r"\^?[a-z0-9][a-z0-9_\-]{0,31}"
_BTRFS_SIZE = r"[0-9]{1,6}[kK]?"
_BTRFS_CSUM = r"crc32c|xxhash|xxhash64|sha256|blake2"


def _label(limit: int) -> str:
    return rf"[A-Za-z0-9_.][A-Za-z0-9_.\-]{{0,{limit - 1}}}"


MKFS: dict[str, Table] = {
    "ext4": {
        "-b": r"1024|2048|4096|8192|16384|32768|65536",
        "-C": r"[0-9]{1,10}[kKmM]?",
        "-e": r"continue|remount-ro|panic",
        "-E": (
            r"(?:stride|stripe_width|stripe-width|resize|num_backup_sb|packed_meta_blocks"
            r"|lazy_itable_init|lazy_journal_init|assume_storage_prezeroed|orphan_file_size)"
            rf"={_NUM}|root_owner=[0-9]{{1,10}}:[0-9]{{1,10}}|discard|nodiscard|test_fs"
            r"|quotatype=(?:usrquota|grpquota|prjquota)(?::(?:usrquota|grpquota|prjquota)){0,2}"
            r"|encoding=utf8(?:-12\.1)?"
        ),
        "-g": _NUM,
        "-G": _NUM,
        "-i": _NUM,
        "-I": r"128|256|512|1024|2048|4096",
        "-j": None,
        "-J": r"size=[0-9]{1,6}",
        "-L": _label(16),
        "-m": r"[0-9]{1,2}(?:\.[0-9]{1,3})?",
        "-N": _NUM,
        "-O": r"\^?[a-z0-9_]{1,32}",
        "-r": r"0|1",
        "-T": r"[a-z0-9_]{1,32}",
        "-U": rf"{_UUID}|clear|random|time",
    },
    "xfs": {
        "-b": r"size=(?:512|1024|2048|4096|8192|16384|32768|65536)",
        "-d": (
            rf"(?:agcount|agsize|su|sw|sunit|swidth|cowextsize|extszinherit)={_XFS_SIZE}"
            r"|noalign|daxinherit=[01]|concurrency=[0-9]{1,4}"
        ),
        "-i": (
            r"(?:size|perblock|maxpct)=[0-9]{1,6}"
            r"|(?:align|projid32bit|sparse|nrext64|exchange)=[01]|attr=[12]"
        ),
        "-K": None,
        "-l": rf"(?:size|sunit|su)={_XFS_SIZE}|version=[12]|lazy-count=[01]",
        "-L": _label(12),
        "-m": rf"(?:crc|finobt|rmapbt|reflink|inobtcount|bigtime|autofsck)=[01]|uuid={_UUID}",
        "-n": r"size=[0-9]{1,6}k?|version=(?:2|ci)|ftype=[01]|parent=[01]",
        "-r": rf"extsize={_XFS_SIZE}",
        "-s": r"size=(?:512|1024|2048|4096|8192|16384|32768)",
    },
    "btrfs": {
        "-d": _BTRFS_PROFILE,
        "--data": _BTRFS_PROFILE,
        "-m": _BTRFS_PROFILE,
        "--metadata": _BTRFS_PROFILE,
        "-M": None,
        "--mixed": None,
        "-n": _BTRFS_SIZE,
        "--nodesize": _BTRFS_SIZE,
        "-s": _BTRFS_SIZE,
        "--sectorsize": _BTRFS_SIZE,
        "-O": _BTRFS_FEATURE,
        "--features": _BTRFS_FEATURE,
        "-R": _BTRFS_FEATURE,
        "--runtime-features": _BTRFS_FEATURE,
        "-K": None,
        "--nodiscard": None,
        "-U": _UUID,
        "--uuid": _UUID,
        "--csum": _BTRFS_CSUM,
        "--checksum": _BTRFS_CSUM,
        "-L": _label(255),
        "--label": _label(255),
    },
}
# The flags that set the label: the `label` field says it already.
LABEL_FLAGS = ("-L", "--label")

_FLAGS = (
    "ro rw nosuid suid nodev dev noexec exec noatime atime nodiratime diratime relatime "
    "norelatime strictatime nostrictatime lazytime nolazytime sync async dirsync silent loud "
    "iversion noiversion defaults auto noauto nofail _netdev"
)
MOUNT_COMMON: Table = dict.fromkeys(_FLAGS.split())


def _flags(words: str) -> Table:
    return dict.fromkeys(words.split())


# A memparse size (contract.vocab.sizes: k..e, either case) or a percentage of RAM.
_MEM_SIZE = rf"[0-9]{{1,15}}[{MEMPARSE_SUFFIXES}]?|[0-9]{{1,3}}%"
_ON_OFF = r"on|off"
_DAX = r"always|never|inode"
MOUNT_BY_TYPE: dict[str, Table] = {
    "tmpfs": {
        **_flags("inode32 inode64 noswap quota usrquota grpquota"),
        "size=": _MEM_SIZE,
        "nr_blocks=": _MEM_SIZE,
        "nr_inodes=": _MEM_SIZE,
        "mode=": r"[0-7]{3,4}",
        "uid=": r"[0-9]{1,10}",
        "gid=": r"[0-9]{1,10}",
        "huge=": r"never|always|within_size|advise|deny|force",
        "mpol=": (
            r"(?:default|local|prefer|bind|interleave)(?:=(?:static|relative))?"
            r"(?::[0-9]{1,4}(?:-[0-9]{1,4})?)?"
        ),
    },
    "bind": _flags("bind rbind"),
    "overlay": {
        **_flags("volatile userxattr"),
        "lowerdir=": PATHS,
        "upperdir=": PATH,
        "workdir=": PATH,
        "redirect_dir=": r"on|off|follow|nofollow",
        "index=": _ON_OFF,
        "xino=": r"on|off|auto",
        "metacopy=": _ON_OFF,
        "nfs_export=": _ON_OFF,
        "uuid=": r"on|off|null|auto",
    },
    "ext4": {
        **_flags(
            "loop barrier nobarrier discard nodiscard noload norecovery user_xattr "
            "nouser_xattr acl noacl journal_checksum nojournal_checksum journal_async_commit "
            "delalloc nodelalloc nombcache dioread_nolock dioread_lock auto_da_alloc "
            "noauto_da_alloc block_validity noblock_validity noinit_itable grpid bsdgroups "
            "nogrpid sysvgroups quota noquota usrquota grpquota prjquota dax i_version nouid32"
        ),
        "errors=": r"continue|remount-ro|panic",
        "data=": r"journal|ordered|writeback",
        "data_err=": r"abort|ignore",
        "barrier=": r"0|1",
        "auto_da_alloc=": r"0|1",
        "commit=": _NUM,
        "stripe=": _NUM,
        "resgid=": r"[0-9]{1,10}",
        "resuid=": r"[0-9]{1,10}",
        "sb=": _NUM,
        "inode_readahead_blks=": _NUM,
        "init_itable=": _NUM,
        "max_batch_time=": _NUM,
        "min_batch_time=": _NUM,
        "journal_ioprio=": r"[0-7]",
        "dax=": _DAX,
    },
    "xfs": {
        **_flags(
            "loop attr2 noattr2 discard nodiscard grpid bsdgroups nogrpid sysvgroups "
            "filestreams ikeep noikeep inode32 inode64 largeio nolargeio nouuid noalign "
            "norecovery swalloc wsync quota usrquota uquota uqnoenforce qnoenforce gquota "
            "grpquota gqnoenforce pquota prjquota pqnoenforce noquota dax"
        ),
        "allocsize=": _XFS_SIZE,
        "logbufs=": r"[0-9]{1,2}",
        "logbsize=": _XFS_SIZE,
        "sunit=": _NUM,
        "swidth=": _NUM,
        "dax=": _DAX,
    },
    "btrfs": {
        **_flags(
            "loop compress compress-force space_cache nospace_cache clear_cache autodefrag "
            "noautodefrag ssd nossd ssd_spread nossd_spread discard nodiscard acl noacl "
            "barrier nobarrier datacow nodatacow datasum nodatasum flushoncommit "
            "noflushoncommit treelog notreelog user_subvol_rm_allowed skip_balance "
            "rescan_uuid_tree degraded enospc_debug noenospc_debug"
        ),
        "compress=": r"(?:zlib|lzo|zstd)(?::[0-9]{1,2})?|no",
        "compress-force=": r"(?:zlib|lzo|zstd)(?::[0-9]{1,2})?|no",
        "space_cache=": r"v1|v2",
        "discard=": r"sync|async",
        "commit=": _NUM,
        "max_inline=": r"[0-9]{1,12}[kKmMgG]?",
        "subvol=": r"/?[A-Za-z0-9_@+\-][A-Za-z0-9_.@+\-]*(?:/[A-Za-z0-9_@+\-][A-Za-z0-9_.@+\-]*)*",
        "subvolid=": _NUM,
        "thread_pool=": r"[0-9]{1,4}",
        "fatal_errors=": r"bug|panic",
        "rescue=": (
            r"(?:usebackuproot|nologreplay|ignorebadroots|ignoredatacsums|ignoremetacsums"
            r"|ignoresuperflags|all)(?::(?:usebackuproot|nologreplay|ignorebadroots"
            r"|ignoredatacsums|ignoremetacsums|ignoresuperflags|all))*"
        ),
    },
}
DISK_TYPES = ("ext4", "xfs", "btrfs")


@cache
def mount_table(kind: str) -> Table:
    """Every option a mount of type `kind` accepts (`auto`: any disk filesystem's)."""
    if kind != "auto":
        return {**MOUNT_COMMON, **MOUNT_BY_TYPE.get(kind, {})}
    merged: dict[str, list[str]] = {}
    flags: Table = dict(MOUNT_COMMON)
    for fstype in DISK_TYPES:
        for key, pattern in MOUNT_BY_TYPE[fstype].items():
            if pattern is None:
                flags[key] = None
            elif pattern not in merged.setdefault(key, []):
                merged[key].append(pattern)
    return flags | {key: "|".join(patterns) for key, patterns in merged.items()}


def _fullmatch(pattern: str, value: str) -> bool:
    return re.fullmatch(f"(?:{MARKERS.get(pattern, pattern)})", value) is not None


def _allowed(table: Table) -> str:
    """' (allowed: ...)' for a short table; a long one is only named."""
    return f" (allowed: {', '.join(sorted(table))})" if len(table) <= 40 else ""


def _not_listed(kind: str, option: str) -> str:
    own = {k: v for k, v in mount_table(kind).items() if k not in MOUNT_COMMON}
    besides = " besides common ones such as ro, nosuid, nodev, noexec, noatime"
    listed = f" (type {kind} takes {', '.join(sorted(own))}{besides})" if len(own) <= 24 else ""
    return f"mount option {option!r} is not in the allow-list of type {kind}{listed}"


def charset_problem(what: str, value: str) -> str | None:
    """Why `value` cannot be a mkfs argument or a mount option at all, or None."""
    if "," in value:
        return (
            f"{what} {value!r} has a comma: list every option as its own item "
            "(a comma would add options that are never checked)"
        )
    if not CHARSET.fullmatch(value):
        return f"{what} {value!r} has characters outside [A-Za-z0-9_.=:/+@%^-] (or is too long)"
    return None


def mkfs_problem(fstype: str, options: Sequence[str]) -> tuple[int, str] | None:
    """(index, message) of the first argument mkfs.`fstype` must not get, or None."""
    table = MKFS[fstype]
    i = 0
    while i < len(options):
        item = options[i]
        if (problem := charset_problem("mkfs argument", item)) is not None:
            return i, problem
        if item not in table:
            if item.startswith("-"):
                return i, f"mkfs.{fstype} option {item!r} is not allowed{_allowed(table)}"
            return i, (
                f"{item!r} is a positional argument: mkfs.{fstype} formats only the declared "
                "device or image, every other item is an allowed option or its value"
            )
        pattern = table[item]
        if pattern is None:
            i += 1
            continue
        if i + 1 >= len(options):
            return i, f"mkfs.{fstype} option {item} needs a value (the next item)"
        value = options[i + 1]
        if (problem := charset_problem("mkfs argument", value)) is not None:
            return i + 1, problem
        if not _fullmatch(pattern, value):
            return i + 1, f"value {value!r} of mkfs.{fstype} option {item} must match {pattern}"
        i += 2
    return None


def mount_option_problem(kind: str, option: str) -> str | None:
    """Why a mount of type `kind` must not get `option`, or None."""
    if (problem := charset_problem("mount option", option)) is not None:
        return problem
    table = mount_table(kind)
    key, sep, value = option.partition("=")
    if not sep:
        if option in table:
            return None
        if f"{option}=" in table:
            return f"mount option {option!r} needs a value ({option}=...)"
        return _not_listed(kind, option)
    pattern = table.get(f"{key}=")
    if pattern is None:
        if key in table:
            return f"mount option {key!r} takes no value"
        return _not_listed(kind, f"{key}=")
    if not _fullmatch(pattern, value):
        if pattern in MARKERS:
            return (
                f"mount option {key}= needs {pattern}: absolute, normalised paths "
                f"of [A-Za-z0-9_.+@-] (mapped under the root), not {value!r}"
            )
        return f"value {value!r} of mount option {key}= must match {pattern}"
    return None


# --- the normal form of a mount option -------------------------------------------
#
# One form for comparing a wanted option with what findmnt shows, used by the storage
# controller (controllers.storage.options: what a mount step still has to send) and by
# storage.mount ("already mounted as wanted": registry.drivers.storage.mounting), so the
# two can never disagree about whether a mount is as declared.

SIZE_KEYS = ("size", "nr_blocks", "nr_inodes")
_OCTAL = re.compile(r"[0-7]+")


def normal_mount_option(option: str) -> str:
    """`option` in the form findmnt's can be compared with.

    Sizes in bytes (`size=64M` and findmnt's `size=65536k` are both `size=67108864`; every
    memparse suffix k, m, g, t, p, e in either case; also nr_blocks= and nr_inodes=), an
    octal mode without leading zeros (`mode=0750` = `mode=750`); everything else, a
    percentage size such as `size=50%` included, as it is."""
    key, sep, value = option.partition("=")
    if not sep:
        return option
    if key in SIZE_KEYS and (size := memparse_bytes(value)) is not None:
        return f"{key}={size}"
    if key == "mode" and _OCTAL.fullmatch(value):
        return f"mode={int(value, 8):o}"
    return option
