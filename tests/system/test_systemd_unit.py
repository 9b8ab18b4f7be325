"""The systemd unit of `aios daemon` (reconciler.daemon.service) passes `systemd-analyze verify`.

This machine boots no systemd, so the unit is only parsed and checked offline:
Debian's `systemd` package (scripts/install.sh installs it; nothing here starts
it) provides systemd-analyze, which loads the unit file, its dependencies, and
checks every directive and that ExecStart's binary is executable. Its exit
status ignores parse warnings ("Unknown key …, ignoring"), so the tests read its
output: no line about the unit may remain. A control test shows that a broken
unit does produce such lines, so an empty output is not vacuous.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.daemon.service import CAPABILITIES, UNIT_NAME, systemd_unit

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze missing: apt-get install systemd (scripts/install.sh)"
)

# Output that is not about our unit and may appear on some machines: warnings in
# the distribution's own unit files that ours pulls in as dependencies
# (multi-user.target, network-pre.target and what they want), and files under
# /etc that a minimal image lacks. Every filtered line is asserted not to name
# our unit.
NOISE = (
    re.compile(r"^(?:/etc|/lib|/usr/lib|/run)/systemd/\S+:\d+: "),
    re.compile(r"^Failed to (?:open|read|load) [^:]*/etc/[^:]*: No such file or directory$"),
)


def stub(path: Path) -> Path:
    """An executable for ExecStart (verify checks that it exists and is executable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def verify(unit: Path) -> tuple[int, list[str], list[str]]:
    """systemd-analyze verify's exit status, the lines about `unit`, and the noise filtered."""
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "verify", "--recursive-errors=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=unit.parent,
    )
    kept, noise = [], []
    for line in (done.stdout + done.stderr).splitlines():
        if not line.strip():
            continue
        if any(p.search(line) for p in NOISE) and unit.name not in line and unit.stem not in line:
            noise.append(line)
        else:
            kept.append(line)
    for line in noise:  # what is filtered is never about our unit
        assert unit.name not in line and str(unit.parent) not in line, line
    return done.returncode, kept, noise


def write_unit(tmp_path: Path, text: str) -> Path:
    unit = tmp_path / UNIT_NAME
    unit.write_text(text)
    return unit


def test_the_unit_verifies_without_a_warning(tmp_path: Path) -> None:
    exe = stub(tmp_path / "bin" / "aios")
    unit = write_unit(tmp_path, systemd_unit(str(exe)))
    code, lines, _ = verify(unit)
    assert lines == []
    assert code == 0


def test_an_odd_executable_path_is_escaped(tmp_path: Path) -> None:
    exe = stub(tmp_path / "my tools" / "aios %i;x")
    config = tmp_path / 'conf "dir"' / "reconciler.yaml"
    text = systemd_unit(str(exe), str(config))
    code, lines, _ = verify(write_unit(tmp_path, text))
    assert lines == []  # verify found the executable: the quoting unescapes to this path
    assert code == 0
    assert "%%i" in text


def test_a_missing_executable_is_reported(tmp_path: Path) -> None:
    unit = write_unit(tmp_path, systemd_unit(str(tmp_path / "nowhere" / "aios")))
    code, lines, _ = verify(unit)
    assert code != 0
    assert any("is not executable" in line for line in lines), lines


def test_a_broken_unit_is_reported_so_silence_means_something(tmp_path: Path) -> None:
    exe = stub(tmp_path / "bin" / "aios")
    text = systemd_unit(str(exe))
    broken = (
        text.replace("KillMode=mixed", "KillMode=mixd")
        .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
        .replace("@reboot", "@rebot")
    )
    _, lines, _ = verify(write_unit(tmp_path, broken))
    joined = "\n".join(lines)
    assert "kill mode" in joined
    assert "Unknown key 'NoNewPrivilege'" in joined
    assert "@rebot" in joined


def test_the_unit_says_what_the_issue_asks(tmp_path: Path) -> None:
    text = systemd_unit("/usr/local/bin/aios", "/etc/aios/other.yaml")
    directives = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in text.splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert directives["Type"] == "exec"
    assert directives["ExecStart"] == "/usr/local/bin/aios daemon"
    assert directives["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert directives["Restart"] == "on-failure"
    assert directives["KillSignal"] == "SIGTERM"
    assert directives["TimeoutStopSec"] == "10"
    assert directives["RuntimeDirectory"] == "aios"
    assert directives["RuntimeDirectoryPreserve"] == "yes"  # /run/aios is shared
    assert directives["StateDirectory"] == "aios/reconciler"
    assert '"AIOS_CONFIG=/etc/aios/other.yaml"' in text
    assert directives["NoNewPrivileges"] == "yes"
    caps = set(directives["CapabilityBoundingSet"].split())
    assert caps == {name for name, _ in CAPABILITIES}
    assert {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_CHOWN"} <= caps
    assert not caps & {"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_TIME", "CAP_SYS_PTRACE"}
    # Nothing that gives the service a mount namespace (mounts must reach the host),
    # nor a ProtectSystem= (it installs packages); the no-sd_notify rule.
    for absent in (
        "ProtectSystem",
        "PrivateTmp",
        "ProtectHome",
        "ReadWritePaths",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "PrivateDevices",
        "ProtectClock",
        "RestrictSUIDSGID",
        "NotifyAccess",
    ):
        assert absent not in directives, absent


@pytest.mark.parametrize("bad", ["aios", "bin/aios", "/usr/bin/ai\nos", "/usr/bin/ai\0os"])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        systemd_unit(bad)
    with pytest.raises(ValueError):
        systemd_unit("/usr/bin/aios", bad)


@pytest.mark.parametrize("bad", ["/opt/$HOME/aios", "/opt/a'b/aios", '/opt/a"b', "/opt/a\\b"])
def test_characters_systemd_refuses_in_the_executable_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="quote or a backslash"):
        systemd_unit(bad)


def test_the_config_path_may_hold_them(tmp_path: Path) -> None:
    assert '"AIOS_CONFIG=/etc/$x.yaml"' in systemd_unit("/usr/bin/aios", "/etc/$x.yaml")
    exe = stub(tmp_path / "bin" / "aios")
    text = systemd_unit(str(exe), "/etc/a \\ 'b' \"c\" $d %e.yaml")
    assert 'Environment="AIOS_CONFIG=/etc/a \\\\ \'b\' \\"c\\" $d %%e.yaml"\n' in text
    code, lines, _ = verify(write_unit(tmp_path, text))
    assert (code, lines) == (0, [])
