"""The peer scenario of shared/reference/peers.md: aios vs the raw floor vs pyinfra.

Workload (bench/peers/gen_spec.py): 20 ifb links pd00..pd19 with MTU 1400+i,
admin up and 10.100.i.1/24, plus `table inet filter` whose input chain (policy
drop) holds 2 fixed rules and N generated ones, N = 100, 1000, 10000.

Scenarios, per tool and N (wall time of each run; reset/drift are not timed):
  converge  from nothing: the links and the table are deleted before each run.
            The namespace itself stays (aios's sandbox registry lives in it), so
            unlike peers.md no tool creates a namespace here. aios keeps its state
            directory (generations, inventory, the cached canonical table): it
            converges from the observed state. The first converge of each block
            runs with an EMPTY aios state dir and is reported apart ("cold").
  no-op     on the converged state (1 warm-up run, not counted).
  drift     before each run: pd03's IPv4 flushed, pd04's MTU set to 1500, the
            10th rule of the chain deleted (raw ip/nft inside the namespace).
  plan      on the converged state, nothing changes (1 warm-up run): `aios plan`,
            `pyinfra --dry --diff`, floor = observe + compare.

Tools:
  aios     the real CLI in a subprocess: `.venv/bin/aios apply -f SPEC --sandbox NAME
           --yes` (plan: `aios plan -f SPEC --sandbox NAME`) against a sandbox this
           bench brings up once (AIOS_SANDBOX_DIR in its temp dir) and tears down.
           The Firewall spec sets `force: true` on the table: the lockout guard
           refuses an input policy drop without tcp 22/9090 otherwise. As
           installed, the console script hands each command to its warm helper
           (reconciler.cli.launch; the first run of a block starts it).
  aios-cold the same with AIOS_WARM=0: every run is a fresh interpreter importing
           the engine (about 0.25-0.3 s of imports), shown for transparency.
  floor    in this process, subprocess + json only: converge = `ip -n NS -batch FILE`
           + `ip netns exec NS nft -f apply.nft`; no-op and plan = `ip -n NS -j -d
           addr` + `nft list ruleset` + compare; drift = that + `ip -batch` of the
           repairs + `nft -f` when the ruleset differs. No interpreter start-up.
  pyinfra  pyinfra 3.10.0 in its own venv (/var/cache/aios-bench/pyinfra-venv, made
           once), `pyinfra -y @local bench/peers/deploy.py` (plan: `--dry --diff`),
           the peers' method (bench/peers/deploy.py).

Before timing, the project's packages are byte-compiled (as scripts/install.sh
does). After each tool x N block: the live state must match the spec (20/20 links:
kind, MTU, UP, exactly the one IPv4 address; `nft list ruleset` byte-equal to
the canonical text) and a further run must report no changes; every drift run
is checked too. Medians (min-max) of K runs: default 5 for N <= 1000, 3 for
N = 10000. Targets: at N=1000 every scenario >= 3x faster than pyinfra; at
N=10000 aios no-op <= 0.6 s. Not a test: prints ratios measured in this run.
Needs root; everything runs in namespaces it creates and deletes.

Run: `.venv/bin/python bench/bench_peers.py [--n 100 1000 10000] [--runs K]
      [--tools aios floor pyinfra] [--scenarios converge noop drift plan] [--json FILE]`
(e.g. `--scenarios drift --n 1000 10000`: the incremental firewall repair's target,
drift-repair >= 5x faster than pyinfra at N=1000 and N=10000).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench" / "peers"))

import gen_spec  # noqa: E402  (bench/peers/gen_spec.py)

AIOS = REPO / ".venv" / "bin" / "aios"
DEPLOY = REPO / "bench" / "peers" / "deploy.py"
PYINFRA_VERSION = "3.10.0"
PYINFRA_VENV = Path(os.environ.get("AIOS_BENCH_PYINFRA_VENV", "/var/cache/aios-bench/pyinfra-venv"))
SCENARIOS = ("converge", "noop", "drift", "plan")
TOOLS = ("aios", "aios-cold", "floor", "pyinfra")
COMMAND_TIMEOUT = 600


# --- namespaces: reset, drift, verify (raw ip/nft, never timed) --------------


def sh(argv: list[str], *, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def nft(ns: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
    return sh(["ip", "netns", "exec", ns, "nft", *args], stdin=stdin, check=check)


def reset(ns: str) -> None:
    """Delete the links and the table (what converge starts from)."""
    dels = "".join(f"link del {link.name}\n" for link in gen_spec.links())
    sh(["ip", "-n", ns, "-force", "-batch", "-"], stdin=dels, check=False)
    nft(ns, "-f", "-", stdin="table inet filter\ndelete table inet filter\n")
    left = sh(["ip", "-n", ns, "-br", "link", "show"])
    if any(line.startswith("pd") for line in left.splitlines()):
        raise RuntimeError(f"reset left links behind in {ns}:\n{left}")


def drift(ns: str) -> None:
    """The peers' 3 drifts: flush pd03's IPv4, pd04's MTU to 1500, delete the 10th rule."""
    sh(["ip", "-n", ns, "-4", "addr", "flush", "dev", "pd03"])
    sh(["ip", "-n", ns, "link", "set", "pd04", "mtu", "1500"])
    listing = nft(ns, "-a", "list", "chain", "inet", "filter", "input")
    handles = [
        line.rsplit("# handle", 1)[1].strip()
        for line in listing.splitlines()
        if "# handle" in line and not line.strip().startswith(("table ", "chain "))
    ]
    nft(ns, "delete", "rule", "inet", "filter", "input", "handle", handles[9])


