"""Attack corpus, registry side, area `root-`: symbolic links that try to lead a tool out
of the scratch root (issue #8, escape 2), sent to the registry's tools directly.

Every case runs through the registry's own Execute pipeline, in process
(registry.server.grpc.build_pipeline, profile `full` unless said: JSON Schema,
capabilities, before-image, run; Rollback through Pipeline.rollback), on a
scratch root under tmp_path. Beside the root, under the same tmp_path, lies a
sentinel "host" directory (files with content, modes 0644/0600/0640/0755,
an owner other than root); each case asserts the exact refusal or where
inside the root the effect landed, and then that the sentinel is unchanged
byte for byte, mode for mode and owner for owner.

The ways out, planted in the root before the call:
- DIR_WAYS, a link to the host directory used as a middle component:
  absolute (`/evil -> /tmp/.../host`), relative (`../host`), many `..`
  (`/a/b/evil -> ../../../../…/tmp/.../host`), a chain of links, and a
  relative link inside a subdirectory;
- FILE_WAYS, a link at the last component to the host file: absolute,
  relative, a chain, and a link through a directory link;
- special names the tools use (`<path>.bak`, fsimage's restore temporary,
  a model's `.part`), trees holding links, fs.symlink's own targets;
- hostile path strings (`..`, NUL, relative) on both profiles;
- a link swapped in between check and use (test_registry_root_race.py).

Case ids start with `root-`. Count them with
`.venv/bin/pytest --collect-only -q tests/attack | tail -1`.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contract.catalogue.fs import LINK_TARGET, PATH
from contract.catalogue.model import MODEL_PATH
from contract.catalogue.parts import ABS_PATH
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.drivers.storage import mounting
from registry.server.grpc import ServeOptions, build_pipeline
from registry.server.pipeline import Outcome, Pipeline, Request

HOSTS = b"127.0.0.1 localhost\n"
SECRET = b"host secret\n"
OWNER = 4242  # the sentinel's owner: a chown through a link would show


def gguf(tag: bytes) -> bytes:
    """A small valid GGUF file (header version 3, padded)."""
    return b"GGUF" + struct.pack("<I", 3) + tag.ljust(120, b"\0")


SOURCE_MODEL = gguf(b"in-root source")
SOURCE_SHA = hashlib.sha256(SOURCE_MODEL).hexdigest()


def image(top: Path) -> dict[str, tuple[Any, ...]]:
    """Everything about a tree that an escape could change (lstat, content, link text)."""
    out: dict[str, tuple[Any, ...]] = {}
    for path in [top, *sorted(top.rglob("*"))]:
        st = path.lstat()
        rel = str(path.relative_to(top))
        if stat.S_ISLNK(st.st_mode):
            body: Any = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            body = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            body = sorted(os.listdir(path)) if stat.S_ISDIR(st.st_mode) else None
        out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, body)
    return out


def gone(path: Path) -> bool:
    """Nothing at `path`, not even a dangling link."""
    return not os.path.lexists(path)


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, followed on the host, is inside `root`."""
    return os.path.realpath(path).startswith(str(root) + "/")


def make_host(host: Path) -> None:
    (host / "dir").mkdir(parents=True)
    (host / "models").mkdir()
    (host / "secret").write_bytes(SECRET)
    (host / "victim").write_bytes(b"victim\n")
    (host / "dir" / "inner").write_bytes(b"inner\n")
    (host / "models" / "host.gguf").write_bytes(gguf(b"host model"))
    for path, mode in (
        (host / "secret", 0o644),
        (host / "victim", 0o600),
        (host / "dir" / "inner", 0o640),
        (host / "dir", 0o755),
        (host / "models", 0o755),
        (host / "models" / "host.gguf", 0o644),
        (host, 0o755),
    ):
        os.chown(path, OWNER, OWNER)
        path.chmod(mode)


