"""Status after a killed apply: never Ready until a later reconcile succeeds.

A real sandbox and the real CLI, cold (`python -m reconciler`). Models/assistant
is applied and Ready; then a second model is added whose source is a server in
the sandbox's network namespace that sends a GGUF header and then a kilobyte
every 50 ms of a 1 GiB body, so the `model.fetch` call is still running when
the apply is killed with SIGKILL. While the apply runs, `aios status` shows the
resource Reconciling (ApplyInProgress); after the kill it shows it Interrupted,
with what the journal holds (main kept showing Ready: statuses were written only
at the end). The other resource, which the apply did not touch, stays Ready.
Applying the first spec again (after the server is gone) makes it Ready.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attack.test_saved_plan import running_box
from tests.system.cli_support import statuses
from tests.system.engine_support import REPO, Box

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a sandbox)")

DEMO = """\
apiVersion: aios.dev/v1
kind: Models
metadata: {name: assistant}
spec:
  models:
    - name: demo-tiny
      source: http://127.0.0.1:18080/models/demo-tiny.gguf
      sha256: be03cd4325fa0f0856f3fba9c4fdc9b7528bf7fc2a8ea7473db2ac13f7934443
---
apiVersion: aios.dev/v1
kind: Storage
metadata: {name: idle}
spec:
  directories:
    - {path: /srv/idle, mode: "0750", owner: root}
"""
SLOW_MODEL = """\
    - name: slow-big
      source: http://127.0.0.1:PORT/slow.gguf
      sha256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
"""
SLOW_SERVER = """
import http.server, socketserver, struct, time

class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 30))
        self.end_headers()
        try:
            self.wfile.write(b"GGUF" + struct.pack("<I", 3))
            while True:
                self.wfile.write(b"\\0" * 1024)
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass

    def log_message(self, *args):
        pass

class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

server = Server(("127.0.0.1", 0), Slow)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("status-interrupted")) as made:
        yield made


def write(directory: Path, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "specs.yaml").write_text(text, encoding="utf-8")
    return directory


def started_calls(box: Box, tool: str) -> int:
    db = sqlite3.connect(box.record.state_dir / "reconciler.db")
    try:
        row = db.execute(
            "select count(*) from journal where tool = ? and state = 'started'", [tool]
        ).fetchone()
    finally:
        db.close()
    return int(row[0])


def status_json(box: Box) -> dict[str, dict[str, object]]:
    proc = box.aios("status", "-o", "json", "--sandbox", box.name)
    return {r["resource"]: r for r in json.loads(proc.stdout)["resources"]}


def test_status_after_kill_9_of_a_cold_apply_is_not_ready(box: Box, tmp_path: Path) -> None:
    first = write(tmp_path / "first", DEMO)
    done = box.aios("apply", "-f", str(first), "--yes", "--sandbox", box.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(ready for ready, _, _ in statuses(box).values())
    pid = box.record.pid
    assert pid is not None
    with subprocess.Popen(
        ["nsenter", "-t", str(pid), "-n", "--", sys.executable, "-c", SLOW_SERVER],
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            port = server.stdout.readline().strip()
            assert port.isdigit(), port
            second = write(tmp_path / "second", DEMO.replace("---", SLOW_MODEL.replace(
                "PORT", port) + "---"))  # fmt: skip
            argv = [sys.executable, "-m", "reconciler", "apply", "-f", str(second), "--yes",
                    "--sandbox", box.name]  # fmt: skip
            fetches = started_calls(box, "model.fetch")  # demo-tiny's, done
            with subprocess.Popen(
                argv, cwd=REPO, env=box.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            ) as apply:
                try:
                    deadline = time.monotonic() + 60
                    while started_calls(box, "model.fetch") == fetches:
                        assert apply.poll() is None, apply.communicate()
                        assert time.monotonic() < deadline, "model.fetch never started"
                        time.sleep(0.1)
                    running = status_json(box)["Models/assistant"]
                    assert not running["ready"]
                    reconciling = {c["type"]: c for c in running["conditions"]}["Reconciling"]  # type: ignore[attr-defined]
                    assert reconciling["status"] == "True"
                    assert reconciling["reason"] == "ApplyInProgress", reconciling
                finally:
                    apply.send_signal(signal.SIGKILL)
                    apply.communicate(timeout=30)
            assert apply.returncode == -signal.SIGKILL
            shown = box.aios("status", "--sandbox", box.name)
            assert shown.returncode == 1, shown.stdout + shown.stderr
            line = next(x for x in shown.stdout.splitlines() if x.startswith("Models/assistant"))
            assert " NotReady " in line and "Interrupted: apply run " in line, line
            assert "ended before it finished: 1 call(s) journaled, not finished; 0 done" in line
            assert (
                next(x for x in shown.stdout.splitlines() if x.startswith("Storage/idle")).split()[
                    1
                ]
                == "Ready"
            ), "a resource the apply did not touch stays Ready"
            data = status_json(box)["Models/assistant"]
            assert data["ready"] is False
        finally:
            server.send_signal(signal.SIGKILL)
            server.communicate(timeout=30)
    again = box.aios("apply", "-f", str(first), "--yes", "--sandbox", box.name)
    assert again.returncode == 0, again.stdout + again.stderr
    assert all(ready for ready, _, _ in statuses(box).values()), statuses(box)