def link_repairs(observed: list[dict[str, Any]]) -> list[str]:
    """`ip -batch` lines that bring the observed links to the spec (none removed)."""
    by_name = {item["ifname"]: item for item in observed}
    out = []
    for link in gen_spec.links():
        have = by_name.get(link.name)
        if have is None:
            out.append(f"link add {link.name} type ifb")
            have = {"mtu": None, "flags": [], "addr_info": []}
        if have["mtu"] != link.mtu:
            out.append(f"link set {link.name} mtu {link.mtu}")
        if "UP" not in have["flags"]:
            out.append(f"link set {link.name} up")
        if link.address not in {f"{a['local']}/{a['prefixlen']}" for a in have["addr_info"]}:
            out.append(f"addr add {link.address} dev {link.name}")
    return out


def verify(ns: str, n: int) -> list[str]:
    """What differs from the spec (empty: 20/20 links correct, ruleset byte-equal)."""
    problems = []
    observed = {d["ifname"]: d for d in json.loads(sh(["ip", "-n", ns, "-j", "-d", "addr"]))}
    good = 0
    for link in gen_spec.links():
        have = observed.get(link.name)
        if have is None:
            problems.append(f"{link.name} missing")
            continue
        kind = have.get("linkinfo", {}).get("info_kind")
        v4 = sorted(
            f"{a['local']}/{a['prefixlen']}" for a in have["addr_info"] if a["family"] == "inet"
        )
        wrong = []
        if kind != "ifb":
            wrong.append(f"kind {kind}")
        if have["mtu"] != link.mtu:
            wrong.append(f"mtu {have['mtu']}")
        if "UP" not in have["flags"]:
            wrong.append("not up")
        if v4 != [link.address]:
            wrong.append(f"IPv4 {v4}")
        if wrong:
            problems.append(f"{link.name}: {', '.join(wrong)}")
        else:
            good += 1
    if good != len(gen_spec.links()):
        problems.insert(0, f"{good}/{len(gen_spec.links())} links correct")
    live, want = nft(ns, "list", "ruleset"), gen_spec.ruleset_text(n)
    if live != want:
        lines_live, lines_want = live.splitlines(), want.splitlines()
        at = next(
            (i for i, (a, b) in enumerate(zip(lines_live, lines_want, strict=False)) if a != b),
            min(len(lines_live), len(lines_want)),
        )
        problems.append(
            f"ruleset differs ({len(lines_live)} vs {len(lines_want)} lines; first at line "
            f"{at + 1}: {lines_live[at] if at < len(lines_live) else '<end>'!r} vs "
            f"{lines_want[at] if at < len(lines_want) else '<end>'!r})"
        )
    return problems


@contextlib.contextmanager
def namespace(name: str) -> Iterator[str]:
    sh(["ip", "netns", "add", name])
    try:
        sh(["ip", "-n", name, "link", "set", "lo", "up"])
        yield name
    finally:
        sh(["ip", "netns", "del", name], check=False)


# --- tools ---------------------------------------------------------------------


class ToolFailure(Exception):
    pass


@dataclass
class Files:
    n: int
    paths: dict[str, Path]


class Tool:
    name: str
    ns: str

    def prepare(self, files: Files) -> None:
        """Before a block of N (e.g. an empty state dir); not timed."""

    def run(self, scenario: str, files: Files) -> int:
        """Run one scenario; returns the number of changes it reported (-1: unknown)."""
        raise NotImplementedError

    def changes_pending(self, files: Files) -> int:
        """A further run's planned changes (0: idempotent)."""
        raise NotImplementedError


