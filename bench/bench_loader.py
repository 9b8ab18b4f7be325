"""Benchmark: load and validate a generated spec tree of 5,000 mixed resources.

Generates a tree (several resources per file, several files per directory,
nested directories) of Network, Firewall, Packages, Storage and Models
resources that is valid and free of conflicts, then times
`specs.loader.load_paths` on it: best of N and median, resources/s, and the
ratio to the 3,000 resources/s target. Not a test; run it by hand:

    .venv/bin/python bench/bench_loader.py [--resources 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TARGET = 3000.0  # resources/s
PER_FILE = 10
FILES_PER_DIR = 25


def network(i: int) -> str:
    return f"""apiVersion: aios.dev/v1
kind: Network
metadata:
  name: net-{i}
  labels: {{bench: "true", shard: "s{i % 7}"}}
spec:
  links:
    - name: v{i}a
      kind: veth
      mtu: 1500
      veth: {{peer: v{i}b}}
      addresses: [10.{i // 250}.{i % 250}.1/30, "fd00:{i:x}::1/64"]
    - name: br{i}
      kind: bridge
      bridge: {{stp: false}}
  routes:
    - to: 172.{16 + i % 16}.{i // 256 % 256}.{i % 256 // 4 * 4}/30
      dev: br{i}
      table: {100 + i}
      metric: {i % 100}
  sysctls:
    net.ipv4.conf.br{i}.forwarding: 1
"""


def firewall(i: int) -> str:
    return f"""apiVersion: aios.dev/v1
kind: Firewall
metadata:
  name: fw-{i}
  dependsOn: [Network/net-{i - 1}]
spec:
  tables:
    - family: inet
      name: t{i}
      sets:
        - name: admins
          type: ipv4_addr
          flags: [interval]
          elements: [192.0.2.0/28, 198.51.100.{i % 250}]
      chains:
        - name: input
          type: filter
          hook: input
          priority: filter
          policy: drop
          rules:
            - ct state established,related accept
            - iif lo accept
            - ip saddr @admins tcp dport 22 accept
          services:
            - {{name: console, port: 9090}}
            - {{name: web, ports: [80, 443]}}
"""


def packages(i: int) -> str:
    return f"""apiVersion: aios.dev/v1
kind: Packages
metadata:
  name: pkgs-{i}
spec:
  packages:
    - {{name: bench-{i}-a, version: "1.0-1"}}
    - {{name: bench-{i}-b, version: ">=1.0, <2"}}
    - name: bench-{i}-c
      hold: true
"""


def storage(i: int) -> str:
    return f"""apiVersion: aios.dev/v1
kind: Storage
metadata:
  name: store-{i}
spec:
  mounts:
    - target: /srv/bench/{i}/tmp
      source: tmpfs
      type: tmpfs
      options: [size=16M, mode=0755]
  directories:
    - path: /srv/bench/{i}/data
      mode: "0750"
      owner: root
"""


def models(i: int) -> str:
    return f"""apiVersion: aios.dev/v1
kind: Models
metadata:
  name: models-{i}
spec:
  directory: /var/lib/aios/models/{i}
  models:
    - name: bench-{i}
      source: http://127.0.0.1:18080/models/bench-{i}.gguf
      sha256: "{i:064x}"
      layer: operational
      load: on_demand
"""


KINDS: tuple[Callable[[int], str], ...] = (network, firewall, packages, storage, models)


def generate(root: Path, count: int) -> int:
    """Write `count` resources under `root`; returns how many files."""
    files = 0
    for start in range(0, count, PER_FILE):
        docs = [KINDS[i % len(KINDS)](i) for i in range(start, min(start + PER_FILE, count))]
        directory = root / f"d{files // FILES_PER_DIR:03d}"
        if files % 2:
            directory = directory / "sub"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{files:04d}.yaml").write_text("---\n".join(docs), encoding="utf-8")
        files += 1
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    from specs.loader import load_paths

    import_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="aios-bench-") as tmp:
        root = Path(tmp)
        files = generate(root, args.resources)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            specset = load_paths([root])
            times.append(time.perf_counter() - t0)
        assert len(specset.resources) == args.resources, len(specset.resources)
    best, median = min(times), statistics.median(times)
    rate = args.resources / best
    print(f"resources      {args.resources} in {files} files")
    print(f"import         {import_seconds:.3f} s (specs.loader)")
    print(f"seconds        best {best:.3f}  median {median:.3f}  (of {args.repeat})")
    print(f"resources/s    best {rate:,.0f}  median {args.resources / median:,.0f}")
    print(f"vs target      {rate / TARGET:.2f}x of {TARGET:,.0f} resources/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
