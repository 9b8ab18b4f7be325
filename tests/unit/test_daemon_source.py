"""reconciler.daemon.source.SpecSource on real files in tmp_path: inotify bursts and loads."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from reconciler.daemon.source import SpecSource, Writes, editor_leftover
from specs.kinds import DEFAULT_KINDS

FW = """apiVersion: aios.dev/v1
kind: Firewall
metadata:
  name: {name}
spec:
  tables:
    - family: inet
      name: {name}
      chains: []
"""


async def bursts(
    source: SpecSource, act: Callable[[], object], wait: float = 0.4
) -> list[tuple[str, ...]]:
    """What `changes()` yields while `act` runs (after the watch is armed)."""
    stop = asyncio.Event()
    seen: list[tuple[str, ...]] = []

    async def collect() -> None:
        async for paths in source.changes(stop):
            seen.append(paths)

    task = asyncio.ensure_future(collect())
    await asyncio.sleep(0.05)
    result = act()
    if asyncio.iscoroutine(result):
        await result
    await asyncio.sleep(wait)
    stop.set()
    await asyncio.wait_for(task, 2)
    return seen


def test_a_write_is_one_burst_and_editor_leftovers_are_none(tmp_path: Path) -> None:
    source = SpecSource([tmp_path], DEFAULT_KINDS)
    seen = asyncio.run(
        bursts(source, lambda: (tmp_path / "a.yaml").write_text(FW.format(name="a")))
    )
    assert seen == [(str(tmp_path / "a.yaml"),)]
    leftovers = asyncio.run(
        bursts(
            source,
            lambda: [(tmp_path / n).write_text("x") for n in (".a.yaml.swp", "a.yaml~", "4913")],
        )
    )
    assert leftovers == []
    assert source.load().specset is not None and source.load().errors == ()


def test_two_chunks_with_a_short_pause_are_loaded_once_complete(tmp_path: Path) -> None:
    """The pause (5 ms) is longer than the quick wait: the write still open keeps the
    settle (20 ms), so the two chunks are one burst."""
    source = SpecSource([tmp_path], DEFAULT_KINDS)
    assert source.quick_ms < 5 < source.settle_ms
    text = FW.format(name="b")

    async def two_chunks() -> None:
        with (tmp_path / "b.yaml").open("w") as out:
            out.write(text[: len(text) // 2])
            out.flush()
            await asyncio.sleep(0.005)
            out.write(text[len(text) // 2 :])

    seen = asyncio.run(bursts(source, two_chunks))
    assert len(seen) == 1
    loaded = source.load()
    assert loaded.specset is not None and loaded.specset.keys() == ("Firewall/b",)


def test_a_configmap_symlink_swap_and_a_new_subdirectory_are_seen(tmp_path: Path) -> None:
    (tmp_path / "..v1").mkdir()
    (tmp_path / "..v1" / "c.yaml").write_text(FW.format(name="c"))
    (tmp_path / "..data").symlink_to("..v1")
    (tmp_path / "c.yaml").symlink_to("..data/c.yaml")
    source = SpecSource([tmp_path], DEFAULT_KINDS)

    def swap() -> None:
        (tmp_path / "..v2").mkdir()
        (tmp_path / "..v2" / "c.yaml").write_text(FW.format(name="c2"))
        (tmp_path / "..tmp").symlink_to("..v2")
        os.replace(tmp_path / "..tmp", tmp_path / "..data")

    assert asyncio.run(bursts(source, swap))
    loaded = source.load()
    assert loaded.specset is not None and loaded.specset.keys() == ("Firewall/c2",)

    async def subdirectory() -> None:
        (tmp_path / "sub").mkdir()
        await asyncio.sleep(0.1)  # the directory's creation is one burst: then it is watched
        (tmp_path / "sub" / "d.yaml").write_text(FW.format(name="d"))

    seen = asyncio.run(bursts(source, subdirectory))
    assert any(str(tmp_path / "sub" / "d.yaml") in burst for burst in seen), seen


def test_a_missing_directory_is_watched_through_its_parent(tmp_path: Path) -> None:
    later = tmp_path / "later"
    source = SpecSource([later], DEFAULT_KINDS)
    assert source.load().specset is None  # a missing directory is an error

    async def create() -> None:
        later.mkdir()
        await asyncio.sleep(0.1)
        (later / "e.yaml").write_text(FW.format(name="e"))

    seen = asyncio.run(bursts(source, create))
    assert seen and any(str(later) in p for burst in seen for p in burst)


def test_editor_leftover_names() -> None:
    for name in ("x~", ".x.swp", "#x#", ".#x", "x.tmp", "4913", "x.bak"):
        assert editor_leftover(f"/specs/{name}"), name
    for name in ("x.yaml", "..data", "x.yml"):
        assert not editor_leftover(f"/specs/{name}"), name


def test_open_writes_are_tracked_until_closed_renamed_away_or_deleted(tmp_path: Path) -> None:
    writes = Writes()
    new = tmp_path / "new.yaml"
    new.write_text("x")
    link = tmp_path / "..tmp"
    link.symlink_to("..v2")
    writes.note(str(link), written=False, created=True, finished=False)
    assert not writes.busy()  # a symlink is created whole: no close follows
    writes.note(str(new), written=False, created=True, finished=False)
    assert writes.busy()  # a regular file just created: its writer may not have written yet
    writes.note(str(new), written=True, created=False, finished=False)
    writes.note(str(new), written=False, created=False, finished=True)
    assert not writes.busy()
    for last in ("closed", "renamed away", "deleted"):
        writes.note(str(new), written=True, created=False, finished=False)
        assert writes.busy(), last
        writes.note(str(new), written=False, created=False, finished=True)
        assert not writes.busy(), last


def test_an_atomic_replace_ends_in_a_burst_with_the_file_whole(tmp_path: Path) -> None:
    (tmp_path / "h.yaml").write_text(FW.format(name="h"))
    source = SpecSource([tmp_path], DEFAULT_KINDS)

    def replace() -> None:
        temp = tmp_path / ".h.yaml.new"
        temp.write_text(FW.format(name="h2"))
        os.replace(temp, tmp_path / "h.yaml")

    seen = asyncio.run(bursts(source, replace))  # the temp file's close may end one burst
    assert seen and str(tmp_path / "h.yaml") in seen[-1], seen
    loaded = source.load()
    assert loaded.specset is not None and loaded.specset.keys() == ("Firewall/h2",)
