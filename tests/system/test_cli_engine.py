"""The engine commands end to end in a sandbox: diff, get, history, rollback.

(plan/apply/status/export are exercised by every controller's system tests and
by test_examples.) Generation 1 declares one bridge; generation 2 changes its
MTU and adds a second link; `aios rollback 1` must bring back generation 1's
state as generation 3 — MTU restored, and the link generation 2 created gone —
through plan and verify.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.system.engine_support import Box, box  # noqa: F401

GEN1 = """\
apiVersion: aios.dev/v1
kind: Network
metadata: {name: lan}
spec:
  links:
    - {name: br-t, kind: bridge, mtu: 1500, addresses: [10.77.0.1/24]}
"""
GEN2 = """\
apiVersion: aios.dev/v1
kind: Network
metadata: {name: lan}
spec:
  links:
    - {name: br-t, kind: bridge, mtu: 1400, addresses: [10.77.0.1/24]}
    - {name: ifb-t, kind: ifb}
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def link(b: Box, name: str) -> dict[str, object] | None:
    out = b.sh("ip", "-j", "link", "show", "dev", name, check=False)
    data = json.loads(out) if out.strip() else []
    return data[0] if data else None


def test_diff_get_history_and_rollback(box: Box, tmp_path: Path) -> None:  # noqa: F811
    sb = ("--sandbox", box.name)
    gen1 = write(tmp_path / "gen1.yaml", GEN1)
    gen2 = write(tmp_path / "gen2.yaml", GEN2)

    diff = box.aios("diff", "-f", str(gen1), *sb)
    assert diff.returncode == 2 and "+ link:br-t" in diff.stdout, diff.stdout + diff.stderr
    box.aios("apply", "-f", str(gen1), *sb, "--yes", check=True)
    assert box.aios("diff", "-f", str(gen1), *sb).returncode == 0

    got = box.aios("get", "Network", "lan", *sb, "-o", "json", check=True)
    assert "br-t" in got.stdout and "10.77.0.1/24" in got.stdout

    box.aios("apply", "-f", str(gen2), *sb, "--yes", check=True)
    assert link(box, "br-t")["mtu"] == 1400 and link(box, "ifb-t") is not None  # type: ignore[index]

    history = box.aios("history", *sb, check=True).stdout.splitlines()
    assert [line.split()[0] for line in history] == ["1", "2"], history

    back = box.aios("rollback", "1", *sb, "--yes")
    assert back.returncode == 0, back.stdout + back.stderr
    assert link(box, "br-t")["mtu"] == 1500, "rollback did not restore the MTU"  # type: ignore[index]
    assert link(box, "ifb-t") is None, "rollback kept a link only generation 2 declared"
    history = box.aios("history", *sb, check=True).stdout.splitlines()
    assert [line.split()[0] for line in history] == ["1", "2", "3"]
    assert box.aios("plan", "-f", str(gen1), *sb).returncode == 0

    missing = box.aios("rollback", "9", *sb, "--yes")
    assert missing.returncode == 1 and "no generation 9" in missing.stderr
