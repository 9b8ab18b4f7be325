"""registry.libnft and the in-process listing path of registry.nft, inside a real namespace.

The listings run in a child Python started with `ip netns exec NS` (libnftables
talks to the calling thread's namespace, as the sandbox registry does) and are
compared byte for byte with the nft binary's.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.system.helpers import run

SCRIPT = """
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iif "lo" accept
    ip saddr 10.0.1.0/24 tcp dport 1025 counter accept
    tcp dport { 22, 80 } accept
  }
}
table ip nat {
  chain post { type nat hook postrouting priority srcnat; policy accept; masquerade; }
}
"""

PROBE = """
import asyncio, json, tempfile
from pathlib import Path
from registry import libnft, nft
from registry.process import ProcessRunner
from registry.tooling import ToolContext

tmp = Path(tempfile.mkdtemp())
ctx = ToolContext(runner=ProcessRunner(), root=tmp, state_dir=tmp, work=tmp, execution_id="t")

async def main():
    assert nft._in_process(ctx)
    return {
        "table": await nft.list_table(ctx, ("inet", "filter")),
        "missing": await nft.list_table(ctx, ("inet", "nosuch")),
        "ruleset": await nft.list_ruleset(ctx),
        "json": await nft.list_ruleset(ctx, json_format=True),
        "raw_error": libnft.run("list table inet nosuch"),
    }

print(json.dumps(asyncio.run(main())))
"""


def test_in_process_listing_is_byte_equal_to_the_binary(netns: str) -> None:
    run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=SCRIPT)
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got = json.loads(out)
    nft = ["ip", "netns", "exec", netns, "nft"]
    assert got["table"] == run([*nft, "list", "table", "inet", "filter"])
    assert got["ruleset"] == run([*nft, "list", "ruleset"])
    assert got["missing"] is None
    assert json.loads(got["json"]) == json.loads(run([*nft, "-j", "list", "ruleset"]))
    status, text, error = got["raw_error"]
    assert status != 0 and text == "" and "No such file or directory" in error
