"""Mount options: how a spec's options compare with the kernel's, and what a mount step sends.

A spec's options must be present in the live options (a subset), after
normalisation:
- ignored (never in the kernel's list): `defaults`, `loop` (the tool sets up
  the loop device itself), `bind`/`rbind` (type: bind says it), and fstab-only
  options `auto`, `noauto`, `nofail`, `user`, `nouser`, `users`, `owner`,
  `group`, `_netdev`, `x-*`, `comment=*` — they still go to the fstab entry
  (a spec may declare only the allowed ones of contract.vocab.fsoptions: `auto`,
  `noauto`, `nofail`, `_netdev`; the rest matter only as read back from fstab);
- implied defaults the kernel does not list (`exec`, `suid`, `dev`, `async`,
  `atime`, `diratime`) hold while their negation (`noexec`, …) is absent;
- sizes compare in bytes (`size=64M` = findmnt's `size=65536k`, every suffix
  k..e; also `nr_blocks`, `nr_inodes`); `mode=0750` = `mode=750`: the normal
  form is contract.vocab.fsoptions.normal_mount_option, which storage.mount's
  "already mounted as wanted" check uses too;
- everything else compares literally (`rw`, `ro`, `noatime`, `nosuid`, …).
A fresh mount sends the options that are compared (not the ignored or
implied ones); a remount sends only the options that are missing, so every
option a step carries matters. `kernel_after` predicts the live list after a
mount or remount for the effect model. Pure; no specs (effects use it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from contract.vocab.fsoptions import normal_mount_option

IGNORED = frozenset(
    {"defaults", "loop", "bind", "rbind", "auto", "noauto", "nofail", "user", "nouser"}
    | {"users", "owner", "group", "_netdev"}
)
IGNORED_PREFIXES = ("x-", "X-", "comment=")
IMPLIED = {
    "exec": "noexec",
    "suid": "nosuid",
    "dev": "nodev",
    "async": "sync",
    "atime": "noatime",
    "diratime": "nodiratime",
}
NEGATES = {v: k for k, v in IMPLIED.items()} | {"rw": "ro", "ro": "rw"}


def ignored(option: str) -> bool:
    return option in IGNORED or option.startswith(IGNORED_PREFIXES)


def missing(wanted: Iterable[str], live: Sequence[str]) -> tuple[str, ...]:
    """The wanted options the live list does not satisfy (in the spec's order)."""
    have = {normal_mount_option(o) for o in live}
    out = []
    for option in wanted:
        if ignored(option):
            continue
        if option in IMPLIED:
            if IMPLIED[option] in have:
                out.append(option)
        elif normal_mount_option(option) not in have:
            out.append(option)
    return tuple(out)


def for_fresh_mount(wanted: Iterable[str]) -> tuple[str, ...]:
    """Options a first mount sends: the compared ones (not ignored, not implied)."""
    return tuple(o for o in wanted if not ignored(o) and o not in IMPLIED)


def kernel_after(live: Sequence[str], given: Sequence[str], *, fresh: bool) -> tuple[str, ...]:
    """The live option list after mounting (fresh) or remounting with `given`."""
    out = [] if fresh else list(live)
    if fresh:
        out.append("ro" if "ro" in given else "rw")
    for option in given:
        if option in IMPLIED:
            out = [o for o in out if o != IMPLIED[option]]
            continue
        if option in NEGATES:
            out = [o for o in out if o != NEGATES[option]]
        key, sep, _value = option.partition("=")
        if sep:
            out = [o for o in out if o.partition("=")[0] != key]
        if option not in out:
            out.append(option)
    return tuple(out)
