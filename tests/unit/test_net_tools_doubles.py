"""Net tools driven with a recording runner (a DOUBLE for ip/wg/sysctl): what they would run.

For kinds this kernel cannot create (wireguard) and for argv details: the
namespace wrapping, one `ip -batch` per group of ip commands, and that a
WireGuard private key is checked but never appears in commands, output or
errors.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest
from registry_support import ScriptedRunner

from registry.core.errors import ToolError
from registry.core.tool import ToolContext
from registry.drivers.net.commands import ip
from registry.drivers.net.run import CommandFailed, execute
from registry.handlers.index import tool_classes

KEY = base64.b64encode(bytes(range(32))).decode()


class RecordingRunner(ScriptedRunner):
    """Answers every command with success (and `[]` for ip -j dumps)."""

    def answer(self, argv: list[str], stdin: bytes | None) -> tuple[int, bytes, bytes]:
        return 0, b"[]" if "-j" in argv else b"", b""


def call(tool: str, args: dict[str, Any], root: Path) -> tuple[Any, RecordingRunner]:
    runner = RecordingRunner()
    ctx = ToolContext(
        runner=runner, root=root, state_dir=root, work=root, execution_id="d", netns="nsX"
    )
    return asyncio.run(tool_classes()[tool]().run(ctx, args)), runner


WG = {
    "name": "wg0",
    "kind": "wireguard",
    "state": "up",
    "wireguard": {"private_key_file": "/etc/aios/secrets/wg0.key", "listen_port": 51820},
}


def test_double_wireguard_link_add_never_shows_the_key(tmp_path: Path) -> None:
    key_file = tmp_path / "etc/aios/secrets/wg0.key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text(KEY + "\n")
    output, runner = call("net.link_add", WG, tmp_path)
    batches = [(argv, stdin) for argv, stdin in runner.pairs() if "-batch" in argv]
    assert [argv for argv, _ in batches] == [
        ["ip", "-n", "nsX", "-batch", "-"],
        ["ip", "-n", "nsX", "-batch", "-"],
    ]
    assert batches[0][1] == b"link add dev wg0 type wireguard\n"
    assert batches[1][1] == b"link set dev wg0 up\n"
    wg = [argv for argv, _ in runner.pairs() if "wg" in argv]
    assert wg == [
        [
            "ip",
            "netns",
            "exec",
            "nsX",
            "wg",
            "set",
            "wg0",
            "private-key",
            str(key_file),
            "listen-port",
            "51820",
        ]
    ]
    everything = repr(runner.pairs()) + repr(output)
    assert KEY not in everything and KEY[:20] not in everything


def test_double_wireguard_bad_key_file_fails_before_anything_runs(tmp_path: Path) -> None:
    key_file = tmp_path / "etc/aios/secrets/wg0.key"
    key_file.parent.mkdir(parents=True)
    secret = "not-a-key-but-secret-text"
    key_file.write_text(secret)
    with pytest.raises(ToolError) as failed:
        call("net.link_add", WG, tmp_path)
    assert "/etc/aios/secrets/wg0.key" in str(failed.value)
    assert secret not in str(failed.value)
    assert "nothing was changed" in str(failed.value)
    key_file.unlink()
    with pytest.raises(ToolError, match="missing or not a WireGuard private key"):
        call("net.link_add", WG, tmp_path)


def test_double_consecutive_ip_commands_share_one_batch(tmp_path: Path) -> None:
    _, runner = call(
        "net.apply",
        {
            "commands": [
                {"op": "link_add", "args": {"name": "d0", "kind": "dummy", "state": "up"}},
                {"op": "addr_add", "args": {"dev": "d0", "address": "10.0.0.1/24"}},
                {"op": "rule_add", "args": {"priority": 10, "family": "inet6", "table": 10}},
                {"op": "sysctl_set", "args": {"key": "net.ipv4.ip_forward", "value": 1}},
                {"op": "route_replace", "args": {"to": "10.9.0.0/16", "dev": "d0"}},
            ]
        },
        tmp_path,
    )
    writes = [(a, stdin) for a, stdin in runner.pairs() if "-j" not in a and "grep" not in a]
    assert writes == [
        (
            ["ip", "-n", "nsX", "-batch", "-"],
            b"link add dev d0 type dummy\nlink set dev d0 up\naddr replace 10.0.0.1/24 dev d0\n",
        ),
        (["ip", "-n", "nsX", "-6", "-batch", "-"], b"rule add priority 10 lookup 10\n"),
        (["ip", "netns", "exec", "nsX", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], None),
        (["ip", "-n", "nsX", "-batch", "-"], b"route replace 10.9.0.0/16 dev d0 table main\n"),
    ]


class FailingRunner(ScriptedRunner):
    def __init__(self, stderr: bytes) -> None:
        super().__init__()
        self.stderr = stderr

    def answer(self, argv: list[str], stdin: bytes | None) -> tuple[int, bytes, bytes]:
        return 1, b"", self.stderr


@pytest.mark.parametrize(
    ("stderr", "index"),
    [
        (b'Cannot find device "nosuch"\nCommand failed -:3\n', 2),
        (b'Error: argument "nosuch" is wrong: Device does not exist\n', 1),  # exits mid-parse
        (b"something odd\n", 0),
    ],
)
def test_double_which_batch_line_failed(tmp_path: Path, stderr: bytes, index: int) -> None:
    cmds = [
        ip("link", "add", "dev", "v0", "type", "ifb"),
        ip("link", "set", "dev", "v0", "master", "nosuch"),
        ip("link", "set", "dev", "v0", "up"),
    ]
    ctx = ToolContext(
        runner=FailingRunner(stderr),
        root=tmp_path,
        state_dir=tmp_path,
        work=tmp_path,
        execution_id="d",
        netns="nsX",
    )
    with pytest.raises(CommandFailed) as failed:
        asyncio.run(execute(ctx, cmds))
    assert failed.value.index == index and failed.value.cmd is cmds[index]
    assert "Command failed" not in failed.value.message


def test_double_delete_rule_passes_only_a_numeric_handle(tmp_path: Path) -> None:
    """firewall.delete_rule takes the handle from nft's listing and nft joins its argv
    into one command line: a handle that is not a number never reaches it."""

    class Listing(ScriptedRunner):
        def answer(self, argv: list[str], stdin: bytes | None) -> tuple[int, bytes, bytes]:
            if "-a" in argv:
                return (
                    0,
                    b"table inet filter {\n chain input {\n"
                    b"  accept # handle 5; flush ruleset\n }\n}\n",
                    b"",
                )
            return 0, b"", b""

    runner = Listing()
    ctx = ToolContext(
        runner=runner, root=tmp_path, state_dir=tmp_path, work=tmp_path, execution_id="d"
    )
    tool = tool_classes()["firewall.delete_rule"]()
    with pytest.raises(
        ToolError, match=r"^Failed to delete nft rule: unreadable handle '5; flush ruleset'$"
    ):
        asyncio.run(tool.run(ctx, {"chain": "input", "index": 0}))
    assert not [argv for argv in runner.calls if "delete" in argv]