def make_root(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hosts").write_bytes(HOSTS)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "models").mkdir()
    (root / "models" / "src.gguf").write_bytes(SOURCE_MODEL)
    (root / "srv" / "data").mkdir(parents=True)


@dataclass
class Scene:
    root: Path
    host: Path
    pipeline: Pipeline
    before: dict[str, tuple[Any, ...]]

    def fill(self, text: str) -> str:
        return text.format(host=str(self.host), hostrel=str(self.host).lstrip("/"))

    def inroot(self, target: str) -> Path:
        return self.root / self.fill(target).lstrip("/")

    def plant(self, links: tuple[tuple[str, str], ...]) -> None:
        for link, text in links:
            path = self.inroot(link)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.symlink_to(self.fill(text))

    def ctx(self) -> ToolContext:
        return ToolContext(ProcessRunner(), self.root, self.root.parent / "state", self.root, "x")

    async def call(self, tool: str, **args: Any) -> Outcome:
        data = json.dumps(args).encode()
        request = Request(tool, "aios-reconciler", "attack", data, "root- attack case")
        return await self.pipeline.execute(request)

    async def ok(self, tool: str, **args: Any) -> tuple[Outcome, Any]:
        outcome = await self.call(tool, **args)
        assert outcome.success, outcome.error
        return outcome, json.loads(outcome.output_json)

    async def refused(self, tool: str, error: str, **args: Any) -> None:
        outcome = await self.call(tool, **args)
        assert not outcome.success
        assert outcome.error == self.fill(error)

    async def rollback(self, outcome: Outcome) -> None:
        ok, error = await self.pipeline.rollback(outcome.execution_id, "undo the attack case")
        assert ok, error

    def untouched(self) -> None:
        assert image(self.host) == self.before, "the host sentinel changed"


async def open_scene(tmp_path: Path, profile: str = "full") -> Scene:
    host, root = tmp_path / "host", tmp_path / "root"
    make_host(host)
    make_root(root)
    options = ServeOptions(root=root, state_dir=tmp_path / "state", profile=profile)
    return Scene(root, host, build_pipeline(options), image(host))


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    opened = await open_scene(tmp_path)
    try:
        yield opened
    finally:
        await opened.pipeline.close()
    opened.untouched()  # again, after the pipeline has closed (nothing restored outside)


@dataclass(frozen=True)
class Way:
    name: str
    links: tuple[tuple[str, str], ...]
    via: str  # the target path that goes through the planted link(s)
    lands: str  # where `via` is inside the root

    def __str__(self) -> str:
        return self.name


DIR_WAYS = [
    Way("absolute", (("/evil", "{host}"),), "/evil", "/{hostrel}"),
    Way("relative", (("/evil", "../host"),), "/evil", "/host"),
    Way("dotdots", (("/a/b/evil", "../" * 12 + "{host}"),), "/a/b/evil", "/{hostrel}"),
    Way("chain", (("/evil", "hop"), ("/hop", "jump"), ("/jump", "{host}")), "/evil", "/{hostrel}"),
    Way("nested-relative", (("/srv/data/evil", "../../../host"),), "/srv/data/evil", "/host"),
]
FILE_WAYS = [
    Way("absolute", (("/etc/f.gguf", "{host}/secret"),), "/etc/f.gguf", "/{hostrel}/secret"),
    Way("relative", (("/etc/f.gguf", "../../host/secret"),), "/etc/f.gguf", "/host/secret"),
    Way(
        "chain",
        (("/etc/f.gguf", "g"), ("/etc/g", "{host}/secret")),
        "/etc/f.gguf",
        "/{hostrel}/secret",
    ),
    Way(
        "via-dir-link",
        (("/etc/d", "{host}"), ("/etc/f.gguf", "d/secret")),
        "/etc/f.gguf",
        "/{hostrel}/secret",
    ),
]

Case = Callable[[Scene, Way], Awaitable[None]]


# -- a link to the host directory as a middle component ------------------------------


async def mid_read(s: Scene, w: Way) -> None:
    await s.refused("fs.read", f"fs.read: failed to read {w.via}/secret", path=f"{w.via}/secret")


async def mid_write(s: Scene, w: Way) -> None:
    done, _ = await s.ok("fs.write", path=f"{w.via}/secret", content="pwned")
    assert s.inroot(f"{w.lands}/secret").read_bytes() == b"pwned"
    await s.rollback(done)
    assert not s.inroot(f"{w.lands}/secret").exists()


async def mid_chmod(s: Scene, w: Way) -> None:
    path = f"{w.via}/secret"
    await s.refused("fs.chmod", f"fs.chmod: failed to chmod {path}", path=path, mode="4777")


async def mid_chmod_dir(s: Scene, w: Way) -> None:
    await s.refused("fs.chmod", f"fs.chmod: failed to chmod {w.via}", path=w.via, mode="0777")


async def mid_chown(s: Scene, w: Way) -> None:
    path = f"{w.via}/secret"
    await s.refused("fs.chown", f"fs.chown: failed to chown {path}", path=path, uid=0, gid=0)


async def mid_mkdir(s: Scene, w: Way) -> None:
    done, _ = await s.ok("fs.mkdir", path=f"{w.via}/new", recursive=True)
    assert s.inroot(f"{w.lands}/new").is_dir()
    await s.rollback(done)
    assert not s.inroot(f"{w.lands}/new").exists()


async def mid_mkdir_plain(s: Scene, w: Way) -> None:
    path = f"{w.via}/new"
    await s.refused("fs.mkdir", f"fs.mkdir: failed to create directory {path}", path=path)


async def mid_delete(s: Scene, w: Way) -> None:
    path = f"{w.via}/secret"
    await s.refused("fs.delete", f"fs.delete: path does not exist: {path}", path=path)


async def mid_delete_tree(s: Scene, w: Way) -> None:
    path = f"{w.via}/dir"
    error = f"fs.delete: path does not exist: {path}"
    await s.refused("fs.delete", error, path=path, recursive=True)


async def mid_move_out(s: Scene, w: Way) -> None:
    source = f"{w.via}/secret"
    error = f"fs.move: source does not exist: {source}"
    await s.refused("fs.move", error, source=source, destination="/loot")
    assert not (s.root / "loot").exists()


async def mid_move_in(s: Scene, w: Way) -> None:
    done, _ = await s.ok("fs.move", source="/etc/hosts", destination=f"{w.via}/secret")
    assert s.inroot(f"{w.lands}/secret").read_bytes() == HOSTS
    await s.rollback(done)
    assert (s.root / "etc/hosts").read_bytes() == HOSTS


async def mid_copy_out(s: Scene, w: Way) -> None:
    source = f"{w.via}/secret"
    error = f"fs.copy: source does not exist: {source}"
    await s.refused("fs.copy", error, source=source, destination="/loot")
    assert not (s.root / "loot").exists()


async def mid_copy_in(s: Scene, w: Way) -> None:
    done, _ = await s.ok("fs.copy", source="/etc", destination=f"{w.via}/etc")
    assert s.inroot(f"{w.lands}/etc/hosts").read_bytes() == HOSTS
    await s.rollback(done)
    assert not s.inroot(f"{w.lands}/etc").exists()


async def mid_list(s: Scene, w: Way) -> None:
    await s.refused("fs.list", f"fs.list: failed to read directory {w.via}", path=w.via)


async def mid_stat(s: Scene, w: Way) -> None:
    path = f"{w.via}/secret"
    await s.refused("fs.stat", f"fs.stat: failed to stat {path}", path=path)


async def mid_search(s: Scene, w: Way) -> None:
    error = f"fs.search: failed to read directory {w.via}"
    await s.refused("fs.search", error, directory=w.via, pattern="*")


async def mid_disk_usage(s: Scene, w: Way) -> None:
    path = f"{w.via}/secret"
    error = f"fs.disk_usage: failed to get disk usage of {path}"
    await s.refused("fs.disk_usage", error, path=path)


async def mid_symlink(s: Scene, w: Way) -> None:
    done, _ = await s.ok("fs.symlink", target="/etc/hosts", link=f"{w.via}/l")
    assert os.readlink(s.inroot(f"{w.lands}/l")) == "/etc/hosts"
    _, read = await s.ok("fs.read", path=f"{w.via}/l")
    assert read["content"] == HOSTS.decode()  # the root's /etc/hosts
    await s.rollback(done)
    assert gone(s.inroot(f"{w.lands}/l"))


async def mid_storage_dir(s: Scene, w: Way) -> None:
    done, out = await s.ok("storage.dir", path=f"{w.via}/sub", mode="0777")
    assert out["changed"] and out["mode"] == "0777"
    assert stat.S_IMODE(s.inroot(f"{w.lands}/sub").stat().st_mode) == 0o777
    await s.rollback(done)
    assert not s.inroot(f"{w.lands}/sub").exists()


async def mid_storage_dir_link(s: Scene, w: Way) -> None:
    error = f"{w.via} exists and is not a directory"
    await s.refused("storage.dir", error, path=w.via, mode="0777")


async def mid_swapfile(s: Scene, w: Way) -> None:
    done, out = await s.ok("storage.swapfile", path=f"{w.via}/swap", size="1M")
    assert out["simulated"] and out["size"] == 1 << 20
    st = s.inroot(f"{w.lands}/swap").lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    await s.rollback(done)
    assert not s.inroot(f"{w.lands}/swap").exists()


async def mid_model_fetch(s: Scene, w: Way) -> None:
    path = f"{w.via}/m.gguf"
    url = "file:///models/src.gguf"
    done, out = await s.ok("model.fetch", path=path, url=url, sha256=SOURCE_SHA)
    assert out["downloaded"] and s.inroot(f"{w.lands}/m.gguf").read_bytes() == SOURCE_MODEL
    await s.rollback(done)
    assert not s.inroot(f"{w.lands}/m.gguf").exists()


async def mid_model_source(s: Scene, w: Way) -> None:
    url = f"file://{w.via}/models/host.gguf"
    error = f"cannot read {url}: no such file"
    await s.refused("model.fetch", error, path="/models/x.gguf", url=url, sha256="0" * 64)
    assert not (s.root / "models/x.gguf").exists()


async def mid_model_list(s: Scene, w: Way) -> None:
    _, out = await s.ok("model.list", directory=f"{w.via}/models")
    assert out == {"models": []}
    _, out = await s.ok("model.list", paths=[f"{w.via}/models/host.gguf"])
    assert out == {"models": []}


async def mid_model_remove(s: Scene, w: Way) -> None:
    _, out = await s.ok("model.remove", path=f"{w.via}/models/host.gguf")
    assert out == {"path": f"{w.via}/models/host.gguf", "removed": False}


async def mid_ctx_path(s: Scene, w: Way) -> None:
    """What mounts, loop images, mkfs, apt and net tools get from ToolContext.path."""
    ctx = s.ctx()
    for name in ("disk.img", "lower", "secret"):
        mapped = ctx.path(f"{w.via}/{name}")
        assert mapped == s.inroot(f"{w.lands}/{name}")
        assert inside(mapped, s.root)
    assert mounting.source_host(ctx, f"{w.via}/disk.img") == s.inroot(f"{w.lands}/disk.img")
    assert inside(ctx.path(w.via), s.root)


MIDDLE: dict[str, Case] = {
    "fs.read": mid_read,
    "fs.write": mid_write,
    "fs.chmod": mid_chmod,
    "fs.chmod-dir": mid_chmod_dir,
    "fs.chown": mid_chown,
    "fs.mkdir-recursive": mid_mkdir,
    "fs.mkdir": mid_mkdir_plain,
    "fs.delete": mid_delete,
    "fs.delete-recursive": mid_delete_tree,
    "fs.move-out": mid_move_out,
    "fs.move-in": mid_move_in,
    "fs.copy-out": mid_copy_out,
    "fs.copy-in": mid_copy_in,
    "fs.list": mid_list,
    "fs.stat": mid_stat,
    "fs.search": mid_search,
    "fs.disk_usage": mid_disk_usage,
    "fs.symlink": mid_symlink,
    "storage.dir": mid_storage_dir,
    "storage.dir-the-link": mid_storage_dir_link,
    "storage.swapfile": mid_swapfile,
    "model.fetch": mid_model_fetch,
    "model.fetch-file-source": mid_model_source,
    "model.list": mid_model_list,
    "model.remove": mid_model_remove,
    "ctx.path-mount-loop-sources": mid_ctx_path,
}


@pytest.mark.parametrize("way", DIR_WAYS, ids=lambda w: f"dir-{w}")
@pytest.mark.parametrize("case", list(MIDDLE), ids=lambda c: f"root-middle-{c}")
async def test_link_to_a_host_directory_in_the_middle(scene: Scene, case: str, way: Way) -> None:
    scene.plant(way.links)
    await MIDDLE[case](scene, way)
    scene.untouched()


# -- a link to a host file as the last component ---------------------------------------


async def last_read(s: Scene, w: Way) -> None:
    await s.refused("fs.read", f"fs.read: failed to read {w.via}", path=w.via)


async def last_write(s: Scene, w: Way) -> None:
    link = os.readlink(s.inroot(w.via))
    done, _ = await s.ok("fs.write", path=w.via, content="pwned")
    assert s.inroot(w.lands).read_bytes() == b"pwned"  # the link's target inside the root
    assert os.readlink(s.inroot(w.via)) == link
    await s.rollback(done)
    assert not s.inroot(w.lands).exists() and os.readlink(s.inroot(w.via)) == link


async def last_chmod(s: Scene, w: Way) -> None:
    await s.refused("fs.chmod", f"fs.chmod: failed to chmod {w.via}", path=w.via, mode="4777")


async def last_chmod_after_write(s: Scene, w: Way) -> None:
    await s.ok("fs.write", path=w.via, content="mine")
    done, _ = await s.ok("fs.chmod", path=w.via, mode="4777")
    assert stat.S_IMODE(s.inroot(w.lands).stat().st_mode) == 0o4777
    await s.rollback(done)
    assert stat.S_IMODE(s.inroot(w.lands).stat().st_mode) != 0o4777


async def last_chown(s: Scene, w: Way) -> None:
    error = f"fs.chown: failed to chown {w.via}"
    await s.refused("fs.chown", error, path=w.via, uid=0, gid=0)


async def last_copy_out(s: Scene, w: Way) -> None:
    error = f"fs.copy: source does not exist: {w.via}"
    await s.refused("fs.copy", error, source=w.via, destination="/loot")


async def last_copy_in(s: Scene, w: Way) -> None:
    done, _ = await s.ok("fs.copy", source="/etc/hosts", destination=w.via)
    assert s.inroot(w.lands).read_bytes() == HOSTS
    await s.rollback(done)
    assert not s.inroot(w.lands).exists()


async def last_move(s: Scene, w: Way) -> None:
    link = os.readlink(s.inroot(w.via))
    done, _ = await s.ok("fs.move", source=w.via, destination="/moved")
    assert os.readlink(s.root / "moved") == link  # the link moved, as a link
    await s.rollback(done)
    assert os.readlink(s.inroot(w.via)) == link and gone(s.root / "moved")


async def last_delete(s: Scene, w: Way) -> None:
    await s.ok("fs.delete", path=w.via)
    assert gone(s.inroot(w.via))


async def last_stat(s: Scene, w: Way) -> None:
    _, out = await s.ok("fs.stat", path=w.via)
    assert out["is_symlink"] and not out["is_file"]


async def last_mkdir(s: Scene, w: Way) -> None:
    error = f"fs.mkdir: failed to create directory {w.via}"
    await s.refused("fs.mkdir", error, path=w.via, recursive=True)


async def last_symlink(s: Scene, w: Way) -> None:
    error = f"fs.symlink: failed to create symlink {w.via}"
    await s.refused("fs.symlink", error, target="/etc/hosts", link=w.via)


async def last_storage_dir(s: Scene, w: Way) -> None:
    error = f"{w.via} exists and is not a directory"
    await s.refused("storage.dir", error, path=w.via, mode="4777")


async def last_swapfile(s: Scene, w: Way) -> None:
    error = f"{w.via} exists and is not a regular file"
    await s.refused("storage.swapfile", error, path=w.via, size="1M")


async def last_model_fetch(s: Scene, w: Way) -> None:
    link = os.readlink(s.inroot(w.via))
    url = "file:///models/src.gguf"
    done, out = await s.ok("model.fetch", path=w.via, url=url, sha256=SOURCE_SHA)
    assert out["downloaded"]
    assert not s.inroot(w.via).is_symlink()  # the link was replaced, not written through
    assert s.inroot(w.via).read_bytes() == SOURCE_MODEL
    await s.rollback(done)
    assert os.readlink(s.inroot(w.via)) == link


async def last_model_remove(s: Scene, w: Way) -> None:
    link = os.readlink(s.inroot(w.via))
    done, out = await s.ok("model.remove", path=w.via)
    assert out["removed"] and gone(s.inroot(w.via))
    await s.rollback(done)
    assert os.readlink(s.inroot(w.via)) == link


async def last_model_list(s: Scene, w: Way) -> None:
    _, out = await s.ok("model.list", directory="/etc", paths=[w.via])
    assert out == {"models": []}


async def last_model_load(s: Scene, w: Way) -> None:
    outcome = await s.call("model.load", name="x", path=w.via, contextLength=512, threads=1,
                           gpuLayers=0)  # fmt: skip
    assert not outcome.success  # the file is checked inside the root: none there, no runtime
    assert outcome.error.startswith(f"model.load x: {w.via}: "), outcome.error
    assert "runtime" not in outcome.error, outcome.error


async def last_ctx_path(s: Scene, w: Way) -> None:
    mapped = s.ctx().path(w.via)
    assert mapped == s.inroot(w.lands)  # what a mount source or an image path becomes


LAST: dict[str, Case] = {
    "fs.read": last_read,
    "fs.write": last_write,
    "fs.chmod": last_chmod,
    "fs.chmod-after-write": last_chmod_after_write,
    "fs.chown": last_chown,
    "fs.copy-out": last_copy_out,
    "fs.copy-in": last_copy_in,
    "fs.move": last_move,
    "fs.delete": last_delete,
    "fs.stat": last_stat,
    "fs.mkdir": last_mkdir,
    "fs.symlink": last_symlink,
    "storage.dir": last_storage_dir,
    "storage.swapfile": last_swapfile,
    "model.fetch": last_model_fetch,
    "model.remove": last_model_remove,
    "model.list": last_model_list,
    "model.load": last_model_load,
    "ctx.path": last_ctx_path,
}


@pytest.mark.parametrize("way", FILE_WAYS, ids=lambda w: f"file-{w}")
@pytest.mark.parametrize("case", list(LAST), ids=lambda c: f"root-last-{c}")
async def test_link_to_a_host_file_as_the_last_component(scene: Scene, case: str, way: Way) -> None:
    scene.plant(way.links)
    await LAST[case](scene, way)
    scene.untouched()


# -- names the tools make next to a path -----------------------------------------------

SIDE_LINKS = {"absolute": "{host}/secret", "relative": "../../host/secret"}


@pytest.mark.parametrize(
    "text", list(SIDE_LINKS.values()), ids=[f"root-bak-{k}" for k in SIDE_LINKS]
)
async def test_write_replaces_a_planted_bak_link(scene: Scene, text: str) -> None:
    scene.plant((("/etc/hosts.bak", text),))
    done, _ = await scene.ok("fs.write", path="/etc/hosts", content="new")
    bak = scene.root / "etc/hosts.bak"
    assert not bak.is_symlink() and bak.read_bytes() == HOSTS
    await scene.rollback(done)
    assert os.readlink(bak) == scene.fill(text)  # the link is back, as it was
    assert (scene.root / "etc/hosts").read_bytes() == HOSTS
    scene.untouched()


@pytest.mark.parametrize(
    "text", list(SIDE_LINKS.values()), ids=[f"root-restore-temp-{k}" for k in SIDE_LINKS]
)
async def test_rollback_never_writes_through_a_planted_restore_temporary(
    scene: Scene, text: str
) -> None:
    done, _ = await scene.ok("fs.write", path="/etc/hosts", content="new")
    scene.plant((("/etc/.hosts.aios-restore", text),))
    await scene.rollback(done)
    assert (scene.root / "etc/hosts").read_bytes() == HOSTS
    assert gone(scene.root / "etc/.hosts.aios-restore")
    scene.untouched()


@pytest.mark.parametrize(
    "text", list(SIDE_LINKS.values()), ids=[f"root-model-part-{k}" for k in SIDE_LINKS]
)
async def test_model_fetch_refuses_a_planted_part_link(scene: Scene, text: str) -> None:
    scene.plant((("/models/p.gguf.part", text),))
    error = "/models/p.gguf.part is not a regular file; refusing to write through it "
    error += "(model.remove deletes it)"
    url = "file:///models/src.gguf"
    await scene.refused("model.fetch", error, path="/models/p.gguf", url=url, sha256=SOURCE_SHA)
    assert not (scene.root / "models/p.gguf").exists()
    _, out = await scene.ok("model.remove", path="/models/p.gguf")
    assert out["removed"] is False and gone(scene.root / "models/p.gguf.part")
    scene.untouched()


@pytest.mark.parametrize(
    "text", list(SIDE_LINKS.values()), ids=[f"root-model-sidecar-{k}" for k in SIDE_LINKS]
)
async def test_model_fetch_replaces_a_planted_sidecar_link(scene: Scene, text: str) -> None:
    scene.plant((("/models/p.gguf.sha256", text),))
    sidecar = scene.root / "models/p.gguf.sha256"
    url = "file:///models/src.gguf"
    done, _ = await scene.ok("model.fetch", path="/models/p.gguf", url=url, sha256=SOURCE_SHA)
    assert not sidecar.is_symlink() and sidecar.read_text() == SOURCE_SHA + "\n"
    scene.untouched()
    await scene.rollback(done)
    assert os.readlink(sidecar) == scene.fill(text)  # the link is back, as it was
    assert gone(scene.root / "models/p.gguf")
    _, out = await scene.ok("model.remove", path="/models/p.gguf")
    assert out["removed"] is False and gone(sidecar)  # the link itself went, not its target
    scene.untouched()


# -- trees that hold links -------------------------------------------------------------


@pytest.fixture
def tree(scene: Scene) -> Path:
    top = scene.root / "srv/tree"
    (top / "sub").mkdir(parents=True)
    (top / "sub/file").write_bytes(b"in root\n")
    (top / "abs").symlink_to(scene.host)
    (top / "sub/rel").symlink_to("../../../../host")
    return top


async def test_root_storage_dir_absent_force_removes_links_not_targets(
    scene: Scene, tree: Path
) -> None:
    done, _ = await scene.ok("storage.dir", path="/srv/tree", state="absent", force=True)
    assert gone(tree)
    await scene.rollback(done)
    assert os.readlink(tree / "abs") == str(scene.host)  # restored as links, fd by fd
    assert os.readlink(tree / "sub/rel") == "../../../../host"
    assert (tree / "sub/file").read_bytes() == b"in root\n"
    scene.untouched()


async def test_root_fs_delete_recursive_removes_links_not_targets(scene: Scene, tree: Path) -> None:
    await scene.ok("fs.delete", path="/srv/tree", recursive=True)
    assert gone(tree)
    scene.untouched()


async def test_root_fs_copy_tree_copies_links_as_links(scene: Scene, tree: Path) -> None:
    done, _ = await scene.ok("fs.copy", source="/srv/tree", destination="/copy")
    assert os.readlink(scene.root / "copy/abs") == str(scene.host)
    assert os.readlink(scene.root / "copy/sub/rel") == "../../../../host"
    assert (scene.root / "copy/sub/file").read_bytes() == b"in root\n"
    await scene.ok("fs.write", path="/copy/abs/secret", content="pwned")  # in the root
    assert (scene.root / str(scene.host).lstrip("/") / "secret").read_bytes() == b"pwned"
    await scene.rollback(done)
    assert not (scene.root / "copy").exists()
    scene.untouched()


async def test_root_fs_search_does_not_walk_into_links(scene: Scene, tree: Path) -> None:
    _, out = await scene.ok("fs.search", directory="/srv/tree", pattern="*")
    assert out == {
        "matches": ["/srv/tree/abs", "/srv/tree/sub", "/srv/tree/sub/file", "/srv/tree/sub/rel"]
    }
    _, listed = await scene.ok("fs.list", path="/srv/tree")
    assert [(e["name"], e["type"]) for e in listed["entries"]] == [
        ("abs", "symlink"),
        ("sub", "dir"),
    ]
    scene.untouched()


# -- fs.symlink's own targets ----------------------------------------------------------

CLIMBING = [
    ("../host/secret", "/l", "/"),
    ("../../x", "/a/l", "/a"),
    ("a/../../..", "/d/l", "/d"),
    ("..", "/l", "/"),
    ("./../../etc/shadow", "/srv/l", "/srv"),
]


@pytest.mark.parametrize(
    ("target", "link", "directory"), CLIMBING, ids=[f"root-symlink-climbs-{i}" for i in range(5)]
)
async def test_symlink_refuses_a_relative_target_climbing_above_the_root(
    scene: Scene, target: str, link: str, directory: str
) -> None:
    error = f"fs.symlink: target {target!r} climbs above the root from {directory}"
    await scene.refused("fs.symlink", error, target=target, link=link)
    assert gone(scene.root / link.lstrip("/"))
    assert not (scene.root / "a").exists() and not (scene.root / "d").exists()
    scene.untouched()


async def test_root_symlink_relative_target_inside_the_root(scene: Scene) -> None:
    await scene.ok("fs.symlink", target="../etc/hosts", link="/a/l")
    _, out = await scene.ok("fs.read", path="/a/l")
    assert out["content"] == HOSTS.decode()
    scene.untouched()


async def test_root_symlink_absolute_target_means_from_the_root(scene: Scene) -> None:
    target = scene.fill("{host}/secret")
    await scene.ok("fs.symlink", target=target, link="/l")
    assert os.readlink(scene.root / "l") == target  # stored verbatim
    await scene.refused("fs.read", "fs.read: failed to read /l", path="/l")
    await scene.ok("fs.write", path="/l", content="mine")
    await scene.ok("fs.chmod", path="/l", mode="4777")
    inside = scene.inroot("/{hostrel}/secret")
    assert inside.read_bytes() == b"mine" and stat.S_IMODE(inside.stat().st_mode) == 0o4777
    scene.untouched()


async def test_root_symlink_loop_is_refused_not_followed(scene: Scene) -> None:
    scene.plant((("/loop1", "loop2"), ("/loop2", "/loop1")))
    error = "cannot resolve '/loop1' under the root: too many levels of symbolic links"
    await scene.refused("fs.write", error, path="/loop1", content="x")
    await scene.refused("fs.chmod", error, path="/loop1", mode="0777")
    await scene.refused("fs.read", "fs.read: failed to read /loop1", path="/loop1")
    scene.untouched()


# -- hostile path strings --------------------------------------------------------------

HOSTILE = ["/etc/../../../tmp", "/..", "/a/..", "etc/passwd", "/etc/passwd\x00/../x", ""]
PATH_KEYS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("fs.read", "path", {}, PATH),
    ("fs.write", "path", {"content": "x"}, PATH),
    ("fs.chmod", "path", {"mode": "0777"}, PATH),
    ("fs.chown", "path", {"uid": 0, "gid": 0}, PATH),
    ("fs.mkdir", "path", {"recursive": True}, PATH),
    ("fs.delete", "path", {"recursive": True}, PATH),
    ("fs.move", "source", {"destination": "/x"}, PATH),
    ("fs.move", "destination", {"source": "/etc/hosts"}, PATH),
    ("fs.copy", "source", {"destination": "/x"}, PATH),
    ("fs.copy", "destination", {"source": "/etc/hosts"}, PATH),
    ("fs.list", "path", {}, PATH),
    ("fs.stat", "path", {}, PATH),
    ("fs.search", "directory", {"pattern": "*"}, PATH),
    ("fs.disk_usage", "path", {}, PATH),
    ("fs.symlink", "link", {"target": "/etc/hosts"}, PATH),
    ("storage.dir", "path", {"mode": "0777"}, ABS_PATH),
    ("storage.swapfile", "path", {"size": "1M"}, ABS_PATH),
    ("model.fetch", "path", {"url": "file:///models/src.gguf", "sha256": SOURCE_SHA}, MODEL_PATH),
    ("model.list", "directory", {}, ABS_PATH),
    ("model.remove", "path", {}, MODEL_PATH),
    ("model.load", "path", {"name": "x", "contextLength": 512, "threads": 1, "gpuLayers": 0},
     MODEL_PATH),
]  # fmt: skip