def _proc(argv: list[str], *, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 25) -> str:
    text = (proc.stdout + proc.stderr).splitlines()
    return "\n".join(text[-lines:])


class Aios(Tool):
    """`aios` as installed: the console script hands commands to its warm helper."""

    name = "aios"
    warm = "1"

    def __init__(self, tmp: Path) -> None:
        self.box = f"bp{uuid.uuid4().hex[:6]}"
        self.ns = f"aios-{self.box}"
        self.base = tmp / "sandboxes"
        self.cwd = tmp
        self.env = {
            **os.environ,
            "AIOS_SANDBOX_DIR": str(self.base),
            "NO_COLOR": "1",
            "AIOS_WARM": self.warm,
        }
        for var in ("AIOS_TOOLS_ADDR",):
            self.env.pop(var, None)

    def up(self) -> None:
        proc = _proc([str(AIOS), "sandbox", "up", self.box], env=self.env, cwd=self.cwd)
        if proc.returncode != 0:
            raise ToolFailure(f"aios sandbox up failed:\n{_tail(proc)}")

    def down(self) -> None:
        proc = _proc([str(AIOS), "sandbox", "down", self.box], env=self.env, cwd=self.cwd)
        if proc.returncode != 0:
            print(f"warning: aios sandbox down failed:\n{_tail(proc)}", file=sys.stderr)
        sh(["ip", "netns", "del", self.ns], check=False)

    @property
    def state_dir(self) -> Path:
        return self.base / self.box / "state"

    def prepare(self, files: Files) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True)

    def run(self, scenario: str, files: Files) -> int:
        spec = str(files.paths["spec"])
        if scenario == "plan":
            argv = [str(AIOS), "plan", "-f", spec, "--sandbox", self.box]
        else:
            argv = [str(AIOS), "apply", "-f", spec, "--sandbox", self.box, "--yes"]
        proc = _proc(argv, env=self.env, cwd=self.cwd)
        if proc.returncode not in (0, 2) or (scenario != "plan" and proc.returncode != 0):
            raise ToolFailure(f"aios {argv[1]} exited {proc.returncode}:\n{_tail(proc)}")
        return -1 if scenario != "plan" else (0 if proc.returncode == 0 else 1)

    def changes_pending(self, files: Files) -> int:
        spec = str(files.paths["spec"])
        argv = [str(AIOS), "plan", "-f", spec, "--sandbox", self.box]
        proc = _proc(argv, env=self.env, cwd=self.cwd)
        if proc.returncode == 0:
            return 0
        if proc.returncode == 2:
            print(_tail(proc, 40), file=sys.stderr)
            return 1
        raise ToolFailure(f"aios plan exited {proc.returncode}:\n{_tail(proc)}")


class AiosCold(Aios):
    """`aios` with its warm helper disabled (AIOS_WARM=0): every run imports everything."""

    name = "aios-cold"
    warm = "0"


class Floor(Tool):
    name = "floor"

    def __init__(self, ns: str) -> None:
        self.ns = ns

    def _cycle(self, files: Files, *, apply: bool) -> int:
        addr = subprocess.run(
            ["ip", "-n", self.ns, "-j", "-d", "addr", "show"], capture_output=True, check=True
        ).stdout
        live = subprocess.run(
            ["ip", "netns", "exec", self.ns, "nft", "list", "ruleset"],
            capture_output=True,
            check=True,
        ).stdout
        repairs = link_repairs(json.loads(addr))
        differs = live != files.paths["ruleset"].read_bytes()
        if apply and repairs:
            subprocess.run(
                ["ip", "-n", self.ns, "-batch", "-"],
                input="\n".join(repairs).encode() + b"\n",
                capture_output=True,
                check=True,
            )
        if apply and differs:
            subprocess.run(
                ["ip", "netns", "exec", self.ns, "nft", "-f", str(files.paths["apply"])],
                capture_output=True,
                check=True,
            )
        return len(repairs) + int(differs)

    def run(self, scenario: str, files: Files) -> int:
        if scenario == "converge":
            subprocess.run(
                ["ip", "-n", self.ns, "-batch", str(files.paths["batch"])],
                capture_output=True,
                check=True,
            )
            subprocess.run(
                ["ip", "netns", "exec", self.ns, "nft", "-f", str(files.paths["apply"])],
                capture_output=True,
                check=True,
            )
            return -1
        return self._cycle(files, apply=scenario != "plan")

    def changes_pending(self, files: Files) -> int:
        return self._cycle(files, apply=False)


