"""`aios registry serve | audit verify | tools`: run and inspect the tool registry.

serve runs registry.server.grpc until SIGTERM/SIGINT, by default on the 0600 unix
socket /run/aios/tools.sock (TCP only with `--listen HOST:PORT`, and then its
log on stderr warns what that exposes; `--runtime` names the AI runtime the
model.load/unload/loaded tools forward to); `audit verify` checks the keyed audit
chain of a state dir (exit 0 `ok: N rows, head …`, exit 1 with a message
naming the first bad row, or what is wrong with the head, the key or the
database — never a traceback); `tools` lists a running registry's catalogue
through the client. Heavy modules (grpc, the registry) are
imported inside the commands. Registered in reconciler.cli.main.COMMANDS.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

STATE_DIR = "/var/lib/aios/registry"
LISTEN = "unix:///run/aios/tools.sock"  # registry.server.grpc.DEFAULT_LISTEN (not imported: grpc)
RUNTIME = "localhost:50055"  # registry.drivers.model.runtime.DEFAULT_ADDRESS (aiOS's runtime)


@click.group()
def registry() -> None:
    """Run and inspect the aios tool registry (aios.tools.ToolRegistry)."""


@registry.command()
@click.option(
    "--listen",
    default=LISTEN,
    show_default=True,
    help="unix:///ABS/PATH (created 0600), or HOST:PORT for TCP (no authentication: any "
    "local user, or anyone who reaches the port, can claim any agent_id). "
    "aiOS itself binds 0.0.0.0:50052.",
)
@click.option("--netns", default=None, help="Network namespace the net/firewall tools act in.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/"),
    show_default=True,
    help="Root the package, storage, file and model tools act under.",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(STATE_DIR),
    show_default=True,
    help="Audit log, backups, registrations, plugins.",
)
@click.option("--profile", type=click.Choice(["full", "aios"]), default="full", show_default=True)
@click.option(
    "--agents",
    "agents_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="YAML/JSON agent table: {agents: {ID: [capability, ...]}, include_defaults: true}.",
)
@click.option(
    "--plugin-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="aiOS-style plugins (<name>.py + <name>.meta.json). Default: STATE_DIR/plugins.",
)
@click.option(
    "--runtime",
    envvar="AIOS_RUNTIME_ADDR",
    default=RUNTIME,
    show_default=True,
    help="The AI runtime (aios.runtime.AIRuntime) model.load, model.unload and model.loaded "
    "forward to: unix:///ABS/PATH or HOST:PORT (default $AIOS_RUNTIME_ADDR, else aiOS's).",
)
@click.option("--max-backups", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--max-backup-mib", type=click.IntRange(min=1), default=1024, show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def serve(
    listen: str,
    netns: str | None,
    root: Path,
    state_dir: Path,
    profile: str,
    agents_file: Path | None,
    plugin_dir: Path | None,
    runtime: str,
    max_backups: int,
    max_backup_mib: int,
    verbose: bool,
) -> None:
    """Serve the tool registry until SIGTERM or SIGINT.

    agent_id in each call is self-asserted: capability checks mean something
    only behind socket permissions (the default unix socket is created 0600).
    """
    from registry.server.audit import AuditError
    from registry.server.grpc import ServeOptions
    from registry.server.grpc import serve as run

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    options = ServeOptions(
        listen=listen,
        netns=netns,
        root=root.resolve(),
        state_dir=state_dir.resolve(),
        profile=profile,
        agents_file=agents_file,
        plugin_dir=plugin_dir,
        max_backups=max_backups,
        max_backup_bytes=max_backup_mib << 20,
        runtime=runtime,
    )
    try:
        asyncio.run(run(options))
    except (OSError, ValueError, AuditError) as exc:
        raise click.ClickException(str(exc)) from exc


@registry.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(STATE_DIR),
    show_default=True,
)
def verify(state_dir: Path) -> None:
    """Check every row's MAC, the chain, and the head kept outside the table.

    Needs read access to the registry's audit.key (run it as the registry's user
    or root). Exit 1 with the first problem: a bad row, a forged or garbage head,
    a missing or wrong key, an unreadable database, or an unkeyed log.
    """
    from registry.server.audit import verify as check

    verdict = check(state_dir)
    if verdict.ok:
        click.echo(f"ok: {verdict.rows} rows, head {verdict.head}")
        if verdict.note:
            click.echo(f"note: {verdict.note}")
        return
    click.echo(f"audit log {state_dir}: {verdict.problem}", err=True)
    raise SystemExit(1)


@registry.command()
@click.option("--addr", default=None, help="Registry address (default $AIOS_TOOLS_ADDR).")
@click.option("--namespace", default="", help="Only this namespace.")
def tools(addr: str | None, namespace: str) -> None:
    """List a running registry's tools: name, risk, flags, timeout, capabilities."""
    from reconciler.client import RegistryClient
    from reconciler.sdk.errors import AiosError

    async def fetch() -> None:
        async with RegistryClient(addr) as client:
            listed = await client.list_tools(namespace)
        for name, spec in listed.items():
            flags = ("I" if spec.idempotent else "-") + ("R" if spec.reversible else "-")
            caps = ",".join(spec.capabilities)
            click.echo(f"{name:28} {spec.risk:8} {flags} {spec.timeout_ms:>7}ms  {caps}")

    try:
        asyncio.run(fetch())
    except AiosError as exc:
        raise click.ClickException(exc.message) from exc
