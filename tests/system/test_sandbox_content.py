"""`aios sandbox up` offers demo packages and models; tools act inside it; `down` leaves nothing.

The registry runs in the sandbox (its netns and private mount namespace); this
test process talks to it only through its unix socket, and reads results back
independently with nsenter (dpkg-query, findmnt) and sha256sum.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.client import RegistryClient
from sandbox import demo
from sandbox import lifecycle as sandbox
from tests.system.helpers import run


def aios(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from reconciler.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=180
    )


@pytest.fixture
def box_env(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    base = tmp_path / "sandboxes"
    name = f"c{uuid.uuid4().hex[:8]}"
    env = {**os.environ, sandbox.BASE_ENV: str(base)}
    try:
        yield name, base, env
    finally:
        aios("sandbox", "down", name, env=env)
        subprocess.run(["ip", "netns", "del", f"aios-{name}"], capture_output=True, check=False)


def host_mounts() -> str:
    return Path("/proc/self/mountinfo").read_text()


def running(pid: int) -> bool:
    """Alive and not a zombie (PID 1 here may be slow to reap orphans)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def dpkg_versions(box: sandbox.Sandbox) -> dict[str, str]:
    assert box.pid is not None
    out = run(
        ["nsenter", "-t", str(box.pid), "-m", "dpkg-query", f"--admindir={box.root}/var/lib/dpkg",
         "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n"]
    )  # fmt: skip
    return {f[0]: f[1] for f in (line.split() for line in out.splitlines()) if f[2][1] == "i"}


async def test_sandbox_offers_packages_and_models(
    box_env: tuple[str, Path, dict[str, str]],
) -> None:
    name, base, env = box_env
    up = aios("sandbox", "up", name, env=env)
    assert up.returncode == 0, up.stderr
    box = sandbox.read(name, base)
    assert box.pid is not None
    server_pid = int((box.dir / "fileserver.pid").read_text())
    model = "demo-tiny"
    model_path = f"/var/lib/aios/models/{model}.gguf"
    async with RegistryClient(box.address) as client:
        state = await client.call("pkg.state", {"names": ["aios-demo-agent"]}, reason="test")
        assert state.output["available"] == {"aios-demo-agent": ["1.0-1", "0.9-1"]}
        ensure = await client.call(
            "pkg.ensure",
            {
                "install": [{"name": "aios-demo-agent", "version": "0.9-1"}],
                "hold": ["aios-demo-agent"],
            },
            reason="test",
        )
        assert {p["name"] for p in ensure.output["installed"]} == {
            "aios-demo-agent", "aios-demo-tools", "aios-demo-base",
        }  # fmt: skip
        assert dpkg_versions(box)["aios-demo-agent"] == "0.9-1"
        fetched = await client.call(
            "model.fetch",
            {
                "url": f"{demo.MODEL_BASE_URL}/{model}.gguf",
                "sha256": demo.gguf_sha256(model),
                "path": model_path,
            },
            reason="test",
        )
        assert fetched.output["downloaded"] and fetched.output["size"] == 1 << 20
        await client.call(
            "storage.mkfs",
            {
                "target": "/images/data.img",
                "image": {"size": "32M"},
                "type": "ext4",
                "label": "data",
            },
            reason="test",
        )
        await client.call(
            "storage.mount",
            {
                "target": "/srv/data",
                "source": "LABEL=data",
                "type": "ext4",
                "probe": ["/images/data.img"],
            },
            reason="test",
        )
        await client.rollback(ensure.execution_id, reason="test")
    assert "aios-demo-agent" not in dpkg_versions(box)
    assert run(["sha256sum", str(box.root / model_path.lstrip("/"))]).split()[
        0
    ] == demo.gguf_sha256(model)
    inside = json.loads(
        run(
            [
                "nsenter",
                "-t",
                str(box.pid),
                "-m",
                "findmnt",
                "-J",
                "--mountpoint",
                f"{box.root}/srv/data",
            ]
        )
    )
    assert inside["filesystems"][0]["fstype"] == "ext4"
    assert str(box.root) not in host_mounts()  # never in the host's mount namespace

    down = aios("sandbox", "down", name, env=env)
    assert down.returncode == 0, down.stderr
    assert not box.dir.exists()
    assert f"aios-{name}" not in run(["ip", "netns", "list"])
    assert not running(server_pid)
    assert str(box.dir) not in run(["losetup", "-a"])
