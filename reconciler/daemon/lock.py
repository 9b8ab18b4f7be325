"""One daemon per state directory: an flock on `<state dir>/daemon.lock`.

reconciler.cli.daemon_cmd takes it before the daemon starts and holds it for
the daemon's life; the kernel releases it when the process dies (kill -9
included), so it never goes stale. The file holds the holder's pid, for the
error a second daemon prints. The store's writer lock (reconciler.engine.store)
still serializes every apply; this one only keeps two daemons from fighting
over one target's state.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from reconciler.sdk.errors import PermanentError

LOCK_NAME = "daemon.lock"


class DaemonLock:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise PermanentError(f"cannot open the daemon lock {self.path}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, UnicodeError):
                holder = self.path.read_text().strip()
            os.close(fd)
            raise PermanentError(
                f"another aios daemon (pid {holder or '?'}) already runs on {self.path.parent}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def daemon_running(state_dir: Path) -> bool:
    """Whether a daemon holds `state_dir`'s lock now (the CLI's one-writer check)."""
    path = state_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