@pytest.mark.parametrize("value", HOSTILE, ids=[f"v{i}" for i in range(len(HOSTILE))])
@pytest.mark.parametrize(
    ("tool", "key", "rest", "schema"),
    PATH_KEYS,
    ids=[f"root-schema-{t}-{k}" for t, k, _, _ in PATH_KEYS],
)
async def test_schema_refuses_hostile_paths(
    scene: Scene, tool: str, key: str, rest: dict[str, Any], schema: dict[str, Any], value: str
) -> None:
    before = image(scene.root)
    error = f"Invalid input: $.{key}: {value!r} does not match {schema['pattern']!r}"
    await scene.refused(tool, error.replace("{", "{{").replace("}", "}}"), **{key: value}, **rest)
    assert image(scene.root) == before
    scene.untouched()


@pytest.mark.parametrize(
    "value", ["/etc/hosts\x00", "", "a\x00../../x"], ids=["nul", "empty", "nul-dots"]
)
async def test_root_schema_refuses_hostile_link_targets(scene: Scene, value: str) -> None:
    pattern = LINK_TARGET["pattern"]
    error = f"Invalid input: $.target: {value!r} does not match {pattern!r}"
    escaped = error.replace("{", "{{").replace("}", "}}")
    await scene.refused("fs.symlink", escaped, target=value, link="/l")
    assert gone(scene.root / "l")
    scene.untouched()


