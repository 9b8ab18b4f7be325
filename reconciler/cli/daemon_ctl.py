"""The commands that only a running daemon can answer: plans, approve, reject, suspend,
resume, events, reconcile.

Each finds the target's daemon (`--api`, else AIOS_DAEMON_API, else the sandbox's
`daemon.sock`, else the configured socket: reconciler.cli.common.daemon_address) and
exits 1 with "no daemon answers at …" when none does. Exit codes: approve and
reconcile exit with the daemon's (0 done, 1 failure, 3 a stale plan refused, 4 a
destructive step refused); an error the daemon raised maps as every command's does
(reconciler.cli.common.run).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from reconciler.cli.common import (
    api_option,
    daemon_address,
    finish_outcome,
    require_daemon,
    via_daemon,
)
from reconciler.sdk.daemon_types import Event

if TYPE_CHECKING:
    from reconciler.daemon_client import DaemonClient

F = TypeVar("F", bound=Callable[..., Any])


def daemon_options(func: F) -> F:
    """--api / --sandbox / --state-dir: which daemon."""
    func = click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="The sandbox's state directory, where its daemon's socket is (daemon.sock).",
    )(func)
    func = click.option(
        "--sandbox", metavar="NAME", help="The daemon of the sandbox NAME (aios daemon --sandbox)."
    )(func)
    return api_option(func)


def _address(api: str | None, sandbox: str | None, state_dir: Path | None) -> str:
    address = daemon_address(api, sandbox, state_dir)
    require_daemon(address)
    return address


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@click.command()
@daemon_options
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def plans(api: str | None, sandbox: str | None, state_dir: Path | None, output: str) -> None:
    """List the plans waiting for approval (resources in `mode: propose`)."""
    pending = via_daemon(_address(api, sandbox, state_dir), lambda c: c.plans())
    if output == "json":
        rows = [
            {
                "id": p.id,
                "domain": p.domain,
                "resources": list(p.resources),
                "created": p.created,
                "generation": p.generation,
                "summary": p.summary,
                "plan": json.loads(p.plan_json) if p.plan_json else None,
            }
            for p in pending
        ]
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    if not pending:
        click.echo("no plans are pending")
    for p in pending:
        click.echo(
            f"{p.id}  {p.domain}  generation {p.generation}  {_when(p.created)}  "
            + ", ".join(p.resources)
        )
        for line in p.summary.splitlines():
            click.echo(f"    {line}")


@click.command()
@click.argument("plan_id", metavar="ID")
@daemon_options
def approve(plan_id: str, api: str | None, sandbox: str | None, state_dir: Path | None) -> None:
    """Run the pending plan ID (refused when stale: exit 3)."""
    finish_outcome(via_daemon(_address(api, sandbox, state_dir), lambda c: c.approve(plan_id)))


@click.command()
@click.argument("plan_id", metavar="ID")
@daemon_options
def reject(plan_id: str, api: str | None, sandbox: str | None, state_dir: Path | None) -> None:
    """Drop the pending plan ID."""
    click.echo(via_daemon(_address(api, sandbox, state_dir), lambda c: c.reject(plan_id)))


@click.command()
@click.argument("what", metavar="KIND/NAME|DOMAIN")
@daemon_options
def suspend(what: str, api: str | None, sandbox: str | None, state_dir: Path | None) -> None:
    """Stop reconciling a resource or a domain (events are still recorded)."""
    click.echo(via_daemon(_address(api, sandbox, state_dir), lambda c: c.suspend(what)))


@click.command()
@click.argument("what", metavar="KIND/NAME|DOMAIN")
@daemon_options
def resume(what: str, api: str | None, sandbox: str | None, state_dir: Path | None) -> None:
    """Reconcile a suspended resource or domain again."""
    click.echo(via_daemon(_address(api, sandbox, state_dir), lambda c: c.resume(what)))


@click.command()
@click.argument("what", metavar="[KIND/NAME|DOMAIN]", required=False, default="")
@daemon_options
def reconcile(what: str, api: str | None, sandbox: str | None, state_dir: Path | None) -> None:
    """Reconcile now: everything, one domain or one resource."""
    finish_outcome(via_daemon(_address(api, sandbox, state_dir), lambda c: c.reconcile(what)))


def _event_line(e: Event) -> str:
    where = f" {e.resource}" if e.resource else ""
    return f"{_when(e.time)} {e.seq:>6} {e.type:7} {e.reason}{where}: {e.message}"


def _event_json(e: Event) -> str:
    return json.dumps(
        {
            "seq": e.seq,
            "time": e.time,
            "type": e.type,
            "reason": e.reason,
            "resource": e.resource,
            "message": e.message,
            "generation": e.generation,
        },
        sort_keys=True,
    )


@click.command()
@daemon_options
@click.option("-f", "--follow", is_flag=True, help="Keep printing events as they happen.")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    help="One line per event, or one JSON object per line.",
)
@click.option("--since", type=int, default=0, metavar="N", help="Only events after number N.")
def events(
    api: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    follow: bool,
    output: str,
    since: int,
) -> None:
    """The daemon's recent events (what it did and saw); -f follows them."""
    address = _address(api, sandbox, state_dir)
    show = _event_json if output == "json" else _event_line

    async def go(client: DaemonClient) -> None:
        async for event in client.watch(since, follow=follow):
            click.echo(show(event))

    try:
        via_daemon(address, go)
    except KeyboardInterrupt:  # -f ends with Ctrl-C
        raise SystemExit(0) from None


__all__ = ["approve", "events", "plans", "reconcile", "reject", "resume", "suspend"]
