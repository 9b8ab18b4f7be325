"""Attack corpus: a caller that goes away must stop the work (`serve-` cancel cases, warm kill -9).

Registry side: a client that cancels, hits its deadline, closes its channel
or is killed -9 during a slow Execute stops a tool that can stop safely — a
reversible built-in (its process group dies, grandchildren included, and its
before-image is restored) or a built-in read — and the audit row says so
(`caller gone: cancelled; ...`); a non-reversible write and a plugin run to
their end, audited as `caller gone: finished (...)`. The slow tools are test
doubles added to a real registry's tool table; their commands run through
the registry's own process runner.

Warm side: kill -9 of the `aios` launcher whose command a warm helper's child
runs must end that command as it would a cold one: for `aios registry serve`
(the child's process group dies), and for `aios apply` whose step is a slow
model.fetch against a registry in a throwaway network and mount namespace
(the child is gone within seconds, the state dir's writer lock is free, the
download stops, the registry audits the fetch as cancelled and keeps
serving). Nothing outside the scratch root changes (sentinel host dir).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import grpc
import pytest
from registry_support import running_registry, write_plugin

from contract._gen import tools_pb2, tools_pb2_grpc
from contract.tooldef import JSON, ToolSpec
from reconciler.cli.launch import signature
from registry.core.process import group_alive
from registry.core.tool import Tool, ToolContext
from registry.server import audit
from registry.server.grpc import RegistryServer
from registry.server.profiles import Entry

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")
REPO = Path(__file__).resolve().parents[2]
AIOS = [sys.executable, "-c", "from reconciler.cli.launch import main; main()"]
GONE_WITHIN_S = 5.0


def _snapshot(top: Path) -> dict[str, tuple[int, bytes]]:
    found = {".": (top.lstat().st_mode, b"")}
    for path in sorted(top.rglob("*")):
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        found[str(path.relative_to(top))] = (path.lstat().st_mode, data)
    return found


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Path]:
    """Stand-in host files next to the scratch root; asserted unchanged afterwards."""
    top = tmp_path / "host"
    (top / "var/lib/aios/models").mkdir(parents=True)
    (top / "etc").mkdir()
    (top / "etc/hostname").write_text("host\n")
    before = _snapshot(top)
    yield top
    assert _snapshot(top) == before, "something outside the scratch root changed"


def wait_until(predicate: Any, limit_s: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > limit_s:
            pytest.fail(f"{what} did not happen within {limit_s} s")
        time.sleep(0.05)
    return time.monotonic() - start


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# -- registry side: slow tools added to a real registry --------------------------------


def _spec(name: str, *, reversible: bool, caps: tuple[str, ...]) -> ToolSpec:
    return ToolSpec(
        name=name,
        description="test: a slow command",
        input_schema={"type": "object"},
        output_schema={},
        risk="low",
        idempotent=False,
        reversible=reversible,
        timeout_ms=120_000,
        capabilities=caps,
    )


class Slow(Tool):
    """Changes /changed under the root, then runs a slow command group (leader + grandchild).

    `args["seconds"]` bounds the command; pids go to `args["pids"]`.
    """

    spec: ClassVar[ToolSpec] = _spec("slow.reversible", reversible=True, caps=("fs_write",))
    changes = True

    async def snapshot(self, ctx: ToolContext, args: JSON) -> JSON:
        return {"had": (ctx.root / "changed").exists()}

    async def restore(self, ctx: ToolContext, snapshot: JSON) -> None:
        if (ctx.root / "slow-restore").exists():  # a Rollback that takes a while
            await ctx.runner.run(["sleep", "1.5"])
        if not snapshot["had"]:
            (ctx.root / "changed").unlink(missing_ok=True)
        (ctx.root / "restored").write_text("yes")

    def touches(self, args: JSON) -> tuple[str, ...]:
        return ("file:/changed",)

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        if self.changes:
            (ctx.root / "changed").write_text("half done")
        pids, seconds = args["pids"], int(args["seconds"])
        script = f"echo $$ > {pids}/leader; sleep {seconds} & echo $! > {pids}/child; wait"
        await ctx.runner.run(["sh", "-c", script])
        (ctx.root / "finished").write_text("yes")
        return {}


class SlowWrite(Slow):
    spec = _spec("slow.write", reversible=False, caps=("fs_write",))


class SlowRead(Slow):
    spec = _spec("slow.read", reversible=False, caps=("fs_read",))
    changes = False


def _add(server: RegistryServer, cls: type[Slow], writes: bool) -> None:
    entry = Entry(
        spec=cls.spec,
        enforced=cls.spec.capabilities,
        handler=cls,
        builtin=True,
        writes=writes,
        namespace="slow",
    )
    server.pipeline.toolset._builtins[cls.spec.name] = entry
    server.pipeline.toolset._entries[cls.spec.name] = entry


PLUGIN = """
import json, subprocess, sys
args = json.load(sys.stdin)
pids = args["pids"]
subprocess.run(["sh", "-c", f"echo $$ > {pids}/leader; sleep {args['seconds']} & "
                f"echo $! > {pids}/child; wait"], check=True)