NO_DOTS = "path must not contain '..' or NUL: {v}"
AIOS_HOSTILE = [
    ("fs.read", {"path": "/etc/../../host/secret"}, NO_DOTS),
    ("fs.write", {"path": "/../host/secret", "content": "x"}, NO_DOTS),
    ("fs.chmod", {"path": "/x/../../host", "mode": "0777"}, NO_DOTS),
    ("fs.write", {"path": "/etc/hosts\x00x", "content": "x"}, NO_DOTS),
    ("fs.delete", {"path": "/srv/../../host", "recursive": True}, NO_DOTS),
    ("fs.write", {"path": "etc/hosts", "content": "x"}, "path must be absolute: {v}"),
    ("fs.symlink", {"target": "../../host", "link": "/l"},
     "fs.symlink: target '../../host' climbs above the root from /"),
    ("fs.symlink", {"target": "/etc/hosts\x00", "link": "/l"},
     "fs.symlink: invalid target '/etc/hosts\\x00': empty or holds NUL"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("tool", "args", "error"),
    AIOS_HOSTILE,
    ids=[f"root-aios-{i}-{t}" for i, (t, _, _) in enumerate(AIOS_HOSTILE)],
)
async def test_aios_profile_tools_refuse_hostile_paths(
    tmp_path: Path, tool: str, args: dict[str, Any], error: str
) -> None:
    """The `aios` profile has no schemas: the tool itself refuses (ToolContext.path's rules)."""
    scene = await open_scene(tmp_path, profile="aios")
    try:
        before = image(scene.root)
        data = json.dumps(args).encode()
        outcome = await scene.pipeline.execute(Request(tool, "task-agent", "t", data, "attack"))
        value = next(iter(args.values()))
        assert not outcome.success
        assert outcome.error == error.format(v=repr(value))
        assert image(scene.root) == before
    finally:
        await scene.pipeline.close()
    scene.untouched()


async def test_root_a_file_in_the_root_where_the_host_has_a_directory(scene: Scene) -> None:
    """The in-root twin of the link's target is a file: resolution stops there (ENOTDIR),
    it never falls back to the spelled path, which the host would follow to its directory."""
    twin = scene.inroot("/{hostrel}")
    twin.parent.mkdir(parents=True)
    twin.write_bytes(b"a file in the root\n")
    scene.plant((("/evil", "{host}"),))
    mapped = scene.ctx().path("/evil/secret")
    assert mapped == twin / "secret" and inside(mapped, scene.root)
    before_image = "cannot save a before-image of /{hostrel}/secret: Not a directory"
    await scene.refused("fs.write", before_image, path="/evil/secret", content="pwned")
    await scene.refused("fs.chmod", before_image, path="/evil/secret", mode="4777")
    await scene.refused("fs.read", "fs.read: failed to read /evil/secret", path="/evil/secret")
    await scene.refused("storage.dir", "/evil/sub: not a directory", path="/evil/sub", mode="0777")
    error = "/evil/swap: not a directory"
    await scene.refused("storage.swapfile", error, path="/evil/swap", size="64K")
    error = "model.fetch /evil/m.gguf: not a directory"
    url = "file:///models/src.gguf"
    await scene.refused("model.fetch", error, path="/evil/m.gguf", url=url, sha256=SOURCE_SHA)
    assert twin.read_bytes() == b"a file in the root\n"
    scene.untouched()
