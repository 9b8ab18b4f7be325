"""Paths under the registry's `--root`, resolved inside the root at the moment of use.

A target path ("/etc/hosts") names something under the scratch root, and a
symbolic link on the way must never lead out of it: an absolute link target
means "from the root", and `..` stops at the root, as if the registry ran
chrooted there (the semantics of openat2's RESOLVE_IN_ROOT).

How: an O_NOFOLLOW component walk. Each component is looked up with
`fstatat(AT_SYMLINK_NOFOLLOW)` relative to a directory fd the walk holds
(opened with O_PATH | O_NOFOLLOW | O_DIRECTORY), a link's text is read with
`readlinkat` and spliced into the rest of the path (absolute: from the root
fd; `..`: pop to the parent fd the walk came from, never above the root), at
most 40 links per path (ELOOP, as the kernel). The kernel itself never
follows a link during the walk, so a link swapped in between two steps is
just read and interpreted inside the root. openat2 would do the same for an
existing path, but it cannot map a path that does not exist yet (parents to
create, a file to write) and it is filtered in some sandboxes; one walk gives
one semantics for both the mapping and the fd-based operations.

Two ways to use it:

- `host_path(root, target)` (behind `ToolContext.path`, so every tool that
  maps a path and hands it to a command or a path-based call is covered):
  a host path that stays inside the root whether the caller follows its last
  component or not. It is the lexical mapping `<root>/<target>` when following
  that on the host means the same as inside the root (always so with root
  "/", and for links that stay inside); otherwise the parent directory as
  resolved inside the root, and, when the last component is a link that
  would lead elsewhere on the host, the link's in-root target instead of the
  link itself. The mapping holds at the moment it is made; a path-based call
  made later on it can still race a concurrent change.
- `entry(root, target, follow=…)`: a context manager giving the directory fd
  and the name of the last component (the race-free form): the file tools
  open, chmod, chown, create, rename and remove through it with `*at` calls
  that never follow a link at that name (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW).
  `follow=True` resolves a link in the last component inside the root first
  (chmod, write, read act on the link's in-root target); `follow=False` acts
  on the name itself (lstat, unlink, rename, symlink).

Refusals: a target that is not absolute, or holds a `..` component or NUL, is
a ToolError (`path must be absolute: …`, `path must not contain '..' or NUL:
…`); filesystem failures are OSError, for the tools to word.

Called by registry.core.tool (ToolContext.path), the fs.* tools
(registry.handlers.fs, fs_write, fs_base), storage.dir/state and the swap file
(registry.handlers.storage, storage_swap), and the model tools
(registry.handlers.model, registry.drivers.model.files, registry.drivers.model.download).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from registry.core.errors import ToolError

MAX_LINKS = 40  # the kernel's limit of links followed in one path
_RETRIES = 100  # a directory that keeps turning into something else while we open it
_PATH_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def parts(target: str) -> list[str]:
    """The components of an absolute target path; ToolError for a hostile one."""
    if not target.startswith("/"):
        raise ToolError(f"path must be absolute: {target!r}")
    found = [p for p in target.split("/") if p not in ("", ".")]
    if ".." in found or "\x00" in target:
        raise ToolError(f"path must not contain '..' or NUL: {target!r}")
    return found


class _Walk:
    """The chain of directories from the root to where a resolution stands, held open."""

    def __init__(self, root_fd: int) -> None:
        self.fds = [root_fd]
        self.names: list[str] = []

    @property
    def top(self) -> int:
        return self.fds[-1]

    def push(self, fd: int, name: str) -> None:
        self.fds.append(fd)
        self.names.append(name)

    def pop(self) -> None:
        """`..`: back to the parent; at the root, stay (it is its own parent)."""
        if len(self.fds) > 1:
            os.close(self.fds.pop())
            self.names.pop()

    def to_root(self) -> None:
        while len(self.fds) > 1:
            self.pop()

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


@dataclass
class _Result:
    name: str | None  # last component, in the directory `walk.top`; None: `walk.top` itself
    missing: list[str]  # a parent was missing: the rest, lexically (nothing there can be a link)
    is_link: bool  # the last component exists and is a symbolic link (follow=False only)
    blocked: bool = False  # `missing` starts at a file used as a directory (ENOTDIR)
    links: int = 0  # links followed on the way


def _rest(first: str, pending: deque[str], *, blocked: bool = False) -> list[str]:
    """A missing component (or a file used as a directory) and what follows it:
    nothing below it can exist, so nothing there can be a link. A `..` after it
    (only link text can carry one) fails as the kernel fails it — ENOENT, or
    ENOTDIR below a file — rather than climbing back into directories that do
    exist, whose links this walk would then never have resolved."""
    out: list[str] = []
    for comp in (first, *pending):
        if comp == "..":
            code = errno.ENOTDIR if blocked else errno.ENOENT
            raise OSError(code, os.strerror(code))
        if comp not in ("", "."):
            out.append(comp)
    return out


def _resolve(
    walk: _Walk, names: list[str], *, follow: bool, create: bool, mode: int = 0o777
) -> _Result:
    """Walk `names` from the root inside it (see the module docstring)."""
    pending: deque[str] = deque(names)
    links = retries = 0
    while pending:
        comp = pending.popleft()
        if comp in ("", "."):
            continue
        if comp == "..":
            walk.pop()
            continue
        last = all(p in ("", ".") for p in pending)
        try:
            st = os.stat(comp, dir_fd=walk.top, follow_symlinks=False)
        except FileNotFoundError:
            if last:
                return _Result(comp, [], False, links=links)
            if not create:
                return _Result(None, _rest(comp, pending), False, links=links)
            with contextlib.suppress(FileExistsError):
                os.mkdir(comp, mode, dir_fd=walk.top)
            pending.appendleft(comp)
            continue
        if stat.S_ISLNK(st.st_mode):
            if last and not follow:
                return _Result(comp, [], True, links=links)
            links += 1
            if links > MAX_LINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links")
            try:
                text = os.readlink(comp, dir_fd=walk.top)
            except OSError as exc:  # no longer a link: look again
                retries += 1
                if exc.errno not in (errno.EINVAL, errno.ENOENT) or retries > _RETRIES:
                    raise
                links -= 1
                pending.appendleft(comp)
                continue
            if text.startswith("/"):
                walk.to_root()
            pending.extendleft(reversed(text.split("/")))
            continue
        if last:
            return _Result(comp, [], False, links=links)
        if not stat.S_ISDIR(st.st_mode):  # a file used as a directory: nothing is below it
            return _Result(
                None, _rest(comp, pending, blocked=True), False, blocked=True, links=links
            )
        try:
            fd = os.open(comp, _PATH_DIR, dir_fd=walk.top)
        except OSError as exc:  # replaced since the stat: look again
            retries += 1
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT) or retries > _RETRIES:
                raise
            pending.appendleft(comp)
            continue
        walk.push(fd, comp)
    return _Result(None, [], False, links=links)


class _NoRoot(Exception):
    """The root itself is missing (or not a directory): nothing under it can be a link."""


def _open_root(root: Path) -> int:
    try:
        return os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise _NoRoot from None


def _located(root: Path, target: str, *, follow: bool) -> tuple[Path, _Result]:
    """(host path as resolved inside the root, what the walk found); _NoRoot without
    a root, ToolError when the resolution fails (ELOOP)."""
    walk = _Walk(_open_root(root))
    try:
        found = _resolve(walk, parts(target), follow=follow, create=False)
        tail = found.missing or ([found.name] if found.name is not None else [])
        return root.joinpath(*walk.names, *tail), found
    except OSError as exc:
        raise ToolError(f"cannot resolve {target!r} under the root: {exc.strerror}") from None
    finally:
        walk.close()


def host_path(root: Path, target: str) -> Path:
    """A host path for `target` that stays inside `root` however it is used (docstring)."""
    names = parts(target)
    lexical = root.joinpath(*names)
    if not names:
        return root
    try:
        entry_form, found = _located(root, target, follow=False)
        if not found.links and not found.is_link:
            return lexical  # no link on the way: the spelled path is the resolved one
        followed = _located(root, target, follow=True)[0] if found.is_link else entry_form
    except _NoRoot:
        return lexical
    real = os.path.realpath(followed)
    home = os.path.realpath(root)
    if real != home and not real.startswith(home.rstrip("/") + "/"):
        # Defence in depth: a resolution inside the root can never land outside it.
        raise ToolError(f"{target!r} resolves outside the root; refusing it")
    if os.path.realpath(lexical) == real and os.path.realpath(lexical.parent) == os.path.realpath(
        entry_form.parent
    ):
        return lexical
    return entry_form if os.path.realpath(entry_form) == real else followed


def entry_path(root: Path, target: str) -> Path:
    """Host path of `target` itself: its parent resolved inside the root, the last
    component as it is (a link stays a link). For lstat-style reads and for commands
    that act on the name; never follow its last component."""
    names = parts(target)
    try:
        return _located(root, target, follow=False)[0]
    except _NoRoot:
        return root.joinpath(*names)


def canonical(root: Path, target: str, *, follow: bool) -> str:
    """The target path of what `target` denotes, with every link on the way resolved
    inside the root (and the last one too when `follow`): what a before-image records."""
    names = parts(target)
    try:
        host = _located(root, target, follow=follow)[0]
    except _NoRoot:
        return "/" + "/".join(names)
    relative = host.relative_to(root).as_posix()
    return "/" if relative == "." else "/" + relative


def _no_follow(fn_name: str, exc: BaseException) -> OSError:
    """os.chmod(follow_symlinks=False) says 'unavailable' for a link: never follow it."""
    return OSError(errno.ELOOP, f"{fn_name}: the name is a symbolic link ({exc})")


@dataclass
class Entry:
    """The last component of a resolved target: `name` in the directory `dir_fd`."""

    dir_fd: int
    name: str  # "." for the root itself
    path: str  # target path of this entry ("/etc/hosts"), links on the way resolved
    host: Path  # the same as a host path (for messages, caches and commands)

    def lstat(self) -> os.stat_result | None:
        try:
            return os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def kind(self) -> str | None:
        """'file', 'dir', 'symlink', 'other', or None when nothing is there."""
        st = self.lstat()
        if st is None:
            return None
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            return "symlink"
        return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"

    def open(self, flags: int, mode: int = 0o666) -> int:
        """open(2) of the name itself: a link there fails with ELOOP, never followed."""
        return os.open(self.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=self.dir_fd)

    def open_dir(self) -> int:
        """A readable fd of the directory at this name (not through a link)."""
        return self.open(os.O_RDONLY | os.O_DIRECTORY)

    def read_bytes(self) -> bytes:
        with os.fdopen(self.open(os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            return f.read()

    def chmod(self, mode: int) -> None:
        try:
            os.chmod(self.name, mode, dir_fd=self.dir_fd, follow_symlinks=False)
        except (NotImplementedError, ValueError) as exc:
            raise _no_follow("chmod", exc) from None

    def chown(self, uid: int, gid: int) -> None:
        os.chown(self.name, uid, gid, dir_fd=self.dir_fd, follow_symlinks=False)

    def mkdir(self, mode: int = 0o777) -> None:
        os.mkdir(self.name, mode, dir_fd=self.dir_fd)

    def rmdir(self) -> None:
        os.rmdir(self.name, dir_fd=self.dir_fd)

    def unlink(self) -> None:
        os.unlink(self.name, dir_fd=self.dir_fd)

    def rmtree(self) -> None:
        """Remove the directory at this name and everything in it (fd-based, no link
        is followed: shutil.rmtree's safe implementation)."""
        shutil.rmtree(self.name, dir_fd=self.dir_fd)

    def remove(self) -> None:
        """Whatever is at this name: a directory tree, or a file or link itself."""
        if self.kind() == "dir":
            self.rmtree()
        else:
            self.unlink()

    def symlink(self, text: str) -> None:
        os.symlink(text, self.name, dir_fd=self.dir_fd)

    def readlink(self) -> str:
        return os.readlink(self.name, dir_fd=self.dir_fd)

    def dup(self) -> Entry:
        """The same entry on a duplicate directory fd (for a thread that may outlive the
        caller's `with entry(...)`); whoever gets it closes `dir_fd`."""
        return Entry(os.dup(self.dir_fd), self.name, self.path, self.host)

    def sibling(self, name: str) -> Entry:
        """Another name in the same directory (`<name>.bak`, `.part`, a temporary)."""
        parent = self.path.rsplit("/", 1)[0]
        return Entry(self.dir_fd, name, f"{parent}/{name}", self.host.with_name(name))

    def fsync_dir(self) -> None:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.dir_fd)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def entry(
    root: Path, target: str, *, follow: bool, parents: bool = False, mode: int = 0o777
) -> Iterator[Entry]:
    """The entry `target` denotes under `root`, resolved inside it (module docstring).

    `follow`: a link in the last component is resolved (inside the root) too.
    `parents`: missing parent directories are created (with `mode`, less the
    umask); otherwise a missing parent is FileNotFoundError.
    """
    names = parts(target)
    try:
        walk = _Walk(_open_root(root))
    except _NoRoot:
        raise FileNotFoundError(errno.ENOENT, "no such root directory", str(root)) from None
    try:
        found = _resolve(walk, names, follow=follow, create=parents, mode=mode)
        if found.blocked:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", target)
        if found.missing:
            raise FileNotFoundError(errno.ENOENT, "no such directory", target)
        if found.name is not None:
            dir_fd, name, chain = walk.top, found.name, [*walk.names, found.name]
        elif len(walk.fds) > 1:  # the walk ended on a directory (via '..'): its parent's entry
            dir_fd, name, chain = walk.fds[-2], walk.names[-1], list(walk.names)
        else:
            dir_fd, name, chain = walk.top, ".", []
        yield Entry(dir_fd, name, "/" + "/".join(chain), root.joinpath(*chain))
    finally:
        walk.close()