open(args["done"], "w").write("yes")
print(json.dumps({"ok": True}))
"""


@contextlib.asynccontextmanager
async def slow_registry(tmp: Path) -> AsyncIterator[tuple[RegistryServer, str]]:
    write_plugin(tmp / "plugins", "slow", PLUGIN, timeout_ms=120_000)
    async with running_registry(tmp) as (server, address):
        _add(server, Slow, True)
        _add(server, SlowWrite, True)
        _add(server, SlowRead, False)
        yield server, address


KILLED_CLIENT = """
import sys, grpc
from contract._gen import tools_pb2, tools_pb2_grpc
channel = grpc.insecure_channel(sys.argv[1])
stub = tools_pb2_grpc.ToolRegistryStub(channel)
stub.Execute(tools_pb2.ExecuteRequest(tool_name=sys.argv[2], agent_id="aios-reconciler",
                                      input_json=sys.argv[3].encode()), timeout=600)
"""


async def _execute_and_go_away(address: str, tool: str, args: JSON, how: str, pids: Path) -> None:
    """Start `tool`, wait until its command runs, then leave the way `how` says."""
    leader = pids / "leader"
    payload = json.dumps(args)
    if how == "client-killed":
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", KILLED_CLIENT, address, tool, payload, cwd=REPO
        )
        try:
            await asyncio.to_thread(wait_until, leader.exists, 30, "the tool's command")
            await asyncio.sleep(0.2)
        finally:
            client.kill()
            await client.wait()
        return
    channel = grpc.aio.insecure_channel(address)
    stub = tools_pb2_grpc.ToolRegistryStub(channel)
    request = tools_pb2.ExecuteRequest(
        tool_name=tool, agent_id="aios-reconciler", input_json=payload.encode()
    )
    try:
        if how == "deadline":
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Execute(request, timeout=1.5)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert leader.exists()
            return
        call = stub.Execute(request)
        await asyncio.to_thread(wait_until, leader.exists, 30, "the tool's command")
        await asyncio.sleep(0.2)
        if how == "cancel":
            call.cancel()
    finally:
        await channel.close()  # how == "disconnect": the channel goes away mid-call


def _audit_row(state: Path, tool: str) -> dict[str, Any] | None:
    found = [r for r in audit.rows(state) if r["tool"] == tool]
    return found[-1] if found else None


HOWS = ["cancel", "disconnect", "deadline", "client-killed"]


@pytest.mark.parametrize("how", HOWS)
async def test_serve_cancel_stops_a_reversible_tool_and_restores(
    how: str, tmp_path: Path, host: Path
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    async with slow_registry(tmp_path) as (_server, address):
        await _execute_and_go_away(
            address, "slow.reversible", {"pids": str(pids), "seconds": 60}, how, pids
        )
        leader = int((pids / "leader").read_text())
        child = int((pids / "child").read_text())
        await asyncio.to_thread(
            wait_until,
            lambda: not group_alive(leader),
            GONE_WITHIN_S,
            "the tool's process group dying",
        )
        assert not alive(child), "the tool's grandchild outlived the cancellation"
        state = tmp_path / "state"
        await asyncio.to_thread(
            wait_until, lambda: _audit_row(state, "slow.reversible"), GONE_WITHIN_S, "the audit row"
        )
    row = _audit_row(state, "slow.reversible")
    assert row is not None and row["success"] == 0
    assert row["outcome"] == "caller gone: cancelled; restored"
    root = tmp_path / "root"
    assert not (root / "changed").exists() and (root / "restored").read_text() == "yes"
    assert not (root / "finished").exists()
    assert audit.verify(state).ok


@pytest.mark.parametrize("how", ["cancel", "client-killed"])
async def test_serve_cancel_stops_a_read(how: str, tmp_path: Path, host: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    async with slow_registry(tmp_path) as (_server, address):
        await _execute_and_go_away(
            address, "slow.read", {"pids": str(pids), "seconds": 60}, how, pids
        )
        leader = int((pids / "leader").read_text())
        await asyncio.to_thread(
            wait_until,
            lambda: not group_alive(leader),
            GONE_WITHIN_S,
            "the read's process group dying",
        )
        assert not alive(int((pids / "child").read_text()))
        state = tmp_path / "state"
        await asyncio.to_thread(
            wait_until, lambda: _audit_row(state, "slow.read"), GONE_WITHIN_S, "the audit row"
        )
    row = _audit_row(state, "slow.read")
    assert row is not None and row["success"] == 0
    assert row["outcome"] == "caller gone: cancelled; nothing to restore (read-only)"
    assert not (tmp_path / "root/finished").exists()


@pytest.mark.parametrize(
    ("tool", "outcome"),
    [
        ("slow.write", "caller gone: finished (a write that cannot stop safely)"),
        (
            "plugin.slow",
            "caller gone: finished (a plugin or external handler that cannot stop safely)",
        ),
    ],
)
async def test_serve_cancel_lets_a_tool_that_cannot_stop_finish(
    tool: str, outcome: str, tmp_path: Path, host: Path
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    done = tmp_path / "root/finished"
    args = {"pids": str(pids), "seconds": 2, "done": str(done)}
    async with slow_registry(tmp_path) as (_server, address):
        await _execute_and_go_away(address, tool, args, "cancel", pids)
        leader = int((pids / "leader").read_text())
        assert alive(leader), "a tool that cannot stop safely was stopped"
        state = tmp_path / "state"
        await asyncio.to_thread(
            wait_until, lambda: _audit_row(state, tool), 30, "the tool finishing"
        )
    row = _audit_row(state, tool)
    assert row is not None and row["success"] == 1 and row["outcome"] == outcome
    assert done.read_text() == "yes"
    assert audit.verify(state).ok


async def test_serve_rollback_runs_to_its_end_when_its_caller_goes(
    tmp_path: Path, host: Path
) -> None:
    """A restore half done is worse than either end: a cancelled Rollback finishes."""
    pids = tmp_path / "pids"
    pids.mkdir()
    root, state = tmp_path / "root", tmp_path / "state"
    async with slow_registry(tmp_path) as (_server, address):
        async with grpc.aio.insecure_channel(address) as channel:
            stub = tools_pb2_grpc.ToolRegistryStub(channel)
            args = json.dumps({"pids": str(pids), "seconds": 0}).encode()
            done = await stub.Execute(
                tools_pb2.ExecuteRequest(
                    tool_name="slow.reversible", agent_id="aios-reconciler", input_json=args
                )
            )
            assert done.success and (root / "changed").exists(), done.error
            (root / "slow-restore").write_text("")
            call = stub.Rollback(tools_pb2.RollbackRequest(execution_id=done.execution_id))
            await asyncio.sleep(0.5)
            call.cancel()
        await asyncio.to_thread(
            wait_until, lambda: _audit_row(state, "rollback"), 10, "the rollback finishing"
        )
    row = _audit_row(state, "rollback")
    assert row is not None and row["success"] == 1
    assert not (root / "changed").exists() and (root / "restored").read_text() == "yes"


async def test_serve_stops_safely_only_what_can_stop(tmp_path: Path) -> None:
    """The rule itself, on both profiles: aiOS's one-shot file backup is no before-image."""
    async with running_registry(tmp_path / "full") as (server, _):
        pipeline = server.pipeline
        verdicts = {
            name: pipeline.stops_safely(e)
            for name, e in ((e.spec.name, e) for e in pipeline.toolset.list())
        }
    assert verdicts["model.fetch"] and verdicts["pkg.ensure"] and verdicts["net.apply"]
    assert verdicts["net.state"] and verdicts["net.http_get"] and verdicts["fs.read"]
    assert not verdicts["fs.delete"] and not verdicts["pkg.update"]  # writes, no before-image
    async with running_registry(tmp_path / "aios", profile="aios") as (server, _):
        pipeline = server.pipeline
        writes = [e for e in pipeline.toolset.list() if e.writes and e.handler is not None]
        assert writes and not any(pipeline.stops_safely(e) for e in writes)