class Pyinfra(Tool):
    name = "pyinfra"

    def __init__(self, ns: str, tmp: Path) -> None:
        self.ns = ns
        self.tmp = tmp
        self.bin = PYINFRA_VENV / "bin" / "pyinfra"

    def _env(self, files: Files, report: Path) -> dict[str, str]:
        work = files.paths["spec"].parent / "pyinfra-work"
        work.mkdir(exist_ok=True)
        return {
            **os.environ,
            "AIOS_BENCH_NETNS": self.ns,
            "AIOS_BENCH_DATA": str(files.paths["data"]),
            "AIOS_BENCH_WORK": str(work),
            "AIOS_BENCH_REPORT": str(report),
            "NO_COLOR": "1",
        }

    def prepare(self, files: Files) -> None:
        shutil.rmtree(files.paths["spec"].parent / "pyinfra-work", ignore_errors=True)

    def _deploy(self, files: Files, *, dry: bool) -> int:
        report = self.tmp / "pyinfra-report.json"
        report.unlink(missing_ok=True)
        argv = [str(self.bin), "@local", str(DEPLOY)]
        argv += ["--dry", "--diff"] if dry else ["-y"]
        proc = _proc(argv, env=self._env(files, report), cwd=self.tmp)
        if proc.returncode != 0:
            raise ToolFailure(f"pyinfra exited {proc.returncode}:\n{_tail(proc)}")
        return len(json.loads(report.read_text())["actions"])

    def run(self, scenario: str, files: Files) -> int:
        return self._deploy(files, dry=scenario == "plan")

    def changes_pending(self, files: Files) -> int:
        return self._deploy(files, dry=True)


def ensure_pyinfra() -> str:
    """pyinfra PYINFRA_VERSION in its own venv outside the repository (made once)."""
    exe = PYINFRA_VENV / "bin" / "pyinfra"
    if not exe.exists():
        PYINFRA_VENV.parent.mkdir(parents=True, exist_ok=True)
        print(f"installing pyinfra {PYINFRA_VERSION} into {PYINFRA_VENV} ...", flush=True)
        sh([sys.executable, "-m", "venv", "--clear", str(PYINFRA_VENV)])
        sh([str(PYINFRA_VENV / "bin" / "pip"), "install", "-q", f"pyinfra=={PYINFRA_VERSION}"])
    return sh([str(exe), "--version"]).strip()


# --- measuring -------------------------------------------------------------------


@dataclass
class Result:
    tool: str
    n: int
    scenario: str
    times: list[float] = field(default_factory=list)
    changes: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    def cell(self) -> str:
        if self.error:
            return "FAILED"
        if not self.times:
            return "-"
        return f"{self.median:.3f} ({min(self.times):.3f}-{max(self.times):.3f})"


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    changes = fn()
    return time.perf_counter() - start, changes


def run_block(
    tool: Tool,
    files: Files,
    runs: int,
    log: Callable[[str], None],
    scenarios: tuple[str, ...] = SCENARIOS,
) -> dict[str, Any]:
    """The scenarios for one tool and N (the cold converge always: every other scenario
    starts from the converged state); returns results, the cold converge and checks."""
    n = files.n
    results = {s: Result(tool.name, n, s) for s in SCENARIOS}
    checks: list[str] = []

    def check(when: str) -> None:
        problems = verify(tool.ns, n)
        if problems:
            checks.append(f"after {when}: " + "; ".join(problems))

    load = os.getloadavg()[0]
    tool.prepare(files)
    reset(tool.ns)
    scenario, cold = "converge", None
    try:
        cold, _ = timed(lambda: tool.run("converge", files))
        check("cold converge")
        log(f"  {tool.name} N={n}: cold converge {cold:.3f} s")
        for _ in range(runs if "converge" in scenarios else 0):
            reset(tool.ns)
            t, c = timed(lambda: tool.run("converge", files))
            results["converge"].times.append(t)
            results["converge"].changes.append(c)
        check("converge")
        for scenario in [s for s in ("noop", "plan") if s in scenarios]:
            tool.run(scenario, files)  # warm-up
            for _ in range(runs):
                t, c = timed(lambda sc=scenario: tool.run(sc, files))  # type: ignore[misc]
                results[scenario].times.append(t)
                results[scenario].changes.append(c)
                if c > 0:
                    checks.append(f"{scenario} reported {c} changes on the converged state")
        scenario = "drift"
        for i in range(runs if "drift" in scenarios else 0):
            drift(tool.ns)
            t, c = timed(lambda: tool.run("drift", files))
            results["drift"].times.append(t)
            results["drift"].changes.append(c)
            check(f"drift repair {i + 1}")
        pending = tool.changes_pending(files)
        if pending:
            checks.append(f"a further run plans {pending} changes (not idempotent)")
    except (ToolFailure, RuntimeError, subprocess.SubprocessError) as exc:
        results[scenario].error = str(exc)
        checks.append(f"{scenario} failed: {exc}")
    for s in SCENARIOS:
        r = results[s]
        if r.times:
            log(f"  {tool.name} N={n}: {s:<8} {r.cell()}")
    return {"results": results, "cold": cold, "checks": checks, "load": load}


