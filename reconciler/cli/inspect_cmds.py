"""`aios status`, `aios get`, `aios export` and `aios history`.

status reads the store only (no registry call), or asks the daemon when one
answers at the target's daemon address, and exits non-zero when a
resource is not Ready (a resource an apply was changing when it was killed
shows as Interrupted, never Ready); get observes one domain and prints the actual state;
export observes and prints the machine as spec documents that validate and
re-plan to nothing; history lists the target's generations.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import click

from reconciler.cli.common import (
    EXIT_FAILED,
    api_option,
    domains,
    open_engine,
    resolve_target,
    routed_to_daemon,
    run,
    target_options,
    via_daemon,
)
from reconciler.engine.reader import ReadOnlyReader
from reconciler.engine.reconcile import load_generation
from reconciler.engine.status import interrupted, run_of, writer_active
from reconciler.engine.store import Store
from reconciler.sdk.controller import Desired

KINDS = click.Choice(sorted(domains().kind_domain))  # the declared domains' kinds
OUTPUT = click.option(
    "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", help="Output format."
)


@click.command()
@target_options
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    help="A table, or JSON with every condition and the history.",
)
@api_option
def status(
    registry: str | None, sandbox: str | None, state_dir: Path | None, output: str, api: str | None
) -> None:
    """Status of every managed resource: conditions, observed generation, history.

    Asks the daemon when one answers (then also its own conditions: specs, feed,
    suspended, Fighting). Exit status 1 when any resource is not Ready.
    """
    target = resolve_target(registry, sandbox, state_dir, need_registry=False)
    address = routed_to_daemon(api, registry, sandbox, state_dir)
    if address is not None:
        _daemon_status(target.name, address, output)
    store = Store(target.state_dir)
    try:
        statuses = store.statuses(target.name)
        current = store.current_generation(target.name)
        runs = {run_of(s) for s in statuses} - {""}
        journal = {run: store.journal_rows(run) for run in sorted(runs)}
    finally:
        store.close()
    if runs:
        statuses = interrupted(statuses, journal, writer_active=writer_active(target.state_dir))
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "target": target.name,
                    "generation": current.generation if current else 0,
                    "resources": [s.as_json() for s in statuses],
                },
                indent=2,
                sort_keys=True,
            )
        )
    else:
        click.echo(f"target {target.name}, generation {current.generation if current else 0}")
        if not statuses:
            click.echo("no resources are managed yet")
        for s in statuses:
            ready = s.condition("Ready") or {}
            mark = "Ready" if s.ready else "NotReady"
            reason = ready.get("reason", "")
            message = ready.get("message", "")
            click.echo(
                f"{s.resource:32} {mark:9} gen {s.observed_generation:<4} {reason}"
                + (f": {message}" if message and not s.ready else "")
            )
    if any(not s.ready for s in statuses):
        raise SystemExit(EXIT_FAILED)


def _daemon_status(target: str, address: str, output: str) -> None:
    view = via_daemon(address, lambda c: c.status())
    resources = [dict(r) for r in view.resources]
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "target": target,
                    "daemon": address,
                    "generation": view.generation,
                    "resources": resources,
                    "conditions": list(view.conditions),
                    "suspended": list(view.suspended),
                    "sources": list(view.sources),
                },
                indent=2,
                sort_keys=True,
            )
        )
    else:
        click.echo(f"target {target}, generation {view.generation} (daemon at {address})")
        for c in view.conditions:
            message = f": {c.get('message')}" if c.get("message") else ""
            click.echo(f"daemon {c.get('type', '')}={c.get('status', '')} {c.get('reason', '')}"
                       f"{message}")  # fmt: skip
        if view.suspended:
            click.echo("suspended: " + ", ".join(view.suspended))
        if not resources:
            click.echo("no resources are managed yet")
        for r in resources:
            ready: dict[str, Any] = next(
                (c for c in r.get("conditions", ()) if c.get("type") == "Ready"), {}
            )
            mark = "Ready" if r.get("ready") else "NotReady"
            message = ready.get("message", "")
            click.echo(
                f"{r.get('resource', ''):32} {mark:9} gen {r.get('observedGeneration', 0):<4} "
                f"{ready.get('reason', '')}" + (f": {message}" if message and not r.get("ready")
                                                 else "")
            )  # fmt: skip
    raise SystemExit(EXIT_FAILED if any(not r.get("ready") for r in resources) else 0)


@click.command()
@click.argument("kind", type=KINDS)
@click.argument("name", required=False)
@target_options
@OUTPUT
def get(
    kind: str,
    name: str | None,
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    output: str,
) -> None:
    """Print the actual state of KIND's domain (or of what resource NAME declares)."""
    target = resolve_target(registry, sandbox, state_dir)
    domain = domains().kind_domain[kind]

    async def go() -> Any:
        async with open_engine(target, (domain,)) as engine:
            controller = engine.controllers[domain]
            current = engine.store.current_generation(target.name)
            stored = load_generation(current, engine.domains.kinds)
            resources = [r for r in stored if r.kind == kind]
            if name is not None:
                resources = [r for r in resources if r.metadata.name == name]
                if not resources:
                    raise click.ClickException(f"{kind}/{name} is not managed on {target.name}")
            catalogue = await engine.catalogue()
            reader = ReadOnlyReader(engine.client, catalogue, reason="aios get", retry=engine.retry)
            state = await controller.observe(reader, Desired(domain, tuple(resources)))
            if name is not None:
                return controller.scope(state, resources)
            return state.model_dump(mode="json")

    _print(run(go()), output)


@click.command()
@click.argument("kind", type=KINDS, required=False)
@target_options
@OUTPUT
def export(
    kind: str | None, registry: str | None, sandbox: str | None, state_dir: Path | None, output: str
) -> None:
    """Print the target's current state as spec documents (all kinds, or KIND)."""
    target = resolve_target(registry, sandbox, state_dir)
    only = (domains().kind_domain[kind],) if kind else None

    async def go() -> list[dict[str, Any]]:
        async with open_engine(target, only) as engine:
            catalogue = await engine.catalogue()
            reader = ReadOnlyReader(
                engine.client, catalogue, reason="aios export", retry=engine.retry
            )
            documents: list[dict[str, Any]] = []
            for domain, controller in engine.controllers.items():
                state = await controller.observe(reader, Desired(domain, ()))
                documents.extend(controller.export(state))
            return documents

    documents = run(go())
    if output == "json":
        click.echo(json.dumps(documents, indent=2, sort_keys=True))
        return
    click.echo(_yaml_documents(documents), nl=False)


@click.command()
@target_options
def history(registry: str | None, sandbox: str | None, state_dir: Path | None) -> None:
    """List the target's generations: number, digest, time, resources."""
    target = resolve_target(registry, sandbox, state_dir, need_registry=False)
    store = Store(target.state_dir)
    try:
        generations = store.generations(target.name)
    finally:
        store.close()
    if not generations:
        click.echo(f"{target.name}: no generations yet")
        return
    for gen in generations:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(gen.created))
        keys = ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in gen.documents)
        note = f"  ({gen.note})" if gen.note else ""
        click.echo(f"{gen.generation:>4}  {when}  {gen.digest[:12]}  {keys}{note}")


def _print(value: Any, output: str) -> None:
    if output == "json":
        click.echo(json.dumps(value, indent=2, sort_keys=True))
    else:
        click.echo(_yaml_documents([value]), nl=False)


def _yaml_documents(documents: list[Any]) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump_all(documents, out)
    return out.getvalue()