# -- warm side: kill -9 of the launcher --------------------------------------------------


@pytest.fixture
def warm(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A warm helper on a private socket; its environment for launchers. Killed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="aios-warm-"))
    directory.chmod(0o700)
    sock = directory / "cli.sock"
    env = {
        **os.environ,
        "AIOS_WARM": "1",
        "AIOS_WARM_SOCKET": str(sock),
        "AIOS_WARM_DEBUG": "1",
        "NO_COLOR": "1",
    }
    helper = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli.warm", str(sock), signature()],
        env=env,
        cwd="/",
        start_new_session=True,
    )
    try:
        wait_until(sock.exists, 30, "the warm helper listening")
        yield env
    finally:
        os.killpg(helper.pid, signal.SIGKILL)
        helper.wait()
        for path in directory.iterdir():
            path.unlink()
        directory.rmdir()


def launch(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    """Start `aios ARGS` through the helper; the launcher and the child serving it.

    The launcher is killed when it does not say within 30 s that the helper serves it
    (a cold run would otherwise go on unobserved).
    """
    proc = subprocess.Popen(
        [*AIOS, *args],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], 30)
    line = proc.stderr.readline() if ready else ""
    if "served by the warm helper (child " not in line:
        proc.kill()
        _, rest = proc.communicate()
        pytest.fail(f"the launcher was not served warm: {line}{rest}")
    return proc, int(line.rsplit("child ", 1)[1].rstrip(")\n"))


