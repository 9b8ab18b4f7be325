"""Attack corpus, area `root-`: link text whose `..` comes after a missing component or
after a regular file, so a lexical tidy-up would climb back into real directories.

`/etc -> /nonexist/../h` and `/h -> HOST` once made `ctx.path('/etc/x')` the
host's `HOST/x`: the walk stopped at the missing `nonexist`, normalised the
rest on paper and never looked at the link `h` it climbed back to. The kernel
fails such a path (ENOENT, ENOTDIR below a file), and so do we now. Each case
plants the links in a scratch root with a sentinel "host" directory beside
it, and asserts the refusal at ToolContext.path (what mounts, mkfs, apt and
the net tools get), at rootfs.entry (what the fs tools use) and through the
registry's fs.read / fs.write, then that the sentinel is unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from registry.core import rootfs
from registry.core.errors import ToolError
from tests.attack.test_registry_root import Scene, open_scene

# (name, links planted (path in root -> text), the target path that goes through them)
WAYS = [
    ("missing-absolute", (("/etc2", "/nonexist/../h"), ("/h", "{host}")), "/etc2/secret"),
    ("missing-relative", (("/a/x", "nonexist/../../h"), ("/h", "{host}")), "/a/x/secret"),
    ("missing-deep", (("/etc2", "/no/such/dir/../../../h"), ("/h", "{host}")), "/etc2/secret"),
    ("file-absolute", (("/etc2", "/etc/hosts/../../h"), ("/h", "{host}")), "/etc2/secret"),
    ("file-relative", (("/a/x", "../etc/hosts/../../h"), ("/h", "{host}")), "/a/x/secret"),
    ("missing-last", (("/etc2", "/nonexist/../h"), ("/h", "{host}/secret")), "/etc2"),
]


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    opened = await open_scene(tmp_path)
    try:
        yield opened
    finally:
        await opened.pipeline.close()
    opened.untouched()


def _ids(way: tuple[str, object, str]) -> str:
    return f"root-dotdot-{way[0]}"


@pytest.mark.parametrize("way", WAYS, ids=_ids)
async def test_ctx_path_refuses_dotdot_after_a_missing_component(
    scene: Scene, way: tuple[str, tuple[tuple[str, str], ...], str]
) -> None:
    _, links, via = way
    scene.plant(links)
    with pytest.raises(ToolError, match=r"cannot resolve .* under the root"):
        scene.ctx().path(via)
    scene.untouched()


@pytest.mark.parametrize("way", WAYS, ids=_ids)
async def test_entry_refuses_dotdot_after_a_missing_component(
    scene: Scene, way: tuple[str, tuple[tuple[str, str], ...], str]
) -> None:
    _, links, via = way
    scene.plant(links)
    with pytest.raises(OSError), rootfs.entry(scene.root, via, follow=True) as found:
        Path(found.host).read_bytes()  # noqa: ASYNC240
    scene.untouched()


@pytest.mark.parametrize("way", WAYS, ids=_ids)
async def test_fs_tools_refuse_dotdot_after_a_missing_component(
    scene: Scene, way: tuple[str, tuple[tuple[str, str], ...], str]
) -> None:
    _, links, via = way
    scene.plant(links)
    read = await scene.call("fs.read", path=via)
    assert not read.success
    assert read.error.startswith(f"fs.read: failed to read {via}")
    write = await scene.call("fs.write", path=via, content="pwned")
    assert not write.success
    assert "No such file or directory" in write.error or "Not a directory" in write.error
    scene.untouched()


async def test_a_plain_missing_path_still_maps(scene: Scene) -> None:
    """The fix refuses only a `..` after the missing part, not a missing path itself."""
    assert scene.ctx().path("/no/such/file") == scene.root / "no" / "such" / "file"
    scene.plant((("/l", "/no/such"),))
    assert scene.ctx().path("/l/file") == scene.root / "no" / "such" / "file"
