"""Listings brought forward by the journal of nf_tables notifications, in a real namespace.

A child Python in the namespace (as the sandbox registry runs) lists tables through
registry.drivers.nft.ruleset's cached path while raw `nft` commands change them: after
every change its answer must be byte-equal to a fresh libnftables listing, and it must
have come from memory exactly when the journal can know it (rule deletions, changes
to other tables) and from a fresh listing otherwise (a rule added, a chain changed).
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
    iifname "lo" accept
  }
  chain other {
    tcp dport 80 accept comment "web # handle 1"
  }
}
table ip nat {
  chain post { type nat hook postrouting priority srcnat; policy accept; masquerade; }
}
"""

PROBE = """
import asyncio, json, subprocess, tempfile
from pathlib import Path
from registry.drivers.nft import libnft
from registry.drivers.nft import ruleset as nft
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext

tmp = Path(tempfile.mkdtemp())
ctx = ToolContext(runner=ProcessRunner(), root=tmp, state_dir=tmp, work=tmp, execution_id="t")
listings = []
real_run = libnft.run

def counting(command):
    listings.append(command)
    return real_run(command)

libnft.run = counting

def handles(chain):
    text = real_run(f"-a list chain inet filter {chain}")[1]
    rules = [l for l in text.splitlines() if l.startswith("\\t\\t") and "# handle" in l]
    return [l.rsplit("# handle ", 1)[1] for l in rules]

def nft_do(*script):
    subprocess.run(["nft", "-f", "-"], input="\\n".join(script) + "\\n", text=True, check=True)

async def check(step):
    del listings[:]
    table = await nft.list_table(ctx, ("inet", "filter"), cached=True, handles=True)
    served = not listings
    ruleset = await nft.list_ruleset(ctx, cached=True, handles=True)
    return {
        "step": step,
        "table_equal": table == real_run("-a list table inet filter")[1],
        "ruleset_equal": ruleset == real_run("-a list ruleset")[1],
        "from_memory": served,
    }

async def main():
    rules = [f"add rule inet filter input tcp dport {1000 + i} accept" for i in range(50)]
    nft_do(*rules)
    out = [await check("listed"), await check("listed again")]
    h = handles("input")
    steps = [
        ("one rule deleted", [f"delete rule inet filter input handle {h[10]}"]),
        ("two deleted in one transaction, two chains", [
            f"delete rule inet filter input handle {h[20]}",
            f"delete rule inet filter other handle {handles('other')[0]}",
        ]),
        ("another table changed", ["add rule ip nat post counter"]),
        ("three transactions in a row", None),
        ("a rule added", ["add rule inet filter input tcp dport 9 accept"]),
        ("the chain flushed", ["flush chain inet filter other"]),
        ("a chain added", ["add chain inet filter third"]),
        ("deleted after the misses", [f"delete rule inet filter input handle {h[30]}"]),
    ]
    for name, script in steps:
        if script is None:
            for k in (40, 41, 42):
                nft_do(f"delete rule inet filter input handle {h[k]}")
        else:
            nft_do(*script)
        out.append(await check(name))
    return out

print(json.dumps(asyncio.run(main())))
"""

# Whether each step can be answered from memory: deletions and other tables' changes can;
# an added rule or chain cannot. The first listing after the journal started is fresh, so
# is its first successor (the transaction after the start may have begun before it), which
# is why "one rule deleted" is listed again; every later deletion comes from memory.
EXPECTED = {
    "listed": False,
    "listed again": True,
    "one rule deleted": False,
    "two deleted in one transaction, two chains": True,
    "another table changed": True,
    "three transactions in a row": True,
    "a rule added": False,
    "the chain flushed": True,
    "a chain added": False,
    "deleted after the misses": True,
}


def test_listings_follow_deletions_from_memory_and_list_again_otherwise(netns: str) -> None:
    run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=SCRIPT)
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for result in results:
        assert result["table_equal"] and result["ruleset_equal"], result
    assert {r["step"]: r["from_memory"] for r in results} == EXPECTED
