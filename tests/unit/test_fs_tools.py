"""fs.* tools under a scratch root: aiOS's inputs, outputs and error strings
(docs/aios-contract.md §3.4), and before-images that restore exactly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from registry.core.errors import ToolError
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.handlers.index import tool_classes


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    work = tmp_path / "work"
    work.mkdir()
    return ToolContext(ProcessRunner(), root, tmp_path / "state", work, "exec-1")


async def call(ctx: ToolContext, tool: str, **args: Any) -> Any:
    return await tool_classes()[tool]().run(ctx, args)


async def test_read_write_bak_and_errors(ctx: ToolContext) -> None:
    assert await call(ctx, "fs.read", path="/etc/hosts") == {
        "content": "127.0.0.1 localhost\n",
        "size": 20,
    }
    assert await call(ctx, "fs.write", path="/etc/hosts", content="ünï") == {"bytes_written": 5}
    assert (ctx.root / "etc/hosts.bak").read_text() == "127.0.0.1 localhost\n"
    assert await call(ctx, "fs.write", path="/new/dir/f", content="x") == {"bytes_written": 1}
    with pytest.raises(ToolError, match=r"^fs.read: failed to read /nope$"):
        await call(ctx, "fs.read", path="/nope")
    with pytest.raises(ToolError, match=r"^fs.write: missing required field 'content'$"):
        await call(ctx, "fs.write", path="/x")
    with pytest.raises(ToolError, match=r"^fs.chown: missing required field 'uid'$"):
        await call(ctx, "fs.chown", path="/etc/hosts", uid="0", gid=0)
    with pytest.raises(ToolError, match=r"^fs.delete: path does not exist: /gone$"):
        await call(ctx, "fs.delete", path="/gone")
    with pytest.raises(ToolError, match=r"^fs.move: source does not exist: /gone$"):
        await call(ctx, "fs.move", source="/gone", destination="/x")
    with pytest.raises(ToolError, match=r"must not contain '\.\.'"):
        await call(ctx, "fs.read", path="/../../etc/passwd")


async def test_stat_list_search_disk_usage(ctx: ToolContext) -> None:
    (ctx.root / "etc/hosts").chmod(0o640)
    (ctx.root / "etc/link").symlink_to("hosts")
    stat = await call(ctx, "fs.stat", path="/etc/hosts")
    assert stat["permissions"] == "0640" and stat["is_file"] and stat["size"] == 20
    assert stat["modified"].endswith("+00:00")
    assert (await call(ctx, "fs.stat", path="/etc/link"))["is_symlink"]
    entries = (await call(ctx, "fs.list", path="/etc"))["entries"]
    assert [(e["name"], e["type"]) for e in entries] == [("hosts", "file"), ("link", "symlink")]
    await call(ctx, "fs.mkdir", path="/etc/a/b", recursive=True)
    (ctx.root / "etc/a/b/hosts.d").write_text("")
    found = await call(ctx, "fs.search", directory="/etc", pattern="hosts*")
    assert found == {"matches": ["/etc/a/b/hosts.d", "/etc/hosts"]}
    shallow = await call(ctx, "fs.search", directory="/etc", pattern="[!l]*", max_depth=1)
    assert shallow == {"matches": ["/etc/a", "/etc/hosts"]}
    usage = await call(ctx, "fs.disk_usage", path="/")
    assert usage["total_bytes"] >= usage["used_bytes"] > 0
    assert 0 <= usage["usage_percent"] <= 100


async def test_chmod_modes(ctx: ToolContext) -> None:
    for mode, want in (("600", 0o600), ("0644", 0o644), ("0o755", 0o755)):
        assert await call(ctx, "fs.chmod", path="/etc/hosts", mode=mode) == {"changed": True}
        assert (ctx.root / "etc/hosts").stat().st_mode & 0o7777 == want
    with pytest.raises(ToolError, match=r"fs.chmod: missing required field 'mode'"):
        await call(ctx, "fs.chmod", path="/etc/hosts", mode=644)  # a number is "missing"
    with pytest.raises(ToolError, match=r"fs.chmod: invalid mode '9'"):
        await call(ctx, "fs.chmod", path="/etc/hosts", mode="9")


def tree(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_file():
                out[rel] = ("file", p.read_bytes(), st.st_mode, st.st_uid)
            else:
                out[rel] = ("dir", st.st_mode)
    return out


CHANGES = [
    ("fs.write", {"path": "/etc/hosts", "content": "changed"}),
    ("fs.write", {"path": "/etc/new/file", "content": "new"}),
    ("fs.chmod", {"path": "/etc/hosts", "mode": "0600"}),
    ("fs.chown", {"path": "/etc/hosts", "uid": 1234, "gid": 1234}),
    ("fs.copy", {"source": "/etc/hosts", "destination": "/srv/copy/hosts"}),
    ("fs.copy", {"source": "/etc", "destination": "/backup/etc"}),
    ("fs.mkdir", {"path": "/var/lib/x", "recursive": True}),
    ("fs.move", {"source": "/etc/hosts", "destination": "/etc/hosts.moved"}),
    ("fs.symlink", {"target": "/etc/hosts", "link": "/usr/local/etc/hosts"}),
]


@pytest.mark.parametrize(
    ("tool", "args"), CHANGES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(CHANGES)]
)
async def test_before_image_restores_exactly(
    ctx: ToolContext, tool: str, args: dict[str, Any]
) -> None:
    if tool == "fs.chown" and os.geteuid() != 0:
        pytest.skip("chown needs root")
    (ctx.root / "etc/hosts.bak").write_text("old bak")
    before = tree(ctx.root)
    handler = tool_classes()[tool]()
    assert handler.spec.reversible
    assert handler.touches(args)
    snapshot = await handler.snapshot(ctx, args)
    await handler.run(ctx, args)
    assert tree(ctx.root) != before
    await handler.restore(ctx, snapshot)
    assert tree(ctx.root) == before
