"""`aios daemon`: run the reconciler daemon in the foreground.

Wires the pieces reconciler.daemon is handed (it imports none of them): the
target (a registry address or a sandbox, as every command resolves it), an
Engine over the controllers, the registry client as the change feed, the
SpecSource over the specs directories, the API on a unix socket, and the
metrics endpoint. Logs go to stderr as JSON lines (`--log-format text` for
people). SIGTERM/SIGINT: the step in flight finishes, nothing new starts, the
process exits (a second signal exits at once); SIGHUP reloads the
configuration (specs directories, drift settings; the API and metrics
addresses need a restart). Nothing of the LLM stack is imported here.

Defaults come from the configuration (reconciler.config: file < environment <
flags). `--print-service systemd` prints the systemd unit and exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from reconciler.cli.common import (
    EXIT_FAILED,
    daemon_address,
    open_engine,
    resolve_target,
    target_options,
)
from reconciler.config import DriftSettings, Settings, load_settings
from reconciler.engine.reconcile import Target
from reconciler.sdk.errors import AiosError

log = logging.getLogger("aios.daemon")

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonLines(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, sort_keys=False)


class Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        where = getattr(record, "resource", "")
        reason = getattr(record, "reason", "")
        head = " ".join(p for p in (stamp, record.levelname.lower(), reason, where) if p)
        return f"{head}: {record.getMessage()}"


def setup_logging(fmt: str, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if fmt == "json" else Text())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("watchfiles", "grpc", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.command()
@click.option(
    "--specs",
    "specs_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Specs directory to watch (repeatable; default: the configuration's specsDir).",
)
@target_options
@click.option("--api", default=None, help="The API socket, unix:///PATH.")
@click.option("--metrics", default=None, help="Serve Prometheus metrics on HOST:PORT.")
@click.option("--poll-interval", default=None, help="Override drift.pollInterval (e.g. 60s).")
@click.option("--resync-interval", default=None, help="Override drift.resyncInterval.")
@click.option(
    "--no-change-feed",
    is_flag=True,
    help="Do not use the registry's change feed: poll every drift.pollInterval instead.",
)
@click.option(
    "--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option(
    "--print-service",
    type=click.Choice(["systemd"]),
    default=None,
    help="Print the service file for this init system and exit.",
)
def daemon(
    specs_dirs: tuple[Path, ...],
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    api: str | None,
    metrics: str | None,
    poll_interval: str | None,
    resync_interval: str | None,
    no_change_feed: bool,
    log_format: str,
    verbose: bool,
    print_service: str | None,
) -> None:
    """Reconcile the specs directories continuously: edits converge, drift is healed.

    Runs in the foreground until SIGTERM/SIGINT; SIGHUP reloads the configuration.
    """
    if print_service == "systemd":
        from reconciler.daemon.service import systemd_unit

        click.echo(systemd_unit(_executable()), nl=False)
        return
    setup_logging(log_format, verbose)

    def settings_now() -> Settings:
        s = load_settings(
            registry=registry,
            state_dir=str(state_dir) if state_dir else None,
            specs_dirs=[str(p) for p in specs_dirs] or None,
            metrics=metrics,
        )
        return _with_intervals(s, poll_interval, resync_interval)

    try:
        settings = settings_now()
    except AiosError as exc:
        click.echo(f"aios: {exc}", err=True)
        raise SystemExit(EXIT_FAILED) from None
    target = resolve_target(registry, sandbox, state_dir, bring_up=True)
    address = daemon_address(api, sandbox, state_dir if sandbox else None)
    try:
        asyncio.run(_serve(target, settings, address, settings_now, feed=not no_change_feed))
    except AiosError as exc:
        log.error("%s", exc)
        raise SystemExit(EXIT_FAILED) from None
    except OSError as exc:
        log.error("cannot start the daemon: %s", exc)
        raise SystemExit(EXIT_FAILED) from None


def _executable() -> str:
    path = Path(sys.argv[0])
    return str(path.resolve()) if path.name == "aios" and path.exists() else "/usr/bin/aios"


def _with_intervals(s: Settings, poll: str | None, resync: str | None) -> Settings:
    from dataclasses import replace

    from reconciler.config import drift_duration

    def seconds(value: str, flag: str) -> float:
        key = "pollInterval" if flag == "--poll-interval" else "resyncInterval"
        try:
            return drift_duration(key, value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=flag) from None

    drift = s.drift
    if poll is not None:
        drift = replace(drift, poll_interval=seconds(poll, "--poll-interval"))
    if resync is not None:
        drift = replace(drift, resync_interval=seconds(resync, "--resync-interval"))
    return replace(s, drift=drift)


async def _serve(
    target: Target, settings: Settings, address: str, reload: Any, *, feed: bool = True
) -> None:
    from reconciler.daemon.api import serve_api
    from reconciler.daemon.core import Daemon
    from reconciler.daemon.lock import DaemonLock
    from reconciler.daemon.metrics import Metrics
    from reconciler.daemon.source import SpecSource

    lock = DaemonLock(target.state_dir)
    lock.acquire()
    try:
        async with open_engine(target) as engine:
            source = SpecSource(
                settings.specs_dirs, engine.domains.kinds, debounce_ms=settings.drift.debounce_ms
            )
            meter = Metrics() if settings.metrics_address else None
            client: Any = engine.client
            the_daemon = Daemon(
                engine,
                source,
                feed=client if feed else None,
                settings=settings.drift,
                metrics=meter,
                log=log,
            )
            if meter is not None:
                _count_calls(client, meter)
            server = await serve_api(the_daemon, address, settings.api_group)
            try:
                if meter is not None and settings.metrics_address:
                    host, port = settings.metrics_address
                    bound = meter.serve(host, port, lambda: _health_line(the_daemon))
                    log.info("metrics on http://%s:%d/metrics", *bound)
                _signals(the_daemon, reload, engine.domains.kinds)
                log.info(
                    "daemon for %s watching %s; API %s",
                    target.name,
                    ", ".join(source.describe()),
                    address,
                    extra={"reason": "Started"},
                )
                await the_daemon.run()
            finally:
                await server.stop(grace=0.5)
                if meter is not None:
                    meter.close()
                from reconciler.daemon.api import remove_socket

                remove_socket(address)
    finally:
        lock.release()
    log.info("daemon stopped", extra={"reason": "Stopped"})


def _health_line(the_daemon: Any) -> tuple[bool, str]:
    """/healthz, on the metrics server's thread: flags only (the store's sqlite connection
    belongs to the event loop's thread)."""
    if the_daemon.stopping:
        return False, "stopping"
    if not the_daemon.ready:
        return False, "reconciling the loaded specs for the first time"
    return True, "ready"