def is_dir(root: Path, target: str) -> bool:
    """Whether `target`, followed inside the root, is a directory."""
    try:
        with entry(root, target, follow=True) as found:
            return found.kind() == "dir"
    except (FileNotFoundError, NotADirectoryError):
        return False


def lexists(root: Path, target: str) -> bool:
    """Whether something (a dangling link too) is at `target` itself."""
    try:
        with entry(root, target, follow=False) as found:
            return found.lstat() is not None
    except (FileNotFoundError, NotADirectoryError):
        return False


def first_missing(root: Path, target: str) -> str | None:
    """The top-most component of `target` that does not exist yet (links on the way
    resolved inside the root, the last one not followed), None when it all exists."""
    names = parts(target)
    for i in range(1, len(names) + 1):
        candidate = "/" + "/".join(names[:i])
        try:
            with entry(root, candidate, follow=False) as found:
                if found.lstat() is None:
                    return candidate
        except (FileNotFoundError, NotADirectoryError):
            return candidate
    return None


def copy_file(source: Entry, destination: Entry, *, times: bool, owner: bool = False) -> None:
    """Copy a regular file's content and permission bits (and times, owner) by fd."""
    src = source.open(os.O_RDONLY | os.O_NONBLOCK)  # a fifo does not block the copy
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", source.path)
        dst = destination.open(os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _copy_fd(src, dst, st, times=times, owner=owner)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_fd(src: int, dst: int, st: os.stat_result, *, times: bool, owner: bool) -> None:
    with os.fdopen(os.dup(src), "rb") as reader, os.fdopen(os.dup(dst), "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
    if owner:
        os.fchown(dst, st.st_uid, st.st_gid)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    if times:
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def copy_tree(src_dir: int, dst_dir: int, *, owner: bool = False) -> None:
    """Copy the content of directory fd `src_dir` into directory fd `dst_dir`.

    Links are copied as links (their text verbatim), files with content, mode and
    times, directories recursively; an existing directory at the destination is
    merged into, an existing file replaced. Nothing on either side is reached
    through a link (every step is an `*at` call on a held fd with O_NOFOLLOW).
    Other file types (fifos, devices, sockets) are refused with EINVAL.
    """
    with os.scandir(src_dir) as it:
        children = sorted(it, key=lambda e: e.name)
    for child in children:
        st = child.stat(follow_symlinks=False)
        name = child.name
        if stat.S_ISLNK(st.st_mode):
            text = os.readlink(name, dir_fd=src_dir)
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISDIR(os.stat(name, dir_fd=dst_dir, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=dst_dir)
            os.symlink(text, name, dir_fd=dst_dir)
            if owner:
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
        elif stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=dst_dir)
            sub_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=src_dir)
            try:
                sub_dst = os.open(
                    name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dst_dir
                )
                try:
                    copy_tree(sub_src, sub_dst, owner=owner)
                    if owner:
                        os.fchown(sub_dst, st.st_uid, st.st_gid)
                    os.fchmod(sub_dst, stat.S_IMODE(st.st_mode))
                    os.utime(sub_dst, ns=(st.st_atime_ns, st.st_mtime_ns))
                finally:
                    os.close(sub_dst)
            finally:
                os.close(sub_src)
        elif stat.S_ISREG(st.st_mode):
            source, destination = (
                Entry(src_dir, name, name, Path(name)),
                Entry(dst_dir, name, name, Path(name)),
            )
            copy_file(source, destination, times=True, owner=owner)
        else:
            raise OSError(errno.EINVAL, "not a file, directory or link", name)
