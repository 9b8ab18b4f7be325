"""Before-images of paths: what file tools save before they change something.

`capture` records, per target path, what is there now (missing, a file, a
directory, a symlink) and, when `deep`, copies file content or whole trees
into the execution's work directory; `restore` puts every path back as it was
(a path that was missing is removed again, with the parent directories the
tool created). Paths are target paths ("/etc/x"), mapped under the context's
root with `ctx.path`, so the same image works on a scratch root.

Called by registry.handlers.fs (snapshot/restore of the reversible fs.* tools).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

from contract.tooldef import JSON
from registry.core.errors import ToolError
from registry.core.tool import ToolContext


def _first_missing_ancestor(ctx: ToolContext, target: str) -> str:
    """The top-most component of `target` that does not exist yet."""
    parts = [p for p in target.split("/") if p]
    for i in range(1, len(parts) + 1):
        candidate = "/" + "/".join(parts[:i])
        if not os.path.lexists(ctx.path(candidate)):
            return candidate
    return target


def capture(ctx: ToolContext, targets: list[str], *, deep: bool, remove: str = "tree") -> JSON:
    """Before-image of `targets`. `deep` copies content; otherwise metadata only.

    `remove` says how restore deletes a path that was missing before: `tree`
    (whatever is there) or `empty` (only an empty directory, e.g. mkdir).
    """
    entries: list[dict[str, Any]] = []
    for index, target in enumerate(targets):
        host = ctx.path(target)
        entry: dict[str, Any] = {"path": target}
        try:
            st = host.lstat() if deep else host.stat()
        except FileNotFoundError:
            entry |= {"kind": "missing", "created_from": _first_missing_ancestor(ctx, target)}
            entry["remove"] = remove
            entries.append(entry)
            continue
        except OSError as exc:
            raise ToolError(f"cannot save a before-image of {target}: {exc.strerror}") from None
        entry |= {"mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
        if not deep:
            entry["kind"] = "meta"
        elif stat.S_ISLNK(st.st_mode):
            entry |= {"kind": "link", "target": str(host.readlink())}
        elif stat.S_ISREG(st.st_mode):
            entry |= {"kind": "file", "copy": f"before-{index}"}
            shutil.copy2(host, ctx.work / entry["copy"], follow_symlinks=False)
        elif stat.S_ISDIR(st.st_mode):
            entry |= {"kind": "dir", "copy": f"before-{index}"}
            shutil.copytree(host, ctx.work / entry["copy"], symlinks=True)
        else:
            entry["kind"] = "meta"
        entries.append(entry)
    return {"entries": entries}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _remove_created_parents(ctx: ToolContext, target: str, created_from: str) -> None:
    """rmdir the empty parents of `target` up to `created_from` (the tool made them)."""
    current = target.rsplit("/", 1)[0]
    while current and len(current) >= len(created_from) and current.startswith(created_from):
        try:
            ctx.path(current).rmdir()
        except OSError:
            return
        current = current.rsplit("/", 1)[0]


def restore(ctx: ToolContext, image: JSON) -> None:
    """Put every path of `image` back; raises ToolError naming the path that failed."""
    for entry in reversed(image["entries"]):
        target = entry["path"]
        try:
            _restore_one(ctx, entry)
        except OSError as exc:
            raise ToolError(f"restore of {target} failed: {exc.strerror or exc}") from None


def _restore_one(ctx: ToolContext, entry: dict[str, Any]) -> None:
    target = entry["path"]
    host = ctx.path(target)
    kind = entry["kind"]
    if kind == "missing":
        if entry["remove"] == "empty" and host.is_dir() and not host.is_symlink():
            host.rmdir()  # refuses (OSError) when something was put inside since
        else:
            _remove(host)
        _remove_created_parents(ctx, target, entry["created_from"])
        return
    if kind == "meta":
        host.chmod(entry["mode"])
        os.chown(host, entry["uid"], entry["gid"])
        return
    if kind == "link":
        _remove(host)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.symlink_to(entry["target"])
        os.lchown(host, entry["uid"], entry["gid"])
        return
    saved = ctx.work / entry["copy"]
    host.parent.mkdir(parents=True, exist_ok=True)
    if kind == "file":
        tmp = host.with_name(f".{host.name}.aios-restore")
        if os.path.lexists(tmp):
            tmp.unlink()  # a link planted under this name is removed, never written through
        shutil.copy2(saved, tmp)
        if host.is_dir() and not host.is_symlink():
            shutil.rmtree(host)
        tmp.replace(host)
    else:  # dir
        _remove(host)
        shutil.copytree(saved, host, symlinks=True)
    host.chmod(entry["mode"])
    os.chown(host, entry["uid"], entry["gid"])
