"""The peers' workload (shared/reference/peers.md §1) as data, an aios spec tree and raw files.

20 links pd00..pd19 (kind ifb, MTU 1400+i, admin up, IPv4 10.100.i.1/24) and
`table inet filter` with one base chain `input` (type filter hook input
priority filter; policy drop), `ct state established,related accept`,
`iif "lo" accept` and N rules `ip saddr 10.a.b.0/24 tcp dport P accept` with
a = i // 256, b = i % 256, P = 1024 + i (i = 0..N-1; unique for N <= 64,512).

Written:
  aios/network.yaml, aios/firewall.yaml  Network + Firewall specs for `aios apply -f aios/`;
                                         the table carries `force: true` (the
                                         lockout guard refuses an input policy drop
                                         that does not accept tcp 22/9090 otherwise)
  links.batch                            `ip -batch` commands creating the links from nothing
  ruleset.nft                            the table in nft's canonical `nft list ruleset` form
                                         (byte-equal to the listing once loaded)
  apply.nft                              `flush ruleset` + `include "<dir>/ruleset.nft"`:
                                         one atomic transaction replacing the ruleset
  data.json                              links and rules for the pyinfra deploy

Run alone: `python bench/peers/gen_spec.py N OUTDIR`. Used by bench/bench_peers.py
and bench/peers/deploy.py (pyinfra).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

LINK_COUNT = 20
TABLE_FAMILY, TABLE_NAME, CHAIN = "inet", "filter", "input"
FIXED_RULES = ("ct state established,related accept", 'iif "lo" accept')
CHAIN_HEAD = "type filter hook input priority filter; policy drop;"


@dataclass(frozen=True)
class Link:
    name: str
    mtu: int
    address: str  # ADDR/PREFIX


def links() -> list[Link]:
    return [Link(f"pd{i:02d}", 1400 + i, f"10.100.{i}.1/24") for i in range(LINK_COUNT)]


def rule(i: int) -> str:
    return f"ip saddr 10.{i // 256}.{i % 256}.0/24 tcp dport {1024 + i} accept"


def rules(n: int) -> list[str]:
    """Every rule of the chain, the two fixed ones first (what `nft list` prints, in order)."""
    if n > 65535 - 1024:
        raise ValueError("at most 64,511 generated rules (the port must stay below 65536)")
    return [*FIXED_RULES, *(rule(i) for i in range(n))]


def ruleset_text(n: int) -> str:
    """The table exactly as nft 1.0.6 lists it (`nft list ruleset`) once loaded."""
    body = "".join(f"\t\t{r}\n" for r in rules(n))
    return (
        f"table {TABLE_FAMILY} {TABLE_NAME} {{\n\tchain {CHAIN} {{\n\t\t{CHAIN_HEAD}\n"
        f"{body}\t}}\n}}\n"
    )


def apply_text(ruleset_path: Path) -> str:
    return f'flush ruleset\ninclude "{ruleset_path}"\n'


def links_batch() -> str:
    """`ip -batch` lines that create the links from an empty namespace (60 commands)."""
    out = []
    for link in links():
        out.append(f"link add {link.name} type ifb")
        out.append(f"link set {link.name} mtu {link.mtu} up")
        out.append(f"addr add {link.address} dev {link.name}")
    return "\n".join(out) + "\n"


def _yaml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar


def network_yaml() -> str:
    lines = [
        "apiVersion: aios.dev/v1",
        "kind: Network",
        "metadata: {name: bench-links}",
        "spec:",
        "  links:",
    ]
    for link in links():
        lines.append(
            f"    - {{name: {link.name}, kind: ifb, state: up, mtu: {link.mtu}, "
            f"addresses: [{link.address}]}}"
        )
    return "\n".join(lines) + "\n"


def firewall_yaml(n: int) -> str:
    head = [
        "apiVersion: aios.dev/v1",
        "kind: Firewall",
        "metadata: {name: bench-filter}",
        "spec:",
        "  tables:",
        f"    - family: {TABLE_FAMILY}",
        f"      name: {TABLE_NAME}",
        "      # the lockout guard refuses an input policy drop that does not accept",
        "      # tcp 22/9090; this benchmark table is meant to, in its own namespace",
        "      force: true",
        "      chains:",
        f"        - name: {CHAIN}",
        "          type: filter",
        "          hook: input",
        "          priority: filter",
        "          policy: drop",
        "          rules:",
    ]
    body = [f"            - {_yaml_str(r)}" for r in rules(n)]
    return "\n".join(head + body) + "\n"


def write(n: int, out: Path) -> dict[str, Path]:
    """Write every file for N rules under `out`; returns their paths by role."""
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "aios"
    spec.mkdir(exist_ok=True)
    (spec / "network.yaml").write_text(network_yaml())
    (spec / "firewall.yaml").write_text(firewall_yaml(n))
    ruleset = out / "ruleset.nft"
    ruleset.write_text(ruleset_text(n))
    apply = out / "apply.nft"
    apply.write_text(apply_text(ruleset))
    batch = out / "links.batch"
    batch.write_text(links_batch())
    data = out / "data.json"
    data.write_text(
        json.dumps(
            {
                "n": n,
                "links": [vars(link) for link in links()],
                "rules": rules(n),
                "chain_head": CHAIN_HEAD,
            }
        )
    )
    return {
        "spec": spec,
        "ruleset": ruleset,
        "apply": apply,
        "batch": batch,
        "data": data,
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: gen_spec.py N OUTDIR")
    for role, path in write(int(sys.argv[1]), Path(sys.argv[2])).items():
        print(f"{role}: {path}")