# --- report ------------------------------------------------------------------------


def fmt_ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:6.1f}x" if a and b else "     -"


def report(blocks: dict[tuple[str, int], dict[str, Any]], ns_list: list[int]) -> list[str]:
    out = []
    head = f"{'tool':<13} {'N':>6}  " + "  ".join(
        f"{s + ' (s)':<22}" for s in ("converge", "no-op", "drift-repair", "plan")
    )
    out += [head, "-" * len(head)]
    for n in ns_list:
        for tool in TOOLS:
            block = blocks.get((tool, n))
            if block is None:
                continue
            cells = "  ".join(f"{block['results'][s].cell():<22}" for s in SCENARIOS)
            out.append(f"{tool:<13} {n:>6}  {cells}")
    out.append("")
    out.append("cold converge (first run of each block; aios with an empty state dir):")
    for n in ns_list:
        colds = {tool: blocks[(tool, n)]["cold"] for tool in TOOLS if (tool, n) in blocks}
        parts = [f"{t} {c:.3f} s" if c is not None else f"{t} failed" for t, c in colds.items()]
        out.append(f"  N={n:>5}: " + ", ".join(parts))
    loads = ", ".join(f"{t} N={n} {b['load']:.1f}" for (t, n), b in blocks.items())
    out.append(f"1-min load average at the start of each block ({os.cpu_count()} cores): {loads}")
    out.append("")
    out.append(f"{'ratio':<13} {'N':>6}  " + "  ".join(f"{s:<22}" for s in SCENARIOS))

    def med(tool: str, n: int, s: str) -> float | None:
        block = blocks.get((tool, n))
        return block["results"][s].median if block else None

    for label, num, den in (
        ("pyinfra/aios", "pyinfra", "aios"),
        ("pyinfra/cold", "pyinfra", "aios-cold"),
        ("aios/floor", "aios", "floor"),
    ):
        for n in ns_list:
            cells = "  ".join(f"{fmt_ratio(med(num, n, s), med(den, n, s)):<22}" for s in SCENARIOS)
            out.append(f"{label:<13} {n:>6}  {cells}")
    out.append("")
    ran = [s for s in SCENARIOS if any(b["results"][s].times for b in blocks.values())]
    if all((t, 1000) in blocks for t in ("aios", "pyinfra")):
        ratios = {s: (med("pyinfra", 1000, s) or 0) / (med("aios", 1000, s) or 1) for s in ran}
        ok = all(r >= 3 for r in ratios.values()) and not any(
            blocks[(t, 1000)]["results"][s].error for t in ("aios", "pyinfra") for s in ran
        )
        detail = ", ".join(f"{s} {r:.1f}x" for s, r in ratios.items())
        verdict = "PASS" if ok else "FAIL"
        scope = "every scenario" if ran == list(SCENARIOS) else "every scenario run"
        out.append(f"{verdict}: N=1000, {scope} >= 3x faster than pyinfra ({detail})")
    else:
        out.append("SKIP: N=1000 target needs aios and pyinfra at N=1000")
    for n in (1000, 10000):  # the incremental firewall repair's target (issue 10)
        if "drift" not in ran or not all((t, n) in blocks for t in ("aios", "pyinfra")):
            continue
        ours, theirs = med("aios", n, "drift"), med("pyinfra", n, "drift")
        ratio = (theirs or 0) / (ours or float("inf"))
        verdict = "PASS" if ratio >= 5 else "FAIL"
        out.append(f"{verdict}: N={n}, drift-repair >= 5x faster than pyinfra ({ratio:.1f}x)")
    if ("aios", 10000) in blocks and "noop" in ran:
        noop = med("aios", 10000, "noop")
        ok = noop is not None and noop <= 0.6
        shown = f"{noop:.3f} s" if noop is not None else "failed"
        out.append(f"{'PASS' if ok else 'FAIL'}: N=10000, aios no-op <= 0.6 s (median {shown})")
    else:
        out.append("SKIP: N=10000 target needs aios at N=10000")
    problems = [
        f"{tool} N={n}: {c}" for (tool, n), block in blocks.items() for c in block["checks"]
    ]
    out.append("")
    if problems:
        out.append("CHECKS FAILED:")
        out += [f"  {p}" for p in problems]
    else:
        out.append(
            "checks: every block verified (20/20 links, ruleset byte-equal after converge and "
            "every drift repair; no-op/plan reported no changes; a further run plans none)"
        )
    return out


