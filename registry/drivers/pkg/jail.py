"""Run a package manager's maintainer scripts confined to a scratch root (`--root` != "/").

Why: on a scratch root dpkg runs with `--root=ROOT --force-script-chrootless`:
maintainer scripts (preinst, postinst, prerm, postrm, triggers) run with
`DPKG_ROOT` set but against the registry host's filesystem, as uid 0, so a
script that ignores `DPKG_ROOT` writes the host. A plain `chroot ROOT` is
not possible: a scratch root usually has no shell, no dpkg and no libc (the
sandbox's holds only the packages under test), and a chroot does not hold
against uid 0 anyway.

How: the program (dpkg, or apk) runs in a jail built from new namespaces —
mount, PID, IPC, UTS and (for dpkg) network — whose `/` is a fresh tmpfs
holding only:

- the host's system directories `/usr`, `/etc` and the `/bin`, `/sbin`,
  `/lib*` links (or directories), bind-mounted read-only, nosuid, nodev: the
  programs dpkg and the scripts need, never writable;
- ROOT, at its own absolute path (dpkg's `--root`/`--admindir`/`--log` and
  apt's archive paths stay valid), writable, nosuid, nodev (a device node a
  package creates there cannot be opened); mounts below ROOT are read-only;
- a minimal `/dev` (null, zero, full, random, urandom, tty bound from the
  host; fd/stdin/stdout/stderr links), a private `/dev/shm`, a read-only
  `/proc` of the new PID namespace (no `/proc/sys` writes), and empty tmpfs
  `/tmp`, `/run` and `/var/tmp` (thrown away with the jail); the jail's `/`
  itself is read-only, so a write anywhere else fails instead of vanishing.

Nothing else of the host is visible: not /home, /root, /srv, /var, the
registry's state or sockets (a script cannot ask systemd, tmux or the
registry itself to act for it). The old root is detached after
`pivot_root`. The program then runs through util-linux `setpriv` with
no_new_privs, empty inheritable and ambient sets and a bounding set of only
what dpkg needs (chown, dac_override, fowner, fsetid, kill, setgid, setuid,
setfcap, sys_chroot, net_bind_service): without sys_admin no mount can be
undone, without dac_read_search no `open_by_handle_at` can reach a host
inode through ROOT's filesystem, without sys_module/sys_rawio/sys_ptrace/
sys_time/net_admin/mknod the kernel and other processes are out of reach;
signals reach only the jail's PID namespace, and when the jail's first
process ends every process a script left behind is killed. A script that
ignores `DPKG_ROOT` and writes, changes or deletes a host path therefore
fails with "Read-only file system" or "No such file or directory", dpkg
reports the script's failure, and pkg.ensure rolls the transaction back.

If any step cannot be done (no permission to create namespaces, an old
kernel without open_tree/mount_setattr, no setpriv), nothing runs: the jail
prints `E: aios pkg jail: cannot confine ... to ROOT: <step>: <reason>` and
exits 100, so apt and the tool report that the package was refused.

The host's secrets under /etc are hidden: `/dev/null` is bound over each
file of SECRET_FILES (shadow, gshadow, their backups, sudoers) and an empty
read-only tmpfs over each directory of SECRET_DIRS (ssh host keys, sudoers.d,
ssl private keys), so a script cannot copy them into ROOT where `fs.read`
would hand them out.

Not confined: the network for apk (it downloads and runs scripts in one
process; dpkg gets an empty network namespace), reads of the rest of the
host's /usr and /etc (a script can copy them into ROOT), CPU and memory
(each tmpfs is capped at 256 MiB).

apt reaches the jail through the wrapper `write_wrapper` writes (a shell
script named by the APT_CONFIG as `Dir::Bin::dpkg`): apt itself, its
downloads and its index reads run unconfined, every dpkg it starts runs
confined, except dpkg's pure queries (`--print-foreign-architectures`,
`--assert-*` ...), which run no script and go straight to dpkg. This file
imports nothing but the standard library: it is executed as a script by the
wrapper (`python -I -S jail.py ...`). Written and used by registry.drivers.pkg.apt
and registry.drivers.pkg.apk.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

REFUSED = 100  # dpkg's own exit status for a fatal error
TMPFS_SIZE = "256m"
SYSTEM_DIRS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
SECRET_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers")
SECRET_DIRS = ("/etc/ssh", "/etc/sudoers.d", "/etc/ssl/private")
KEEP_CAPS = (
    "chown",
    "dac_override",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setfcap",
    "sys_chroot",
    "net_bind_service",
)
# dpkg actions that read the database and run no maintainer script.
DPKG_QUERIES = frozenset(
    {
        "--print-architecture",
        "--print-foreign-architectures",
        "--assert-multi-arch",
        "--assert-protected-field",
        "--assert-versioned-provides",
        "--assert-working-epoch",
        "--assert-long-filenames",
        "--assert-multi-conrep",
        "--assert-support-predepends",
        "--compare-versions",
        "--version",
    }
)
_QUERY_OPTIONS = ("--root=", "--admindir=", "--log=", "--force-")

# Linux ABI (include/uapi/linux/{sched,mount,fcntl,prctl}.h).
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
MNT_DETACH = 2
OPEN_TREE_CLONE, OPEN_TREE_CLOEXEC, AT_RECURSIVE, AT_EMPTY_PATH = 1, 0o2000000, 0x8000, 0x1000
MOVE_MOUNT_F_EMPTY_PATH = 4
ATTR_RDONLY, ATTR_NOSUID, ATTR_NODEV, ATTR_NOEXEC = 1, 2, 4, 8
PR_SET_PDEATHSIG = 1
AT_FDCWD = -100
_SYSCALLS = {  # machine -> (open_tree, move_mount, mount_setattr, pivot_root)
    "x86_64": (428, 429, 442, 155),
    "aarch64": (428, 429, 442, 41),
}


class JailError(Exception):
    """A confinement step failed; str() says which step and why."""


def is_query(args: Sequence[str]) -> bool:
    """True when dpkg `args` only ask a question (no package is unpacked or configured)."""
    actions = [a for a in args if not a.startswith(_QUERY_OPTIONS)]
    return (
        len(actions) >= 1
        and actions[0] in DPKG_QUERIES
        and all(not a.startswith("-") for a in actions[1:])
    )


def wrapper_text(root: Path, program: str, *, network: bool) -> str:
    """The shell script that runs `program "$@"` in the jail for scratch root `root`."""
    words = [
        sys.executable,
        "-I",
        "-S",
        str(Path(__file__).resolve()),
        "run",
        str(root),
        "net" if network else "nonet",
        program,
    ]
    return (
        "#!/bin/sh\n# aios pkg jail (registry/drivers/pkg/jail.py); generated\nexec "
        + " ".join(shlex.quote(w) for w in words)
        + ' "$@"\n'
    )


def write_wrapper(path: Path, root: Path, program: str, *, network: bool) -> Path:
    """Write (when changed, atomically) the wrapper script at `path`, mode 0755."""
    text = wrapper_text(root, program, network=network)
    try:
        if path.read_text() == text and os.access(path, os.X_OK):
            return path
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(text)
    staging.chmod(0o755)
    staging.replace(path)
    return path


# --- inside the wrapper ------------------------------------------------------------


class _Kernel:
    """The few system calls the jail needs, through libc."""

    def __init__(self) -> None:
        numbers = _SYSCALLS.get(os.uname().machine)
        if numbers is None:
            raise JailError(f"machine {os.uname().machine}: system call numbers unknown")
        self.nr_open_tree, self.nr_move_mount, self.nr_setattr, self.nr_pivot = numbers
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long

    def _check(self, result: int, step: str) -> int:
        if result < 0:
            code = ctypes.get_errno()
            raise JailError(f"{step}: {os.strerror(code)}")
        return result

    def unshare(self, flags: int) -> None:
        self._check(self.libc.unshare(ctypes.c_int(flags)), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:  # fmt: skip
        enc = [None if s is None else s.encode() for s in (source, target, fstype, data)]
        result = self.libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3])
        self._check(result, f"mount {target}")

    def umount(self, target: str) -> None:
        self._check(self.libc.umount2(target.encode(), ctypes.c_int(MNT_DETACH)), "umount")

    def open_tree(self, path: str, recursive: bool) -> int:
        flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (AT_RECURSIVE if recursive else 0)
        call = self.libc.syscall(self.nr_open_tree, AT_FDCWD, path.encode(), ctypes.c_uint(flags))
        return self._check(call, f"open_tree {path}")

    def set_attr(self, fd: int, *, add: int, clear: int = 0, recursive: bool) -> None:
        attr = (ctypes.c_uint64 * 4)(add, clear, 0, 0)  # struct mount_attr
        flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
        call = self.libc.syscall(self.nr_setattr, fd, b"", ctypes.c_uint(flags), attr, 32)
        self._check(call, "mount_setattr")

    def move_mount(self, fd: int, target: str) -> None:
        call = self.libc.syscall(
            self.nr_move_mount, fd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH
        )
        self._check(call, f"move_mount {target}")

    def pivot_root(self, new: str, old: str) -> None:
        self._check(self.libc.syscall(self.nr_pivot, new.encode(), old.encode()), "pivot_root")

    def die_with_parent(self) -> None:
        self._check(self.libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")


def _capture(k: _Kernel, root: str) -> list[tuple[str, int | None, str | None]]:
    """Detached copies of everything the jail shows: (path, mount fd or None, link or None)."""
    trees: list[tuple[str, int | None, str | None]] = []
    for directory in SYSTEM_DIRS:
        if Path(directory).is_symlink():
            trees.append((directory, None, str(Path(directory).readlink())))
        elif Path(directory).is_dir():
            fd = k.open_tree(directory, recursive=True)
            k.set_attr(fd, add=ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV, recursive=True)
            trees.append((directory, fd, None))
    fd = k.open_tree(root, recursive=True)
    k.set_attr(fd, add=ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV, recursive=True)
    k.set_attr(fd, add=0, clear=ATTR_RDONLY, recursive=False)  # ROOT itself is writable
    trees.append((root, fd, None))
    for name in DEVICES:
        if Path(f"/dev/{name}").exists():
            fd = k.open_tree(f"/dev/{name}", recursive=False)
            k.set_attr(fd, add=ATTR_NOSUID | ATTR_NOEXEC, recursive=False)
            trees.append((f"/dev/{name}", fd, None))
    return trees


def _build(k: _Kernel, stage: str, trees: list[tuple[str, int | None, str | None]]) -> None:
    """Lay the jail's tree out in the tmpfs at `stage` (parents before children)."""
    for rel in ("dev", "proc", "tmp", "run", "var/tmp", "dev/shm"):
        Path(stage, rel).mkdir(parents=True, exist_ok=True)
    # The private tmpfs first: ROOT may itself lie under /tmp or /run (then its path is
    # made inside that tmpfs and ROOT mounted on it).
    for rel in ("tmp", "run", "var/tmp", "dev/shm"):
        mode = "0755" if rel == "run" else "1777"
        k.mount("tmpfs", f"{stage}/{rel}", "tmpfs", MS_NOSUID | MS_NODEV,
                f"mode={mode},size={TMPFS_SIZE}")  # fmt: skip
    for path, fd, link in sorted(trees, key=lambda t: t[0].count("/")):
        target = Path(stage + path)
        if link is not None:
            target.symlink_to(link)
            continue
        assert fd is not None
        if path.startswith("/dev/"):
            target.touch(exist_ok=False)
        else:
            target.mkdir(parents=True, exist_ok=True)
        k.move_mount(fd, str(target))
        os.close(fd)
    for name, to in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                     ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):  # fmt: skip
        Path(stage, "dev", name).symlink_to(to)
    k.mount("proc", f"{stage}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)


def _hide_secrets(k: _Kernel) -> None:
    """Cover the host's secret files and directories in the jail's read-only /etc."""
    for path in SECRET_FILES:
        if Path(path).is_file() and not Path(path).is_symlink():
            k.mount("/dev/null", path, None, MS_BIND)
            # /dev/null is a device node: its mount must not be nodev, or reading fails.
            k.mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)
    for path in SECRET_DIRS:
        if Path(path).is_dir() and not Path(path).is_symlink():
            k.mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    "mode=0755,size=4k")  # fmt: skip


