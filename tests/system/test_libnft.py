"""registry.drivers.nft.libnft and the in-process listing path of registry.drivers.nft.ruleset,
inside a real namespace.

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
from registry.drivers.nft import libnft
from registry.drivers.nft import ruleset as nft
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext

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


CACHE_PROBE = """
import asyncio, json, subprocess, sys, tempfile
from pathlib import Path
from registry.drivers.nft import libnft
from registry.drivers.nft import ruleset as nft
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext
from registry.handlers import firewall

tmp = Path(tempfile.mkdtemp())
ctx = ToolContext(runner=ProcessRunner(), root=tmp, state_dir=tmp, work=tmp, execution_id="t")
runs = []
real_run = libnft.run

def counting(command):
    runs.append(command)
    return real_run(command)

libnft.run = counting

async def listing(table, handles=False):
    before = len(runs)
    text = await nft.list_table(ctx, ("inet", table), cached=True, handles=handles)
    return text, len(runs) - before

TABLE = sys.argv[1]

async def main():
    out = {"gen0": libnft.generation()}
    out["first"] = await listing(TABLE)
    out["again"] = await listing(TABLE)
    # observe lists with handles (firewall.ruleset {handles: true}); the before-image reuses it
    handled = await listing(TABLE, handles=True)
    out["handled"] = [nft.strip_handles(handled[0])[0], handled[1]]
    before = len(runs)
    snap = await firewall._snapshot(ctx, [("inet", TABLE)])
    out["snapshot"] = [snap["tables"][0]["text"], len(runs) - before]
    subprocess.run(["nft", "add", "rule", "inet", TABLE, "input", "tcp", "dport", "9", "accept"],
                   check=True)
    out["gen1"] = libnft.generation()
    out["after_commit"] = await listing(TABLE)
    out["uncached"] = await nft.list_table(ctx, ("inet", TABLE))
    out["counted1"] = await listing("counted")
    out["counted2"] = await listing("counted")
    return out

print(json.dumps(asyncio.run(main())))
"""


def test_unchanged_listing_is_served_from_memory_until_a_commit(netns: str) -> None:
    run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=SCRIPT)
    run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"],
        input="table inet counted {\n  chain c {\n    counter accept\n  }\n}\n",
    )
    out = json.loads(
        subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", CACHE_PROBE, "filter"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert isinstance(out["gen0"], int) and out["gen1"] > out["gen0"]
    # SCRIPT's table has a counter: never served from memory
    assert out["first"][1] == 1 and out["again"][1] == 1
    assert out["snapshot"][1] == 1
    assert out["counted1"][1] == 1 and out["counted2"][1] == 1
    assert "tcp dport 9 accept" in out["after_commit"][0]
    assert out["uncached"] == out["after_commit"][0]


STATIC = """
table inet static {
  chain input {
    type filter hook input priority filter; policy accept;
    ip saddr 10.0.1.0/24 tcp dport 1025 accept
  }
}
"""


def test_a_static_table_is_listed_once_per_generation(netns: str) -> None:
    run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=STATIC)
    run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"],
        input="table inet counted {\n  chain c {\n    counter accept\n  }\n}\n",
    )
    out = json.loads(
        subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", CACHE_PROBE, "static"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert out["first"][1] == 1 and out["again"][1] == 0  # from memory
    assert out["handled"] == [out["first"][0], 1]  # the same text once handles are removed
    assert out["snapshot"] == [out["first"][0], 0]  # firewall.apply's before-image: from memory
    assert out["again"][0] == out["first"][0]
    assert out["after_commit"][1] == 1 and "tcp dport 9 accept" in out["after_commit"][0]
    assert out["uncached"] == out["after_commit"][0]
    live = run(["ip", "netns", "exec", netns, "nft", "list", "table", "inet", "static"])
    assert out["after_commit"][0] == live


CONCURRENT_PROBE = """
import asyncio, json, sys, tempfile
from pathlib import Path
from registry.drivers.nft import ruleset as nft
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext

tmp = Path(tempfile.mkdtemp())
ctx = ToolContext(runner=ProcessRunner(), root=tmp, state_dir=tmp, work=tmp, execution_id="t")
REFS = [("inet", "filter"), ("ip", "nat"), ("inet", "other")]

async def main():
    seen = {}
    for _ in range(int(sys.argv[1])):
        # firewall.ruleset lists named tables this way: concurrently, in worker threads
        texts = await nft.list_tables(ctx, REFS)
        for ref, text in texts.items():
            seen.setdefault("/".join(ref), set()).add(text)
    return {key: sorted(texts) for key, texts in seen.items()}

print(json.dumps(asyncio.run(main())))
"""


def test_concurrent_listings_are_each_byte_equal_to_the_binary(netns: str) -> None:
    """libnftables keeps process-wide state (its interface-name cache, freed by every
    context's release): unserialized listings in threads printed `iif 1` or crashed."""
    run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=SCRIPT)
    run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"],
        input='table inet other {\n  chain c {\n    oif "lo" accept\n    iif "lo" drop\n  }\n}\n',
    )
    probe = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", CONCURRENT_PROBE, "1500"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, f"the listing process died ({probe.returncode}): {probe.stderr}"
    got = json.loads(probe.stdout)
    nft = ["ip", "netns", "exec", netns, "nft", "list", "table"]
    for key in ("inet/filter", "ip/nat", "inet/other"):
        family, name = key.split("/")
        assert got[key] == [run([*nft, family, name])], key


LINK_PROBE = """
import asyncio, json, subprocess, tempfile
from pathlib import Path
from registry.drivers.nft import libnft
from registry.drivers.nft import ruleset as nft
from registry.core.process import ProcessRunner
from registry.core.tool import ToolContext

tmp = Path(tempfile.mkdtemp())
ctx = ToolContext(runner=ProcessRunner(), root=tmp, state_dir=tmp, work=tmp, execution_id="t")
runs = []
real_run = libnft.run
libnft.run = lambda command: runs.append(command) or real_run(command)

async def main():
    first = await nft.list_table(ctx, ("inet", "byif"), cached=True)
    again = await nft.list_table(ctx, ("inet", "byif"), cached=True)
    gen = libnft.generation()
    subprocess.run(["ip", "link", "del", "probe0"], check=True)
    gone = await nft.list_table(ctx, ("inet", "byif"), cached=True)
    gone_again = await nft.list_table(ctx, ("inet", "byif"), cached=True)
    return {"first": first, "again": again, "gone": gone, "gone_again": gone_again,
            "runs": len(runs), "same_generation": libnft.generation() == gen}

print(json.dumps(asyncio.run(main())))
"""


def test_a_link_change_invalidates_listings_held_in_memory(netns: str) -> None:
    """`iif "probe0"` prints as `iif N` once the link is gone, and no generation moves:
    the memory is keyed by the interfaces too."""
    run(["ip", "netns", "exec", netns, "ip", "link", "add", "probe0", "type", "ifb"])
    run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"],
        input='table inet byif {\n  chain c {\n    iif "probe0" accept\n  }\n}\n',
    )
    out = json.loads(
        subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c", LINK_PROBE],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert 'iif "probe0" accept' in out["first"] and out["again"] == out["first"]
    assert out["same_generation"], "deleting a link moved the nf_tables generation"
    assert 'iif "probe0"' not in out["gone"] and out["gone_again"] == out["gone"]
    assert out["runs"] == 2  # the first listing, and one after the link went
    live = run(["ip", "netns", "exec", netns, "nft", "list", "table", "inet", "byif"])
    assert out["gone"] == live
