"""`aios sandbox up|list|down` for real: calls through the sandbox's socket from
this (another) process change only the sandbox, `down` leaves nothing: no
netns, no directory, no process, no loop device; and `up` of a stale sandbox
(its registry killed -9) restarts it and keeps its root, state and netns."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from registry_support import write_plugin

from contract._gen import tools_pb2, tools_pb2_grpc
from reconciler.client import RegistryClient
from reconciler.sdk.errors import ToolFailed
from registry.server import audit
from sandbox import lifecycle as sandbox
from tests.system.helpers import run

MKLINK = """
import json, subprocess, sys
args = json.load(sys.stdin)
proc = subprocess.run(["/usr/sbin/ip", "link", "add", args["name"], "type", "bridge"],
                      capture_output=True, text=True)
print(json.dumps({"rc": proc.returncode, "err": proc.stderr.strip()}))
sys.exit(proc.returncode)
"""


def aios(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from reconciler.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def box_env(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    base = tmp_path / "sandboxes"
    name = f"t{uuid.uuid4().hex[:8]}"
    env = {**os.environ, sandbox.BASE_ENV: str(base)}
    try:
        yield name, base, env
    finally:
        aios("sandbox", "down", name, env=env)
        subprocess.run(["ip", "netns", "del", f"aios-{name}"], capture_output=True, check=False)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_sandbox_up_call_down(box_env: tuple[str, Path, dict[str, str]]) -> None:
    name, base, env = box_env
    up = aios("sandbox", "up", name, env=env)
    assert up.returncode == 0, up.stderr
    assert f"sandbox {name} started" in up.stdout
    again = aios("sandbox", "up", name, env=env)
    assert again.returncode == 0 and "already running" in again.stdout
    box = sandbox.read(name, base)
    assert sandbox.load("nosuch", base) is None
    assert box.pid is not None and box.running() and alive(box.pid)
    assert f"{name} " in aios("sandbox", "list", env=env).stdout
    assert box.socket.stat().st_mode & 0o777 == 0o600

    ns = ["nsenter", "-t", str(box.pid), "-n", "-m", "--"]
    write_plugin(box.registry_state / "plugins", "mklink", MKLINK, timeout_ms=10000)
    async with RegistryClient(box.address) as client:
        assert await client.health()
        wrote = await client.call("fs.write", {"path": "/etc/hello", "content": "hi"}, reason="t")
        assert wrote.output == {"bytes_written": 2}
        try:  # the net tools' own handler, once its before-image exists
            await client.call("net.link_add", {"name": "brnet0", "kind": "bridge"}, reason="t")
            via_net_tool = True
        except ToolFailed:
            via_net_tool = False
        async with grpc.aio.insecure_channel(box.address) as channel:
            reply = await tools_pb2_grpc.ToolRegistryStub(channel).Register(
                tools_pb2.RegisterToolRequest(tool=tools_pb2.ToolDefinition(name="plugin.mklink"))
            )
            assert reply.accepted, reply.error
        made = await client.call("plugin.mklink", {"name": "brplug0"}, reason="t")
        assert made.output == {"rc": 0, "err": ""}

    assert (box.root / "etc/hello").read_text() == "hi"
    links = {link["ifname"] for link in json.loads(run([*ns, "ip", "-j", "link", "show"]))}
    assert "brplug0" in links and ("brnet0" in links) == via_net_tool
    host_links = {link["ifname"] for link in json.loads(run(["ip", "-j", "link", "show"]))}
    assert not {"brplug0", "brnet0"} & host_links
    # a mount in the sandbox's private mount namespace never reaches the host
    (box.root / "mnt/scratch").mkdir(parents=True)
    run([*ns, "mount", "-t", "tmpfs", "sbxtmp", str(box.root / "mnt/scratch")])
    assert str(box.root / "mnt/scratch") in run([*ns, "cat", "/proc/self/mountinfo"])
    assert sandbox.mounts_under(box.dir) == []
    # a loop device backed by a file under the sandbox: down detaches it
    image = box.root / "disk.img"
    image.write_bytes(b"\0" * (1 << 20))
    loop = run(["losetup", "-f", "--show", str(image)]).strip()

    down = aios("sandbox", "down", name, env=env)
    assert down.returncode == 0, down.stderr
    assert f"detached {loop}" in down.stdout
    assert not alive(box.pid)
    assert f"aios-{name}" not in run(["ip", "netns", "list"])
    assert not box.dir.exists()
    assert str(box.dir) not in run(["losetup", "-a"])
    assert "nothing to do" in aios("sandbox", "down", name, env=env).stdout


def test_sandbox_names_are_checked(tmp_path: Path) -> None:
    env = {**os.environ, sandbox.BASE_ENV: str(tmp_path)}
    bad = aios("sandbox", "up", "Not_A-Label", env=env)
    assert bad.returncode == 1 and "invalid sandbox name" in bad.stderr
    with pytest.raises(sandbox.SandboxError):
        sandbox.layout("x" * 21)


async def test_sandbox_up_restarts_a_stale_sandbox_and_keeps_everything(
    box_env: tuple[str, Path, dict[str, str]],
) -> None:
    """Its registry killed -9, `up` restarts it over the same root, state and netns."""
    name, base, env = box_env
    assert aios("sandbox", "up", name, env=env).returncode == 0
    box = sandbox.read(name, base)
    async with RegistryClient(box.address) as client:
        await client.call("fs.write", {"path": "/srv/keep.txt", "content": "kept"}, reason="t")
    (box.state / "record.json").write_text('{"generation": 7}')
    run(["ip", "-n", box.netns, "link", "add", "keep0", "type", "bridge"])
    rows_before = audit.rows(box.registry_state)
    key = (box.registry_state / "audit.key").read_bytes()
    assert box.pid is not None
    os.kill(box.pid, signal.SIGKILL)
    for _ in range(100):
        if not alive(box.pid):
            break
        await asyncio.sleep(0.05)
    assert not box.running()
    assert "stale" in aios("sandbox", "list", env=env).stdout

    again = aios("sandbox", "up", name, env=env)
    assert again.returncode == 0, again.stderr
    assert f"sandbox {name} restarted (state kept)" in again.stdout
    box2 = sandbox.read(name, base)
    assert box2.pid != box.pid and box2.running() and box2.created == box.created
    assert (box2.root / "srv/keep.txt").read_text() == "kept"
    assert (box2.state / "record.json").read_text() == '{"generation": 7}'
    assert (box2.registry_state / "audit.key").read_bytes() == key
    assert audit.rows(box2.registry_state) == rows_before
    assert audit.verify(box2.registry_state).ok
    links = {link["ifname"] for link in json.loads(run(["ip", "-n", box.netns, "-j", "link"]))}
    assert "keep0" in links
    async with RegistryClient(box2.address) as client:
        assert await client.health()
        read = await client.call("fs.read", {"path": "/srv/keep.txt"}, reason="t")
        assert read.output["content"] == "kept"
    assert "already running" in aios("sandbox", "up", name, env=env).stdout