def confine(root: str) -> None:
    """Turn this process (already PID 1 of a new PID namespace) into the jail for `root`."""
    k = _Kernel()
    k.mount(None, "/", None, MS_REC | MS_PRIVATE)
    trees = _capture(k, root)
    # Every tree is held as a detached copy now, so the tmpfs may cover anything: ROOT's
    # own path is a directory that is sure to exist.
    stage = root
    k.mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    _build(k, stage, trees)
    os.chdir(stage)
    Path(".old-root").mkdir()
    k.pivot_root(".", ".old-root")
    os.chdir("/")
    k.umount("/.old-root")
    Path("/.old-root").rmdir()
    _hide_secrets(k)
    # The jail's own `/` is read-only too: a write to any path outside ROOT, /tmp, /run,
    # /var/tmp and /dev/shm fails loudly instead of landing in a throwaway directory.
    k.mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _refuse(root: str, program: str, why: str) -> int:
    name = Path(program).name
    print(
        f"E: aios pkg jail: cannot confine {name}'s maintainer scripts to {root}: {why}; "
        "refusing to run them outside the root",
        file=sys.stderr,
        flush=True,
    )
    return REFUSED


def _setpriv_argv(program: str, args: Sequence[str]) -> list[str]:
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if setpriv is None:
        raise JailError("setpriv (util-linux) not found")
    keep = ",".join(f"+{c}" for c in KEEP_CAPS)
    return [
        setpriv,
        "--no-new-privs",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        f"--bounding-set=-all,{keep}",
        "--",
        program,
        *args,
    ]