@pytest.mark.timeout(120)
def test_warm_kill9_of_the_launcher_kills_the_childs_group(
    warm: dict[str, str], tmp_path: Path, host: Path
) -> None:
    short = Path(tempfile.mkdtemp(prefix="aios-k9-"))
    sock = short / "registry.sock"
    serve = ["registry", "serve", "--listen", f"unix://{sock}"]
    dirs = ["--state-dir", str(tmp_path / "state"), "--root", str(tmp_path / "root")]
    launcher, child = launch([*serve, *dirs], warm)
    try:
        wait_until(sock.exists, 30, "the registry the child runs listening")
        assert os.getpgid(child) == child, "the child leads no process group of its own"
        launcher.kill()
        launcher.wait()
        took = wait_until(lambda: not alive(child), GONE_WITHIN_S, "the child dying")
        assert not group_alive(child), f"the child's group outlived the launcher ({took:.1f} s)"
    finally:
        stop(launcher, child)
        for path in short.iterdir():
            path.unlink()
        short.rmdir()


def stop(launcher: subprocess.Popen[str], child: int) -> None:
    """Whatever a failed test left running: the launcher and the helper's child."""
    if launcher.poll() is None:
        launcher.kill()
        launcher.wait()
    if launcher.stderr is not None:
        launcher.stderr.close()
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError):
            kill(child, signal.SIGKILL)


