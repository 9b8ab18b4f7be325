"""Attack corpus, registry side, area `root-`: registry.core.rootfs resolves like the kernel's
RESOLVE_IN_ROOT, and ToolContext.path never maps a path out of the root.

The reference is the kernel itself: openat2(2) with RESOLVE_IN_ROOT (called through
ctypes, syscall 437) on a root full of hostile links (absolute, relative, `..`
past the root, chains, links through links, dangling, a loop). For every target,
rootfs.canonical must name what the kernel opens (with and without following the
last link), a path the kernel cannot resolve must not exist where rootfs puts it,
a loop is ELOOP for both, and ctx.path must be inside the root (and the plain
lexical path whenever following that on the host means the same) -- a file
used as a directory included, where falling back to the spelled path would
let the host follow the link to its own directory.
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

import pytest

from registry.core import rootfs
from registry.core.errors import ToolError
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext

SYS_OPENAT2 = 437
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def kernel_resolve(root: Path, target: str, *, follow: bool) -> str | int:
    """The target path the kernel opens for `target` inside `root`, or its errno."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    how = OpenHow(flags, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    try:
        fd = _libc.syscall(SYS_OPENAT2, root_fd, target.encode(), ctypes.byref(how),
                           ctypes.sizeof(how))  # fmt: skip
        if fd < 0:
            return ctypes.get_errno()
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
    relative = Path(real).relative_to(root.resolve()).as_posix()
    return "/" if relative == "." else "/" + relative


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("resolve")
    outside = base / "outside"
    (outside / "etc").mkdir(parents=True)
    (outside / "etc" / "hosts").write_text("outside\n")
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("inside\n")
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "file").write_text("c\n")
    links = {
        "abs": "/a/b",
        "rel": "a/b",
        "up": "../../../../a",
        "a/b/up2": "../..",
        "a/b/c/toroot": "/",
        "a/b/c/dd": "../../../../../../etc",
        "chain1": "chain2",
        "chain2": "/a/b/c",
        "dang": "/nonexistent/x",
        "loop": "loop",
        "a/lnk-to-file": "/etc/hosts",
        "a/rel-file": "../etc/hosts",
        "a/b/back": "../../abs/c",
        "host": str(outside),
        "hostrel": "../outside",
        "hostetc": "../../../../../../../../" + str(outside / "etc").lstrip("/"),
        "a/b/c/deeper": "../../../hostrel/etc",
    }
    for link, text in links.items():
        (root / link).symlink_to(text)
    # a directory outside whose in-root twin is a file, and a link to it
    (base / "outside2" / "etc").mkdir(parents=True)
    (base / "outside2" / "etc" / "hosts").write_text("outside2\n")
    twin = root / str(base / "outside2").lstrip("/")
    twin.parent.mkdir(parents=True)
    twin.write_text("a file in the root\n")
    (root / "htwin").symlink_to(base / "outside2")
    return root


TARGETS = [
    "/",
    "/etc/hosts",
    "/abs",
    "/abs/c/file",
    "/rel/c",
    "/up/b/c/file",
    "/a/b/up2/etc/hosts",
    "/a/b/c/toroot/etc/hosts",
    "/a/b/c/dd/hosts",
    "/chain1",
    "/chain1/file",
    "/dang",
    "/a/lnk-to-file",
    "/a/rel-file",
    "/a/b/back/file",
    "/abs/up2/abs/c/toroot/rel/c/dd/hosts",
    "/host",
    "/host/etc/hosts",
    "/hostrel/etc/hosts",
    "/hostetc/hosts",
    "/a/b/c/deeper/hosts",
    "/missing/deeper/still",
    "/a/lnk-to-file/x",
    "/etc/hosts/x/y",
    "/htwin/etc/hosts",
]


@pytest.mark.parametrize("follow", [True, False], ids=["follow", "nofollow"])
@pytest.mark.parametrize("target", TARGETS, ids=[f"root-resolve-{t}" for t in TARGETS])
def test_rootfs_resolves_as_the_kernel_does_in_root(
    hostile_root: Path, target: str, follow: bool
) -> None:
    kernel = kernel_resolve(hostile_root, target, follow=follow)
    mine = rootfs.canonical(hostile_root, target, follow=follow)
    if isinstance(kernel, str):
        assert mine == kernel
    else:
        assert kernel in (errno.ENOENT, errno.ENOTDIR)
        with pytest.raises((FileNotFoundError, NotADirectoryError)):
            (hostile_root / mine.lstrip("/")).lstat()


@pytest.mark.parametrize("target", TARGETS, ids=[f"root-ctx-path-{t}" for t in TARGETS])
def test_ctx_path_stays_in_the_root(hostile_root: Path, target: str) -> None:
    ctx = ToolContext(ProcessRunner(), hostile_root, hostile_root, hostile_root, "x")
    mapped = ctx.path(target)
    real = os.path.realpath(mapped)
    assert real == str(hostile_root) or real.startswith(f"{hostile_root}/")
    kernel = kernel_resolve(hostile_root, target, follow=True)
    if isinstance(kernel, str):  # following the mapped path opens what the kernel opens
        assert real == os.path.realpath(hostile_root / kernel.lstrip("/"))
    lexical = hostile_root.joinpath(*rootfs.parts(target))
    if os.path.realpath(lexical) == real:
        assert mapped in (lexical, hostile_root)  # the spelled path, when it is harmless


def test_root_resolve_loop_is_eloop_for_both(hostile_root: Path) -> None:
    assert kernel_resolve(hostile_root, "/loop", follow=True) == errno.ELOOP
    with pytest.raises(ToolError, match="too many levels of symbolic links"):
        rootfs.canonical(hostile_root, "/loop", follow=True)
    ctx = ToolContext(ProcessRunner(), hostile_root, hostile_root, hostile_root, "x")
    with pytest.raises(ToolError, match=r"^cannot resolve '/loop/x' under the root"):
        ctx.path("/loop/x")
