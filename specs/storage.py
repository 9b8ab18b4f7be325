"""Kind Storage: filesystems, mounts, directories and swap files.

A filesystem is made on a device or on an image file (created at `size`);
formatting something that already holds a filesystem is destructive and needs
`force: true`. Mounts name their source by path, LABEL= or UUID=, or a
pseudo-filesystem (tmpfs); `persist: true` keeps them in a managed block of
fstab. Directories get mode and owner. Swap files are created at `size`.

`mkfsOptions` and mount `options` are checked against the allow-lists of
contract.vocab.fsoptions for the filesystem type: no positional mkfs argument, no
option outside the list, no comma inside an item, path-valued keys only
where the registry maps them under its root. Mount targets and sources hold
no whitespace or '#' (the fstab line and the registry's fstab tool cannot
carry them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from contract.vocab.fsoptions import (
    LABEL_FLAGS,
    charset_problem,
    mkfs_problem,
    mount_option_problem,
)
from specs.base import Claim, Resource, ResourceSpec, SpecModel
from specs.types import AbsPath, FieldError, FileMode, ItemState, Size

FsType = Literal["ext4", "xfs", "btrfs"]
MountType = Literal["ext4", "xfs", "btrfs", "tmpfs", "bind", "overlay", "auto"]
_UID_OR_NAME = r"^([a-z_][a-z0-9_-]{0,31}|\d{1,10})$"
_FSTAB_UNSAFE = re.compile(r"[\s#]")
LABEL_LIMITS = {"ext4": 16, "xfs": 12, "btrfs": 255}


def _mount_option(value: str) -> str:
    if (problem := charset_problem("mount option", value)) is not None:
        raise ValueError(problem)
    return value


def _mkfs_option(value: str) -> str:
    if (problem := charset_problem("mkfs argument", value)) is not None:
        raise ValueError(problem)
    return value


def _fstab_safe(what: str, value: str) -> str:
    if _FSTAB_UNSAFE.search(value):
        raise ValueError(
            f"{what} {value!r} has whitespace or '#': a mount's fstab line and the "
            "registry's fstab entry cannot carry them"
        )
    return value


def _target(value: str) -> str:
    return _fstab_safe("mount target", value)


def _source(value: str) -> str:
    _fstab_safe("mount source", value)
    if value.startswith(("LABEL=", "UUID=")):
        tail = value.split("=", 1)[1]
        if not tail or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", tail):
            raise ValueError(f"source {value!r}: LABEL=/UUID= needs [A-Za-z0-9_.-]")
        return value
    if value in ("tmpfs", "none", "overlay"):
        return value
    if not value.startswith("/"):
        raise ValueError(f"source {value!r} must be an absolute path, LABEL=, UUID= or tmpfs")
    from specs.types import _abs_path

    return _abs_path(value)


MountOption = Annotated[str, AfterValidator(_mount_option)]
MkfsOption = Annotated[str, AfterValidator(_mkfs_option)]
MountSource = Annotated[str, AfterValidator(_source)]
MountTarget = Annotated[AbsPath, AfterValidator(_target)]


class Image(SpecModel):
    path: AbsPath
    size: Size


class Filesystem(SpecModel):
    device: AbsPath | None = None
    image: Image | None = None
    type: FsType = "ext4"
    label: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")] | None = None
    mkfs_options: tuple[MkfsOption, ...] = ()
    state: ItemState = "present"
    force: bool = Field(
        default=False,
        description="Allow formatting a device that already holds another filesystem, "
        "or deleting an image.",
    )

    @property
    def target(self) -> str:
        assert self.device or self.image
        return self.device if self.device else self.image.path  # type: ignore[union-attr]

    @model_validator(mode="after")
    def _one_source(self) -> Filesystem:
        if (self.device is None) == (self.image is None):
            raise ValueError("a filesystem needs exactly one of device or image")
        if self.label and len(self.label) > LABEL_LIMITS[self.type]:
            raise FieldError(
                ("label",), f"{self.type} labels are at most {LABEL_LIMITS[self.type]} characters"
            )
        if self.state == "absent" and self.device is not None:
            raise FieldError(
                ("state",), "state: absent applies to images only; devices are never wiped"
            )
        if (problem := mkfs_problem(self.type, self.mkfs_options)) is not None:
            raise FieldError(("mkfsOptions", problem[0]), problem[1])
        for i, item in enumerate(self.mkfs_options):
            if self.label and item in LABEL_FLAGS:
                raise FieldError(
                    ("mkfsOptions", i), f"{item} sets the label, which `label` already sets"
                )
        return self


class Mount(SpecModel):
    target: MountTarget
    source: MountSource
    type: MountType = "auto"
    options: tuple[MountOption, ...] = ()
    persist: bool = Field(default=True, description="Keep the mount in the managed fstab block.")
    state: ItemState = "present"

    @model_validator(mode="after")
    def _consistent(self) -> Mount:
        if self.target == "/":
            raise FieldError(("target",), "the root filesystem is not managed")
        if self.type == "tmpfs" and self.source != "tmpfs":
            raise FieldError(("source",), "a tmpfs mount has source: tmpfs")
        if self.source == "tmpfs" and self.type != "tmpfs":
            raise FieldError(("type",), "source tmpfs needs type: tmpfs")
        if self.type == "bind" and not self.source.startswith("/"):
            raise FieldError(("source",), "a bind mount's source is an absolute path")
        if self.type == "overlay" and self.source != "overlay":
            raise FieldError(("source",), "an overlay mount has source: overlay")
        if self.source == "overlay" and self.type != "overlay":
            raise FieldError(("type",), "source overlay needs type: overlay")
        for i, option in enumerate(self.options):
            if (problem := mount_option_problem(self.type, option)) is not None:
                raise FieldError(("options", i), problem)
        return self


class Directory(SpecModel):
    path: AbsPath
    mode: FileMode | None = None
    owner: Annotated[str, Field(pattern=_UID_OR_NAME)] | None = None
    group: Annotated[str, Field(pattern=_UID_OR_NAME)] | None = None
    state: ItemState = "present"
    force: bool = Field(default=False, description="Allow removing a non-empty directory.")

    @model_validator(mode="after")
    def _not_root(self) -> Directory:
        if self.path == "/":
            raise FieldError(("path",), "the root directory is not managed")
        return self


class Swapfile(SpecModel):
    path: AbsPath
    size: Size
    priority: Annotated[int, Field(ge=-1, le=32767)] | None = None
    state: ItemState = "present"


class StorageSpec(ResourceSpec):
    filesystems: tuple[Filesystem, ...] = ()
    mounts: tuple[Mount, ...] = ()
    directories: tuple[Directory, ...] = ()
    swapfiles: tuple[Swapfile, ...] = ()


class Storage(Resource):
    """Filesystems, mounts, directories and swap files of the target."""

    KIND = "Storage"
    kind: Literal["Storage"]
    spec: StorageSpec

    def claims(self) -> Iterator[Claim]:
        for i, fs in enumerate(self.spec.filesystems):
            field = "device" if fs.device else "image"
            yield Claim(key=f"filesystem:{fs.target}", loc=("spec", "filesystems", i, field))
        for i, mount in enumerate(self.spec.mounts):
            yield Claim(key=f"mount:{mount.target}", loc=("spec", "mounts", i, "target"))
        for i, directory in enumerate(self.spec.directories):
            yield Claim(key=f"directory:{directory.path}", loc=("spec", "directories", i, "path"))
        for i, swap in enumerate(self.spec.swapfiles):
            yield Claim(key=f"swapfile:{swap.path}", loc=("spec", "swapfiles", i, "path"))
