"""Writes under the scratch root are serialized across tool namespaces.

A path the registry resolved inside the root and then handed to a program
(mount, mkfs, losetup, dpkg) could be swapped for a link out of the root by a
concurrent fs.symlink or fs.move; the fs, storage, pkg and model namespaces
therefore share one write lock (registry.server.execution.ROOT_NAMESPACES), while net
and firewall writes keep their own and reads are never held.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from registry.handlers.index import tool_classes
from registry.server.execution import ROOT_NAMESPACES, Executor
from registry.server.profiles import Entry


def _entry(tool: str, *, writes: bool = True) -> Entry:
    spec = tool_classes()[tool].spec
    return Entry(spec, spec.capabilities, tool_classes()[tool], True, writes, spec.namespace)


async def _overlap(executor: Executor, first: Entry, second: Entry) -> bool:
    """Whether `second` entered the guard while `first` held it."""
    inside = asyncio.Event()
    release = asyncio.Event()
    entered: list[str] = []

    async def hold() -> None:
        async with executor.guard(first):
            inside.set()
            await release.wait()

    async def other() -> None:
        await inside.wait()
        async with executor.guard(second):
            entered.append("second")

    holder = asyncio.create_task(hold())
    contender = asyncio.create_task(other())
    await inside.wait()
    await asyncio.sleep(0.05)
    overlapped = bool(entered)
    release.set()
    await asyncio.gather(holder, contender)
    return overlapped


def _executor() -> Executor:
    any_settings: Any = None
    return Executor(any_settings, any_settings, aios=False)


async def test_root_writers_of_different_namespaces_never_overlap() -> None:
    assert {"fs", "storage", "pkg", "model"} == ROOT_NAMESPACES
    pairs = [("fs.symlink", "storage.mount"), ("fs.move", "storage.mkfs"),
             ("fs.write", "pkg.ensure"), ("storage.dir", "model.fetch")]  # fmt: skip
    for first, second in pairs:
        assert not await _overlap(_executor(), _entry(first), _entry(second)), (first, second)


async def test_net_writes_and_reads_are_not_held_by_root_writers() -> None:
    assert await _overlap(_executor(), _entry("fs.write"), _entry("net.apply"))
    read = replace(_entry("fs.read"), writes=False)
    assert await _overlap(_executor(), _entry("storage.mount"), read)
