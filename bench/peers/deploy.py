"""pyinfra deploy of the peers' workload (shared/reference/peers.md §1), for bench/bench_peers.py.

Run by the bench as `pyinfra -y @local bench/peers/deploy.py [--dry]` from pyinfra's own
venv (pyinfra 3.10.0, never the project's), with
  AIOS_BENCH_NETNS   the network namespace to manage
  AIOS_BENCH_DATA    data.json from bench/peers/gen_spec.py (links, rules, chain head)
  AIOS_BENCH_WORK    where the templated ruleset.nft and apply.nft live
  AIOS_BENCH_REPORT  optional: a JSON file the deploy writes its planned actions to
                     (the bench checks that a second run plans none)

The peers' model: observe the links and addresses once (`ip -j -d addr`), act per
difference (one `ip -n NS ...` command each: link add, mtu, up, addr add; nothing
that the spec does not declare is removed), template the ruleset file, compare
the live `nft list ruleset` with the desired text and `nft -f` the apply wrapper
(`flush ruleset` + `include`) only when they differ.
"""

import io
import json
import os
from pathlib import Path

import jinja2
from pyinfra import host
from pyinfra.api import FactBase
from pyinfra.operations import files, server

NETNS = os.environ["AIOS_BENCH_NETNS"]
DATA = json.loads(Path(os.environ["AIOS_BENCH_DATA"]).read_text())
WORK = Path(os.environ["AIOS_BENCH_WORK"])
TEMPLATE = Path(__file__).with_name("ruleset.nft.j2")
JINJA = {"keep_trailing_newline": True}  # as pyinfra renders templates


class NetnsAddr(FactBase):
    """`ip -n NS -j -d addr show` as parsed JSON (None: no such namespace)."""

    def command(self, netns):
        return f"ip -n {netns} -j -d addr show 2>/dev/null || echo null"

    def process(self, output):
        return json.loads("\n".join(output))


class NetnsRuleset(FactBase):
    """`nft list ruleset` inside the namespace, as text."""

    def command(self, netns):
        return f"ip netns exec {netns} nft list ruleset 2>/dev/null || true"

    def process(self, output):
        return "".join(line + "\n" for line in output)


actions = []


def act(name, command):
    actions.append(command)
    server.shell(name=name, commands=[command])


observed = host.get_fact(NetnsAddr, netns=NETNS)
if observed is None:
    act(f"netns {NETNS}", f"ip netns add {NETNS} && ip -n {NETNS} link set lo up")
    observed = []
by_name = {item["ifname"]: item for item in observed}
for link in DATA["links"]:
    name, mtu, address = link["name"], link["mtu"], link["address"]
    have = by_name.get(name)
    if have is None:
        act(f"{name}: create", f"ip -n {NETNS} link add {name} type ifb")
        have = {"mtu": None, "flags": [], "addr_info": []}
    if have["mtu"] != mtu:
        act(f"{name}: mtu {mtu}", f"ip -n {NETNS} link set {name} mtu {mtu}")
    if "UP" not in have["flags"]:
        act(f"{name}: up", f"ip -n {NETNS} link set {name} up")
    present = {f"{a['local']}/{a['prefixlen']}" for a in have["addr_info"]}
    if address not in present:
        act(f"{name}: address {address}", f"ip -n {NETNS} addr add {address} dev {name}")

ruleset_file = WORK / "ruleset.nft"
apply_file = WORK / "apply.nft"
files.template(
    name="ruleset file",
    src=str(TEMPLATE),
    dest=str(ruleset_file),
    rules=DATA["rules"],
    chain_head=DATA["chain_head"],
)
files.put(
    name="apply wrapper",
    src=io.StringIO(f'flush ruleset\ninclude "{ruleset_file}"\n'),
    dest=str(apply_file),
)
desired = (
    jinja2.Environment(**JINJA)
    .from_string(TEMPLATE.read_text())
    .render(rules=DATA["rules"], chain_head=DATA["chain_head"])
)
if host.get_fact(NetnsRuleset, netns=NETNS) != desired:
    act("load ruleset", f"ip netns exec {NETNS} nft -f {apply_file}")

if os.environ.get("AIOS_BENCH_REPORT"):
    Path(os.environ["AIOS_BENCH_REPORT"]).write_text(json.dumps({"actions": actions}))
