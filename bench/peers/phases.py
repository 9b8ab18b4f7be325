"""Where one `aios apply` / `aios plan` spends its wall time, phase by phase (no profiler).

Runs the real CLI command in this process (`reconciler.cli.main.main([...])`)
after wrapping the engine's functions with wall-clock timers, so the numbers
are not inflated by a tracing profiler:

  interpreter      `python -c pass` (measured in a child, for reference)
  imports          this process importing the modules the command needs
                   (CLI, engine, store, registry client, specs, the controllers named)
  spec load        specs.loader.load_paths (C YAML parse + validation)
  open engine      Store() and the registry client
  catalogue        Engine.catalogue (ListTools)
  merge            Engine.merge (stored generation + these specs)
  registry: TOOL   every RegistryClient.call, by tool (reads and writes), as the client waits
  observe          controller.observe per domain (includes its registry reads)
  diff/plan/verify controller.diff, controller.plan, reconciler.engine.planning.verify_plan
  render           printing the plan
  store            every Store method (generation, status, inventory, journal, cache)
Phases nest (observe includes its registry calls); `total` is the command.

Run (root; a sandbox that is up):
  AIOS_SANDBOX_DIR=DIR .venv/bin/python bench/peers/phases.py apply -f SPEC --sandbox NAME --yes
  AIOS_SANDBOX_DIR=DIR .venv/bin/python bench/peers/phases.py plan -f SPEC --sandbox NAME
"""

from __future__ import annotations

import functools
import inspect
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

START = time.perf_counter()

import controllers.firewall  # noqa: E402
import controllers.network  # noqa: E402
import reconciler.cli.common  # noqa: E402
import reconciler.cli.main  # noqa: E402
import reconciler.cli.plan_cmds  # noqa: E402
import reconciler.client  # noqa: E402
import reconciler.engine.planning  # noqa: E402
import specs.loader  # noqa: E402
from reconciler.engine.reconcile import Engine  # noqa: E402
from reconciler.engine.store import Store  # noqa: E402

IMPORTED = time.perf_counter()
TOTALS: dict[str, float] = defaultdict(float)
COUNTS: dict[str, int] = defaultdict(int)


def _record(label: str, started: float) -> None:
    TOTALS[label] += time.perf_counter() - started
    COUNTS[label] += 1


def wrap(owner: Any, name: str, label: str | None = None) -> None:
    original = getattr(owner, name)
    tag = label or name

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                _record(tag, started)

        setattr(owner, name, timed_async)
    else:

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                _record(tag, started)

        setattr(owner, name, timed)


def wrap_call() -> None:
    original = reconciler.client.RegistryClient.call

    @functools.wraps(original)
    async def call(self: Any, tool: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, tool, *args, **kwargs)
        finally:
            _record(f"registry: {tool}", started)

    reconciler.client.RegistryClient.call = call  # type: ignore[method-assign]


def install() -> None:
    wrap(specs.loader, "load_paths", "spec load")
    wrap(reconciler.cli.common, "open_engine", "open engine (enter)")
    wrap(Engine, "catalogue", "catalogue")
    wrap(Engine, "merge", "merge")
    wrap(reconciler.cli.plan_cmds, "_show", "render")
    wrap(reconciler.engine.planning, "verify_plan", "verify")
    for package in (controllers.network, controllers.firewall):
        controller = getattr(package, "CONTROLLER", None)
        if controller is None:
            continue  # a controller still being built
        cls = type(controller)
        for method in ("observe", "diff", "plan", "simulate"):
            wrap(cls, method, f"{method} ({controller.domain})")
    for name, _member in inspect.getmembers(Store, inspect.isfunction):
        if not name.startswith("_") or name == "__init__":
            wrap(Store, name, "store")
    wrap_call()


def main() -> None:
    interp = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        interp.append(time.perf_counter() - started)
    install()
    started = time.perf_counter()
    code: object = 0
    try:
        reconciler.cli.main.main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
    total = time.perf_counter() - started
    print(f"\n--- phases of `aios {' '.join(sys.argv[1:])}` (exit {code}) ---", file=sys.stderr)
    print(
        f"{'interpreter start (python -c pass)':<40} {min(interp) * 1000:8.1f} ms", file=sys.stderr
    )
    print(f"{'imports (CLI, engine, specs, client, controllers)':<40} "
          f"{(IMPORTED - START) * 1000:8.1f} ms", file=sys.stderr)  # fmt: skip
    for label in sorted(TOTALS, key=lambda k: -TOTALS[k]):
        print(f"{label:<40} {TOTALS[label] * 1000:8.1f} ms  x{COUNTS[label]}", file=sys.stderr)
    print(f"{'command total (after imports)':<40} {total * 1000:8.1f} ms", file=sys.stderr)


if __name__ == "__main__":
    main()