def _signals(the_daemon: Any, reload: Any, kinds: Any) -> None:
    loop = asyncio.get_running_loop()
    state = {"signals": 0}

    def terminate(name: str) -> None:
        state["signals"] += 1
        if state["signals"] > 1:
            log.warning("second %s: exiting now", name)
            raise SystemExit(EXIT_FAILED)
        log.info("finishing the step in flight, then exiting", extra={"reason": name})
        the_daemon.stop()

    def hangup() -> None:
        from reconciler.daemon.source import SpecSource

        try:
            settings = reload()
        except AiosError as exc:
            log.error("SIGHUP: configuration not reloaded: %s", exc)
            return
        source = SpecSource(settings.specs_dirs, kinds, debounce_ms=settings.drift.debounce_ms)
        the_daemon.reconfigure(source, settings.drift)

    loop.add_signal_handler(signal.SIGTERM, terminate, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, terminate, "SIGINT")
    loop.add_signal_handler(signal.SIGHUP, hangup)


def _count_calls(client: Any, meter: Any) -> None:
    """Count every registry call by tool and result, and time it (the step histogram)."""
    call = client.call

    async def counted(tool: str, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            result = await call(tool, *args, **kwargs)
        except AiosError as exc:
            meter.tool_call(tool, type(exc).__name__)
            raise
        meter.tool_call(tool, "ok")
        meter.step(tool, time.monotonic() - started)
        return result

    client.call = counted


__all__ = ["DriftSettings", "daemon"]
