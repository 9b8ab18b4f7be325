"""`aios daemon` stopped and killed: SIGTERM mid-apply, kill -9 at random moments, imports.

Each test has a sandbox of its own. SIGTERM while a batch of several calls runs
must finish the call in flight, journal the rest as skipped and exit within
5 s. Ten kill -9 trials at random moments of an apply: the restarted daemon
shows the interrupted run, converges, and the journal and history only ever
grow (rows seen before are still there, unchanged). An idle daemon has not
imported the LLM stack.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.system.daemon_support import DaemonProc, eventually, firewall, nft_rules
from tests.system.engine_support import REPO, Box, box

__all__ = ["box"]


def storage(names: list[str]) -> str:
    mounts = "\n".join(
        f"""    - target: /srv/{n}
      source: tmpfs
      type: tmpfs
      options: [size=4M]
      persist: false"""
        for n in names
    )
    return f"""apiVersion: aios.dev/v1
kind: Storage
metadata:
  name: many
spec:
  mounts:
{mounts}
"""


def _rows(box: Box, query: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(box.record.state_dir / "reconciler.db", timeout=10)
    try:
        return list(db.execute(query).fetchall())
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        db.close()


def _journal_consistent(box: Box) -> list[tuple[Any, ...]]:
    """Every call of every run: started, then done/failed once; or skipped; or cut off
    (only in a run that never finished: the kill)."""
    rows = _rows(box, "select id, run, domain, call, state from journal order by id")
    unfinished = {r for (r,) in _rows(box, "select run from runs where outcome = 'running'")}
    calls: dict[tuple[str, str, int], list[str]] = {}
    for _, run, domain, call, state in rows:
        calls.setdefault((run, domain, call), []).append(state)
    for (run, domain, call), states in calls.items():
        if states == ["skipped"] or states in (["started", "done"], ["started", "failed"]):
            continue
        assert states == ["started"] and run in unfinished, (
            run, domain, call, states,
            _rows(box, f"select * from runs where run = '{run}'"),
            _rows(box, f"select * from journal where run = '{run}'"),
        )  # fmt: skip
    return rows


def test_sigterm_mid_apply_finishes_the_step_in_flight_and_exits_within_5_s(
    box: Box, tmp_path: Path
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    names = [f"t{i}" for i in range(8)]
    (specs / "many.yaml").write_text(storage(names))
    daemon = DaemonProc(box, [specs], tmp_path / "daemon.log").start(wait=False)
    try:
        eventually(
            lambda: _rows(box, "select 1 from journal where state = 'started'"),
            timeout=60, interval=0.005, what="the first call started",
        )  # fmt: skip
        took = daemon.terminate()
    finally:
        daemon.kill()
    assert took < 5, f"exit took {took:.1f} s"
    rows = _journal_consistent(box)
    states = [r[4] for r in rows]
    assert states.count("started") == states.count("done") + states.count("failed")
    assert "skipped" in states, f"SIGTERM did not stop the batch: {states}"
    status = json.loads(box.aios("status", "-o", "json", "--sandbox", box.name).stdout)
    ready = [c for r in status["resources"] for c in r["conditions"] if c["type"] == "Ready"]
    assert any("interrupted" in str(c.get("message")) for c in ready), status
    # restarted, it finishes the job
    again = DaemonProc(box, [specs], tmp_path / "daemon2.log").start()
    try:
        mounted = box.sh("findmnt", "-rn", "-o", "TARGET")
        assert all(f"{box.root}/srv/{n}" in mounted.split() for n in names), mounted
    finally:
        again.terminate()


def test_ten_kill_9_trials_each_converge_with_history_kept(box: Box, tmp_path: Path) -> None:
    rng = random.Random(20261204)
    specs = tmp_path / "specs"
    specs.mkdir()
    seen_journal: list[tuple[Any, ...]] = []
    seen_generations: list[tuple[Any, ...]] = []
    for trial in range(10):
        rules = [f"tcp dport {8000 + trial * 10 + j} accept" for j in range(3)]
        (specs / "fw.yaml").write_text(firewall("crash", "crash", rules))
        mounts = [f"k{trial}", f"k{trial}b"]
        (specs / "many.yaml").write_text(storage(mounts))
        log = tmp_path / f"trial{trial}.log"
        first = DaemonProc(box, [specs], log).start(wait=False)
        time.sleep(rng.uniform(0.3, 2.5))  # start-up, load, observe, plan or execute
        first.kill()
        second = DaemonProc(box, [specs], log).start()
        try:
            eventually(lambda rules=rules: nft_rules(box, "crash") == rules, what=f"trial {trial}")
            listed = box.sh("findmnt", "-rn", "-o", "TARGET").split()
            for name in mounts:
                eventually(
                    lambda name=name: (
                        f"{box.root}/srv/{name}" in box.sh("findmnt", "-rn", "-o", "TARGET").split()
                    ),
                    what=f"trial {trial}: mount {name}; had {listed}",
                )
        finally:
            second.terminate()
        journal = _journal_consistent(box)
        generations = _rows(box, "select generation, digest from generations order by generation")
        assert journal[: len(seen_journal)] == seen_journal, "journal rows were rewritten"
        assert generations[: len(seen_generations)] == seen_generations, "history was rewritten"
        numbers = [g[0] for g in generations]
        assert numbers == sorted(set(numbers)), numbers
        seen_journal, seen_generations = journal, generations
        status = json.loads(box.aios("status", "-o", "json", "--sandbox", box.name).stdout)
        assert all(r["ready"] for r in status["resources"]), status


def test_an_idle_daemon_has_not_imported_the_llm_stack(box: Box, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "fw.yaml").write_text(firewall("idle", "idle", ["tcp dport 22 accept"]))
    dump = tmp_path / "modules.json"
    code = (
        "import atexit, json, sys\n"
        f"out = {str(dump)!r}\n"
        "atexit.register(lambda: open(out, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "from reconciler.cli.main import main\n"
        "sys.argv = ['aios', *sys.argv[1:]]\n"
        "main()\n"
    )
    argv = [sys.executable, "-c", code, "daemon", "--sandbox", box.name, "--specs", str(specs),
            "--poll-interval", "1h"]  # fmt: skip
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=log, env=box.env, cwd=REPO)
    try:
        probe = DaemonProc(box, [specs], tmp_path / "daemon.log")
        probe.proc = proc
        probe.wait_ready()
        assert nft_rules(box, "idle") == ["tcp dport 22 accept"]
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    modules = set(json.loads(dump.read_text()))
    assert "reconciler.daemon.core" in modules and "grpc" in modules  # the dump is real
    for heavy in ("anthropic", "openai", "chromadb", "llama_cpp", "torch"):
        assert not any(m == heavy or m.startswith(heavy + ".") for m in modules), heavy
