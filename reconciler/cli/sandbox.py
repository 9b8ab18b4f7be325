"""`aios sandbox up NAME | down NAME | list`: registries in their own namespaces.

A thin shell over sandbox.lifecycle (which documents what a sandbox is).
`up` is idempotent (a running, healthy sandbox is reported and left alone; a
stale one, whose registry died, is restarted with all its content kept);
`down` is idempotent too: an unknown sandbox is a no-op with a note (exit 0),
and it is the only command that deletes a sandbox's content.
Errors exit 1 with the reason (and the registry's log tail when it failed to
start). Registered in reconciler.cli.main.COMMANDS.
"""

from __future__ import annotations

import asyncio

import click


@click.group()
def sandbox() -> None:
    """Throw-away targets: a registry in its own netns and mount namespace over a scratch root.

    Sandboxes live under $AIOS_SANDBOX_DIR (default /var/lib/aios/sandboxes).
    """


@sandbox.command()
@click.argument("name")
@click.option(
    "--profile",
    type=click.Choice(["full", "aios"]),
    default=None,
    help="Registry profile [default: full; a stale sandbox keeps its own].",
)
def up(name: str, profile: str | None) -> None:
    """Create sandbox NAME and start its registry (unix socket, 0600).

    A stale sandbox (its registry died) is restarted and keeps its root, its
    state and its namespace's content; only `aios sandbox down` deletes them.
    """
    from sandbox.lifecycle import SandboxError, start

    try:
        box, how = asyncio.run(start(name, profile=profile))
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    state = {"restarted": "restarted (state kept)", "running": "already running"}.get(how, how)
    click.echo(f"sandbox {box.name} {state}: pid {box.pid}, netns {box.netns}")
    click.echo(f"  registry  {box.address}")
    click.echo(f"  runtime   {box.runtime_address}")
    click.echo(f"  root      {box.root}")
    click.echo(f"  state     {box.state}")
    click.echo(f"  inspect   nsenter -t {box.pid} -n -m -- ip addr")


@sandbox.command()
@click.argument("name")
def down(name: str) -> None:
    """Stop sandbox NAME and remove everything it created."""
    from sandbox.lifecycle import SandboxError
    from sandbox.lifecycle import down as stop

    try:
        notes = asyncio.run(stop(name))
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from exc
    for note in notes:
        click.echo(note)


@sandbox.command(name="list")
def list_() -> None:
    """Sandboxes: name, registry pid, running or stale, socket."""
    from sandbox.lifecycle import list_sandboxes

    boxes = list_sandboxes()
    if not boxes:
        click.echo("no sandboxes")
        return
    click.echo(f"{'NAME':20} {'PID':>8} {'STATE':8} SOCKET")
    for box, running in boxes:
        state = "running" if running else "stale"
        click.echo(f"{box.name:20} {box.pid or '-':>8} {state:8} {box.socket}")