def test_warm_normal_exit_still_reports_its_status(warm: dict[str, str]) -> None:
    """The watcher must not mistake a finished command for a hang-up."""
    result = subprocess.run(
        [*AIOS, "validate", "-f", "examples/quickstart"],
        env=warm,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "served by the warm helper" in result.stderr and result.returncode == 0, result.stderr
    bad = subprocess.run(
        [*AIOS, "nosuchcommand"],
        env=warm,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "served by the warm helper" in bad.stderr and bad.returncode == 2


TRICKLE = r"""
import http.server, struct, sys, time
port, log = int(sys.argv[1]), sys.argv[2]
def note(text):
    with open(log, "a") as f:
        f.write(text + "\n")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        note("start")
        self.send_response(200)
        self.send_header("Content-Length", str(64 << 20))
        self.end_headers()
        sent = 0
        try:
            self.wfile.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
            while True:
                self.wfile.write(b"\0" * 4096)
                self.wfile.flush()
                sent += 4096
                time.sleep(0.05)
        except OSError:
            note(f"closed {sent}")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


@pytest.fixture
def slow_target(tmp_path: Path) -> Iterator[dict[str, Path | str]]:
    """A registry and a trickling model server in a throwaway netns + private mount ns."""
    netns = f"aiosk9-{uuid.uuid4().hex[:8]}"
    short = Path(tempfile.mkdtemp(prefix="aios-k9-"))
    root, rstate = tmp_path / "root", tmp_path / "registry"
    (root / "var/lib/aios/models").mkdir(parents=True)
    trickle_log = tmp_path / "trickle.log"
    procs: list[subprocess.Popen[bytes]] = []
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        env = {**os.environ, "AIOS_WARM": "0"}
        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    netns,
                    sys.executable,
                    "-c",
                    TRICKLE,
                    "18099",
                    str(trickle_log),
                ],
                start_new_session=True,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    netns,
                    "unshare",
                    "-m",
                    "--propagation",
                    "private",
                    sys.executable,
                    "-c",
                    "from reconciler.cli.main import main; main()",
                    "registry",
                    "serve",
                    "--listen",
                    f"unix://{short}/registry.sock",
                    "--root",
                    str(root),
                    "--state-dir",
                    str(rstate),
                ],
                env=env,
                cwd=REPO,
                start_new_session=True,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_until((short / "registry.sock").exists, 30, "the registry listening")
        yield {
            "socket": short / "registry.sock",
            "root": root,
            "registry": rstate,
            "trickle": trickle_log,
            "netns": netns,
            "pid": str(procs[1].pid),
        }
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
        for path in short.iterdir():
            path.unlink()
        short.rmdir()


SPEC = """\
apiVersion: aios.dev/v1
kind: Models
metadata: {name: slow}
spec:
  models:
    - name: slow-model
      source: http://127.0.0.1:18099/slow.gguf
      sha256: "%s"
"""


def lock_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


@ROOT_ONLY
@pytest.mark.timeout(180)
def test_warm_kill9_of_apply_stops_the_slow_step(
    warm: dict[str, str], slow_target: dict[str, Any], tmp_path: Path, host: Path
) -> None:
    spec = tmp_path / "specs/models.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC % ("ab" * 32))
    engine = tmp_path / "engine"
    target = ["--registry", f"unix://{slow_target['socket']}", "--state-dir", str(engine)]
    launcher, child = launch(["apply", "-f", str(spec), *target, "--yes"], warm)
    registry_state: Path = slow_target["registry"]
    trickle: Path = slow_target["trickle"]
    try:
        wait_until(
            lambda: trickle.exists() and "start" in trickle.read_text(),
            60,
            "the model fetch starting",
        )
        time.sleep(0.3)
        assert not lock_is_free(engine / "writer.lock"), "the apply holds no writer lock"
        launcher.kill()
        launcher.wait()
        wait_until(lambda: not alive(child), GONE_WITHIN_S, "the helper's child dying")
        assert not group_alive(child)
        # The leader shows as a zombie while its other threads still exit and hold the
        # files table; the lock goes with the last of them, a moment later.
        wait_until(
            lambda: lock_is_free(engine / "writer.lock"),
            GONE_WITHIN_S,
            "the writer lock being released after the apply died",
        )
        wait_until(lambda: "closed" in trickle.read_text(), GONE_WITHIN_S, "the download stopping")
        wait_until(
            lambda: _audit_row(registry_state, "model.fetch"),
            GONE_WITHIN_S,
            "the registry auditing the cancelled fetch",
        )
    finally:
        stop(launcher, child)
    row = _audit_row(registry_state, "model.fetch")
    assert row is not None and row["success"] == 0
    assert row["outcome"].startswith("caller gone: cancelled; "), row["outcome"]
    models = slow_target["root"] / "var/lib/aios/models"
    assert list(models.iterdir()) == [], "the fetch left a file behind"
    assert alive(int(slow_target["pid"])), "the registry died with its caller"
    assert audit.verify(registry_state).ok
    time.sleep(0.5)
    assert trickle.read_text().count("start") == 1, "the fetch was started again"
