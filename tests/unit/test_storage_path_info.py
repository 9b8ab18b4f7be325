"""storage.state's stat of requested paths: size of files, emptiness of directories;
and the sandbox root's minimal account databases that owner/group names resolve through.

Pure filesystem checks on a temporary scratch root (no mounts, no tool process).
"""

from __future__ import annotations

import os
from pathlib import Path

from contract.catalogue.storage import PATH_INFO
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.handlers.storage import path_info
from sandbox.content import ensure_accounts


def _ctx(tmp_path: Path) -> ToolContext:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return ToolContext(ProcessRunner(), root, tmp_path / "state", tmp_path / "work", "exec-1")


def test_files_have_a_size_and_directories_say_whether_they_are_empty(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    (ctx.root / "srv" / "empty").mkdir(parents=True)
    (ctx.root / "srv" / "full").mkdir()
    (ctx.root / "srv" / "full" / "x").write_bytes(b"12345")
    os.symlink("full", ctx.root / "srv" / "link")
    info = {p: path_info(ctx, ctx.path(p)) for p in ("/srv/empty", "/srv/full", "/srv/full/x")}
    assert info["/srv/empty"]["empty"] is True and info["/srv/empty"]["size"] is None
    assert info["/srv/full"]["empty"] is False
    assert info["/srv/full/x"] == info["/srv/full/x"] | {"type": "file", "size": 5, "empty": None}
    assert path_info(ctx, ctx.path("/srv/link"))["empty"] is None  # a symlink is not followed
    missing = path_info(ctx, ctx.path("/srv/none"))
    assert missing["exists"] is False and missing["size"] is None and missing["empty"] is None
    assert set(PATH_INFO["required"]) == set(missing) == set(info["/srv/full"])


def test_ensure_accounts_writes_root_only_when_missing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "group").write_text("root:x:0:\nstaff:x:50:\n")
    ensure_accounts(root)
    assert (root / "etc" / "passwd").read_text().startswith("root:x:0:0:")
    assert "staff" in (root / "etc" / "group").read_text()  # an existing file is kept
    ensure_accounts(root)  # idempotent
    assert (root / "etc" / "passwd").stat().st_mode & 0o777 == 0o644