def versions(tools: list[str]) -> dict[str, str]:
    found = {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "iproute2": sh(["ip", "-V"]).strip(),
        "nftables": sh(["nft", "-v"]).strip(),
    }
    if "aios" in tools:
        found["aios"] = sh([str(AIOS), "--version"]).strip()
    if "pyinfra" in tools:
        found["pyinfra"] = sh([str(PYINFRA_VENV / "bin" / "pyinfra"), "--version"]).strip()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--runs", type=int, default=None, help="K (default 5, 3 for N=10000)")
    parser.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    parser.add_argument("--json", type=Path, default=None, help="write the raw numbers here")
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=SCENARIOS,
        default=list(SCENARIOS),
        help="scenarios to time (the cold converge of each block always runs)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_peers.py needs root (network namespaces)", file=sys.stderr)
        return 2
    tools = [t for t in TOOLS if t in args.tools]
    if "pyinfra" in tools:
        ensure_pyinfra()
    if "aios" in tools or "aios-cold" in tools:
        # As scripts/install.sh does: under PYTHONDONTWRITEBYTECODE a stale .pyc would
        # otherwise be recompiled on every `aios` start.
        from reconciler.cli.launch import PACKAGES as packages

        sh([str(REPO / ".venv" / "bin" / "python"), "-m", "compileall", "-q", "-j", "0",
            *(str(REPO / p) for p in packages)])  # fmt: skip
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "versions": versions(tools),
    }
    print("bench_peers: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    print(
        "note: the aios Firewall spec sets force: true on the table (input policy drop without "
        "tcp 22/9090 is refused by the lockout guard otherwise)"
    )
    blocks: dict[tuple[str, int], dict[str, Any]] = {}

    def log(line: str) -> None:
        print(line, flush=True)

    with tempfile.TemporaryDirectory(prefix="aios-bench-peers-") as tmp_name:
        tmp = Path(tmp_name)
        tag = uuid.uuid4().hex[:6]
        with contextlib.ExitStack() as stack:
            instances: list[Tool] = []
            for name in tools:
                if name in ("aios", "aios-cold"):
                    aios = Aios(tmp) if name == "aios" else AiosCold(tmp)
                    stack.callback(aios.down)
                    aios.up()
                    instances.append(aios)
                elif name == "floor":
                    ns = stack.enter_context(namespace(f"aiosbp-{tag}-floor"))
                    instances.append(Floor(ns))
                else:
                    ns = stack.enter_context(namespace(f"aiosbp-{tag}-pyi"))
                    instances.append(Pyinfra(ns, tmp))
            for n in args.n:
                paths = gen_spec.write(n, tmp / f"n{n}")
                files = Files(n, paths)
                runs = args.runs or (3 if n >= 10000 else 5)
                for tool in instances:
                    log(f"{tool.name} N={n} ({runs} runs) ...")
                    scenarios = tuple(s for s in SCENARIOS if s in args.scenarios)
                    blocks[(tool.name, n)] = run_block(tool, files, runs, log, scenarios)
                    reset(tool.ns)
    lines = report(blocks, args.n)
    print()
    print("\n".join(lines))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "blocks": [
                        {
                            "tool": tool,
                            "n": n,
                            "cold_converge_s": block["cold"],
                            "load_average_1min": block["load"],
                            "checks": block["checks"],
                            "scenarios": {
                                s: {
                                    "times_s": r.times,
                                    "median_s": r.median,
                                    "changes": r.changes,
                                    "error": r.error,
                                }
                                for s, r in block["results"].items()
                            },
                        }
                        for (tool, n), block in blocks.items()
                    ],
                    "report": lines,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
