"""plan, diff and apply refuse a bad spec file with its file:line:col, exit 1, no traceback.

The spec set is loaded before any registry is contacted, so these run with an
unreachable registry address: a bad file must stop the command before that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BAD = """\
apiVersion: aios.dev/v1
kind: Models
metadata:
  name: m
spec:
  models:
    - name: x
      source: http://127.0.0.1:1/x.gguf
      sha256: 1111111111111111111111111111111111111111111111111111111111111111
"""


@pytest.mark.parametrize("command", [["plan"], ["diff"], ["apply", "--yes"]])
def test_a_spec_error_is_reported_not_an_internal_error(
    command: list[str], tmp_path: Path
) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text(BAD)
    env = {**os.environ, "AIOS_WARM": "0", "AIOS_TOOLS_ADDR": "unix:///nonexistent/tools.sock"}
    argv = [sys.executable, "-m", "reconciler.cli.main", *command, "-f", str(spec)]
    out = subprocess.run(
        [*argv, "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 1, out.stderr
    assert f"{spec}:9:15: Models/m: spec.models[0].sha256: expected a string" in out.stderr
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())
