"""model.* tools for real: downloads over loopback HTTP from sandbox.fileserver.

The file server runs in this process on 127.0.0.1 with an ephemeral port
(host loopback is fine for a server the test starts and stops). A handler
double cuts the first response short to interrupt a download; another
ignores Range to force a restart. Results are read back with sha256sum.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import BinaryIO, ClassVar

import pytest

from registry.core.errors import ToolError
from sandbox import demo, fileserver
from tests.system.helpers import run
from tests.system.targets import ScratchTarget, make_target

MODEL = "tinyllama-1.1b-demo"
DEST = "/var/lib/aios/models/tinyllama-1.1b-demo.gguf"


def sha256sum(path: Path) -> str:
    return run(["sha256sum", str(path)]).split()[0]


class CutOnceHandler(fileserver.Handler):
    """Sends only the first 700 KiB of the first body, then drops the connection."""

    ranges: ClassVar[list[str | None]] = []
    cut: ClassVar[threading.Event] = threading.Event()

    def _serve(self, *, body: bool) -> None:
        type(self).ranges.append(self.headers.get("Range"))
        super()._serve(body=body)

    def send_body(self, f: BinaryIO, offset: int, count: int) -> None:
        if not self.cut.is_set():
            self.cut.set()
            self.connection.sendfile(f, offset, 700 * 1024)
            self.close_connection = True
            return
        super().send_body(f, offset, count)


class NoRangeHandler(fileserver.Handler):
    """A server that ignores Range and always answers 200 with the whole file."""

    def _serve(self, *, body: bool) -> None:
        if "Range" in self.headers:
            del self.headers["Range"]
        super()._serve(body=body)


@pytest.fixture
def www(tmp_path: Path) -> Path:
    directory = tmp_path / "www"
    directory.mkdir()
    for name in (MODEL, "demo-tiny"):
        with (directory / f"{name}.gguf").open("wb") as f:
            for piece in demo.gguf_chunks(name):
                f.write(piece)
    (directory / "bad.gguf").write_bytes(b"GGML" + bytes(4096))
    return directory


@pytest.fixture
def target(tmp_path: Path) -> ScratchTarget:
    return make_target(tmp_path)


async def test_interrupted_download_resumes_with_range(target: ScratchTarget, www: Path) -> None:
    CutOnceHandler.ranges = []
    CutOnceHandler.cut = threading.Event()
    args = {"sha256": demo.gguf_sha256(MODEL), "path": DEST}
    part = target.root / (DEST.lstrip("/") + ".part")
    with fileserver.serve(www, handler=CutOnceHandler) as base:
        args["url"] = f"{base}/{MODEL}.gguf"
        with pytest.raises(ToolError, match=r"interrupted after 716800 bytes .* part file is kept"):
            await target.call("model.fetch", args)
        assert part.stat().st_size == 700 * 1024
        assert not (target.root / DEST.lstrip("/")).exists()
        done = await target.call("model.fetch", args)
    size = 2 << 20
    assert done.output == {
        "path": DEST, "size": size, "sha256": args["sha256"], "resumed_from": 700 * 1024,
        "downloaded": True,
    }  # fmt: skip
    assert CutOnceHandler.ranges == [None, "bytes=716800-"]
    assert (target.progress.done, target.progress.total) == (size, size)
    assert sha256sum(target.root / DEST.lstrip("/")) == args["sha256"]
    assert not part.exists()
    again = await target.call("model.fetch", args)  # already there: nothing downloaded
    assert again.output["downloaded"] is False


async def test_server_ignoring_range_restarts_from_zero(target: ScratchTarget, www: Path) -> None:
    part = target.root / (DEST.lstrip("/") + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes((www / f"{MODEL}.gguf").read_bytes()[:1000])
    with fileserver.serve(www, handler=NoRangeHandler) as base:
        done = await target.call(
            "model.fetch",
            {"url": f"{base}/{MODEL}.gguf", "sha256": demo.gguf_sha256(MODEL), "path": DEST},
        )
    assert done.output["resumed_from"] == 0
    assert sha256sum(target.root / DEST.lstrip("/")) == demo.gguf_sha256(MODEL)


async def test_wrong_hash_and_bad_header_are_refused_and_the_part_is_deleted(
    target: ScratchTarget, www: Path
) -> None:
    models = target.root / "var/lib/aios/models"
    with fileserver.serve(www) as base:
        with pytest.raises(ToolError) as wrong:
            await target.call(
                "model.fetch", {"url": f"{base}/{MODEL}.gguf", "sha256": "0" * 64, "path": DEST}
            )
        assert "sha256 mismatch: expected 000" in str(wrong.value)
        assert "the part file was deleted" in str(wrong.value)
        with pytest.raises(ToolError) as bad:
            await target.call(
                "model.fetch",
                {
                    "url": f"{base}/bad.gguf",
                    "sha256": "0" * 64,
                    "path": "/var/lib/aios/models/b.gguf",
                },
            )
        assert "not a GGUF file: magic b'GGML'" in str(bad.value)
        with pytest.raises(ToolError, match="HTTP 404"):
            await target.call(
                "model.fetch", {"url": f"{base}/missing.gguf", "sha256": "0" * 64, "path": DEST}
            )
    assert sorted(p.name for p in models.iterdir()) == []


async def test_rollback_keeps_the_previous_file_and_list_hashes_once(
    target: ScratchTarget, www: Path
) -> None:
    host = target.root / DEST.lstrip("/")
    with fileserver.serve(www) as base:
        first = await target.call(
            "model.fetch",
            {"url": f"{base}/{MODEL}.gguf", "sha256": demo.gguf_sha256(MODEL), "path": DEST},
        )
        replaced = await target.call(
            "model.fetch",
            {
                "url": f"{base}/demo-tiny.gguf",
                "sha256": demo.gguf_sha256("demo-tiny"),
                "path": DEST,
            },
        )
    assert sha256sum(host) == demo.gguf_sha256("demo-tiny")
    await target.rollback(replaced)  # the previous model is back
    assert sha256sum(host) == demo.gguf_sha256(MODEL)

    listed = (await target.call("model.list", {})).output["models"]
    assert listed == [
        {
            "path": DEST,
            "size": 2 << 20,
            "sha256": demo.gguf_sha256(MODEL),
            "mtime": listed[0]["mtime"],
            "gguf_version": 3,
        }
    ]
    assert (target.state_dir / "model-sha256.json").exists()

    removed = await target.call("model.remove", {"path": DEST})
    assert removed.output == {"path": DEST, "removed": True} and not host.exists()
    await target.rollback(removed)
    assert sha256sum(host) == demo.gguf_sha256(MODEL)
    await target.rollback(first)  # there was no file before the first fetch
    assert not host.exists()
    assert (await target.call("model.remove", {"path": DEST})).output["removed"] is False


async def test_file_url_is_mapped_under_the_root(target: ScratchTarget, www: Path) -> None:
    source = target.root / "srv/m.gguf"
    source.parent.mkdir(parents=True)
    source.write_bytes((www / "demo-tiny.gguf").read_bytes())
    done = await target.call(
        "model.fetch",
        {
            "url": "file:///srv/m.gguf",
            "sha256": demo.gguf_sha256("demo-tiny"),
            "path": "/m/x.gguf",
            "size": "1M",
        },
    )
    assert done.output["size"] == 1 << 20
    assert sha256sum(target.root / "m/x.gguf") == demo.gguf_sha256("demo-tiny")


async def test_fetch_leaves_the_sidecar_and_remove_and_rollback_keep_it_with_the_file(
    target: ScratchTarget, www: Path
) -> None:
    host = target.root / DEST.lstrip("/")
    sidecar = host.with_name(host.name + ".sha256")
    with fileserver.serve(www) as base:
        first = await target.call(
            "model.fetch",
            {"url": f"{base}/{MODEL}.gguf", "sha256": demo.gguf_sha256(MODEL), "path": DEST},
        )
        assert sidecar.read_text() == demo.gguf_sha256(MODEL) + "\n"
        sidecar.unlink()  # a file fetched before sidecars existed: the next fetch adds it
        again = await target.call(
            "model.fetch",
            {"url": f"{base}/{MODEL}.gguf", "sha256": demo.gguf_sha256(MODEL), "path": DEST},
        )
        assert again.output["downloaded"] is False
        assert sidecar.read_text() == demo.gguf_sha256(MODEL) + "\n"
        replaced = await target.call(
            "model.fetch",
            {
                "url": f"{base}/demo-tiny.gguf",
                "sha256": demo.gguf_sha256("demo-tiny"),
                "path": DEST,
            },
        )
    assert sidecar.read_text() == demo.gguf_sha256("demo-tiny") + "\n"
    assert sorted(p.name for p in host.parent.iterdir()) == [host.name, sidecar.name]
    listed = (await target.call("model.list", {})).output["models"]
    assert [m["path"] for m in listed] == [DEST]  # the sidecar is no model
    await target.rollback(replaced)
    assert sidecar.read_text() == demo.gguf_sha256(MODEL) + "\n"
    removed = await target.call("model.remove", {"path": DEST})
    assert not host.exists() and not sidecar.exists()
    await target.rollback(removed)
    assert sha256sum(host) == demo.gguf_sha256(MODEL)
    assert sidecar.read_text() == demo.gguf_sha256(MODEL) + "\n"
    await target.rollback(first)  # nothing was there before the first fetch
    assert list(host.parent.iterdir()) == []
