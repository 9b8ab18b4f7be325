"""Attack corpus, registry side, area `root-`: a link swapped in between check and use.

A thread exchanges two names in the scratch root atomically (renameat2
RENAME_EXCHANGE), as fast as it can, for the whole case: an in-root directory
(or file) and a symbolic link to the sentinel host directory (or file) outside
the root. Meanwhile the tool is called again and again through the registry's
Execute pipeline on a path through that name. Whatever state each call meets
(the directory, the link, or the name changing under the walk), the call must
act inside the root or fail; after every call the sentinel must be unchanged
(content, mode, owner) and no read may return its secret. Each case also
proves the race was real: the thread flipped many times, and the tool landed
on both sides (in the in-root directory, and in the link's in-root target).

Harness and sentinel: tests/attack/test_registry_root.py.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.attack.test_registry_root import (
    SECRET,
    SOURCE_MODEL,
    SOURCE_SHA,
    Scene,
    image,
    open_scene,
)

RENAME_EXCHANGE = 2
AT_FDCWD = -100
SECONDS = 0.5
_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]  # fmt: skip


def exchange(a: Path, b: Path) -> None:
    if _libc.renameat2(AT_FDCWD, bytes(a), AT_FDCWD, bytes(b), RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class Flipper(threading.Thread):
    """Exchanges `a` and `b` until stopped; counts the exchanges."""

    def __init__(self, a: Path, b: Path) -> None:
        super().__init__(name="root-race-flipper", daemon=True)
        self.a, self.b = a, b
        self.halt = threading.Event()
        self.flips = 0

    def run(self) -> None:
        while not self.halt.is_set():
            exchange(self.a, self.b)
            self.flips += 1


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    opened = await open_scene(tmp_path)
    try:
        yield opened
    finally:
        await opened.pipeline.close()
    opened.untouched()


Args = Callable[[int], dict[str, Any]]

# (tool, arguments for call number n, what the call leaves in the link's in-root target
#  when it meets the link -- None: that side fails, only the directory side succeeds)
DIR_RACES: list[tuple[str, Args, str | None]] = [
    ("fs.write", lambda n: {"path": "/flip/secret", "content": "pwned"}, "secret"),
    ("fs.chmod", lambda n: {"path": "/flip/secret", "mode": "4777"}, None),
    ("fs.chown", lambda n: {"path": "/flip/secret", "uid": 0, "gid": 0}, None),
    ("fs.read", lambda n: {"path": "/flip/secret"}, None),
    ("fs.copy", lambda n: {"source": "/etc/hosts", "destination": "/flip/secret"}, "secret"),
    ("fs.mkdir", lambda n: {"path": f"/flip/d{n}", "recursive": True}, "d*"),
    ("fs.symlink", lambda n: {"target": "/etc/hosts", "link": f"/flip/l{n}"}, "l*"),
    ("fs.delete", lambda n: {"path": "/flip/secret"}, None),
    ("fs.list", lambda n: {"path": "/flip"}, None),
    ("storage.dir", lambda n: {"path": f"/flip/s{n}", "mode": "0777"}, "s*"),
    ("storage.swapfile", lambda n: {"path": "/flip/swap", "size": "64K"}, "swap"),
    ("model.fetch", lambda n: {"path": f"/flip/m{n}.gguf", "url": "file:///models/src.gguf",
                               "sha256": SOURCE_SHA}, "m*.gguf"),
]  # fmt: skip

FILE_RACES: list[tuple[str, Args]] = [
    ("fs.write", lambda n: {"path": "/f.gguf", "content": "pwned"}),
    ("fs.chmod", lambda n: {"path": "/f.gguf", "mode": "4777"}),
    ("fs.chown", lambda n: {"path": "/f.gguf", "uid": 0, "gid": 0}),
    ("fs.read", lambda n: {"path": "/f.gguf"}),
    ("fs.copy", lambda n: {"source": "/etc/hosts", "destination": "/f.gguf"}),
    ("storage.swapfile", lambda n: {"path": "/f.gguf", "size": "64K"}),
    ("model.fetch", lambda n: {"path": "/f.gguf", "url": "file:///models/src.gguf",
                               "sha256": SOURCE_SHA}),
]  # fmt: skip


async def hammer(scene: Scene, tool: str, args: Args) -> int:
    """Call `tool` for SECONDS while the flipper runs; returns the successes."""
    done = 0
    deadline = time.monotonic() + SECONDS
    for n in itertools.count():
        if time.monotonic() > deadline:
            break
        outcome = await scene.call(tool, **args(n))
        if outcome.success:
            done += 1
            assert SECRET.decode() not in json.loads(outcome.output_json).get("content", "")
        assert image(scene.host) == scene.before, f"call {n} of {tool} changed the host"
    return done


@pytest.mark.parametrize(
    ("tool", "args", "link_side"), DIR_RACES, ids=[f"root-race-dir-{t}" for t, _, _ in DIR_RACES]
)
async def test_directory_swapped_for_a_link_to_the_host(
    scene: Scene, tool: str, args: Args, link_side: str | None
) -> None:
    flip, alt = scene.root / "flip", scene.root / "flip.alt"
    flip.mkdir()
    (flip / "secret").write_bytes(b"in root\n")
    alt.symlink_to(scene.host)
    flipper = Flipper(flip, alt)
    flipper.start()
    try:
        successes = await hammer(scene, tool, args)
    finally:
        flipper.halt.set()
        flipper.join()
    scene.untouched()
    assert flipper.flips > 100
    assert successes >= 1  # the calls that met the in-root directory worked
    if link_side is not None:  # and those that met the link acted on its in-root target
        assert any(scene.inroot("/{hostrel}").glob(link_side)), "the race never met the link"


@pytest.mark.parametrize(
    ("tool", "args"), FILE_RACES, ids=[f"root-race-file-{t}" for t, _ in FILE_RACES]
)
async def test_file_swapped_for_a_link_to_a_host_file(scene: Scene, tool: str, args: Args) -> None:
    flip, alt = scene.root / "f.gguf", scene.root / "f.gguf.alt"
    flip.write_bytes(b"in root\n")
    alt.symlink_to(scene.host / "secret")
    flipper = Flipper(flip, alt)
    flipper.start()
    try:
        await hammer(scene, tool, args)
    finally:
        flipper.halt.set()
        flipper.join()
    scene.untouched()
    assert flipper.flips > 100
    regular = [p for p in (flip, alt) if not p.is_symlink()]
    if tool == "model.fetch":  # the name is replaced by the model, a link there included
        assert any(p.read_bytes() == SOURCE_MODEL for p in regular)
    else:  # the in-root file is still a file, wherever it is now; the link still a link
        assert len(regular) == 1