def _jailed_child(root: str, program: str, args: Sequence[str]) -> None:
    """PID 1 of the jail: build it, then exec the program (never returns)."""
    try:
        _Kernel().die_with_parent()
        confine(root)
        argv = _setpriv_argv(program, args)
        env = dict(os.environ, TMPDIR="/tmp")  # noqa: S108 - the jail's own private tmpfs
        os.execve(argv[0], argv, env)  # noqa: S606 - argv, no shell
    except (JailError, OSError) as exc:
        os._exit(_refuse(root, program, str(exc)))


def run(root: str, program: str, args: Sequence[str], *, network: bool) -> int:
    """Run `program args` confined to `root`; its exit status (REFUSED when not confined)."""
    if Path(program).name == "dpkg" and is_query(args):
        os.execv(program, [program, *args])  # noqa: S606 - a query runs no script
    if os.path.realpath(root) == "/":
        return _refuse(root, program, "the root is '/'")
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    try:
        _Kernel().unshare(flags | (0 if network else CLONE_NEWNET))
    except JailError as exc:
        return _refuse(root, program, str(exc))
    pid = os.fork()
    if pid == 0:
        _jailed_child(root, program, args)
    # PID 1 of a namespace ignores signals it has no handler for: turn the ones apt or a
    # terminal sends into SIGKILL, which also ends whatever the scripts left running.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, lambda *_: os.kill(pid, signal.SIGKILL))
    while True:
        try:
            _pid, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            return REFUSED
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def main(argv: Sequence[str]) -> int:
    """`jail.py run ROOT net|nonet PROGRAM [ARGS...]` (what the wrapper executes)."""
    if len(argv) < 4 or argv[0] != "run" or argv[2] not in ("net", "nonet"):
        print("usage: jail.py run ROOT net|nonet PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    root, network, program, args = argv[1], argv[2] == "net", argv[3], argv[4:]
    return run(root, program, args, network=network)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except OSError as exc:
        print(f"E: aios pkg jail: {exc}", file=sys.stderr)
        sys.exit(REFUSED if exc.errno != errno.ENOENT else 127)
