"""`aios plan`, `aios diff`, `aios apply` and `aios rollback`.

plan: exit 0 no changes, 2 changes, 1 error; `-o json`, `--out FILE` saves
the plan, bound to the spec digest, the observed state, the tool catalogue,
the generation, the inventory and the aios version. A domain or resource
that could not be planned is shown with its error (text and JSON) and makes
the exit status 1; plan, diff and apply never say "no changes" then.
apply: asks unless --yes (and refuses on a non-interactive terminal without
it); exit 0 only when every resource is Ready, 3 for a stale saved plan, 4
when a destructive step was refused. `apply --plan FILE` runs the saved plan
only when it equals a fresh plan for the same binding (exit 3 when stale, 1
naming the first difference when it was altered), and what runs is the
fresh, verified plan. rollback GEN re-applies generation GEN as a new
generation through plan and verify, pruning what later generations added.

Through a daemon: when one answers at the target's daemon address (--api;
reconciler.cli.common.daemon_address), plan, apply and rollback send the files'
contents to it (the one writer) instead of running the engine here, print what it
answers and exit with its exit code; apply without --yes asks the daemon for the plan,
confirms, and has it run only that plan (stale: exit 3).

Without a daemon, apply and rollback hold the state directory's writer lock from
before they plan until they finish, so two of them never run at once: the second
says "waiting for the state lock held by pid N" and waits (`--lock-timeout`
bounds the wait; the default is as long as the first holds it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import click

from reconciler.cli.common import (
    EXIT_CHANGES,
    EXIT_DESTRUCTIVE,
    EXIT_FAILED,
    EXIT_STALE,
    api_option,
    domains,
    echo_err,
    finish_outcome,
    isatty,
    open_engine,
    resolve_target,
    routed_to_daemon,
    run,
    target_options,
    via_daemon,
)
from reconciler.engine.reconcile import ApplyResult, Engine, Merge, Planned, Target
from reconciler.render import failure_summary, render_plan, use_colour
from reconciler.sdk.daemon_types import ApplyOutcome
from reconciler.sdk.errors import PermanentError
from reconciler.sdk.plan import Plan

Documents = list[tuple[str, bytes]]
LOCK_TIMEOUT = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Without a daemon: how long to wait for another aios holding the state "
    "directory's writer lock (default: as long as it holds it; 0: fail at once).",
)
NO_CONFIRMATION = "refusing to apply without confirmation on a non-interactive terminal; use --yes"

FILES = click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Spec file or directory (repeatable).",
)


def _load(paths: tuple[Path, ...]):  # type: ignore[no-untyped-def]
    """The spec set of `paths`; a spec error prints its issues (file:line:col) and exits 1.

    Loading happens before any registry call, so a bad file changes nothing.
    """
    from specs.errors import SpecError
    from specs.loader import load_paths

    try:
        return load_paths(list(paths), domains().kinds)  # the kinds of the declared domains
    except SpecError as exc:
        for line in exc.issues:
            echo_err(line)
        raise SystemExit(EXIT_FAILED) from None


def _show(plan: Plan, *, verbose: bool) -> None:
    click.echo(render_plan(plan, colour=use_colour(isatty()), verbose=verbose), nl=False)


@click.command()
@FILES
@target_options
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Text (a + - ~ tree) or the plan as JSON.",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan to FILE for `aios apply --plan FILE`.",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Plan removal of resources applied earlier and "
    "absent from these files (what they created).",
)
@click.option("-v", "--verbose", is_flag=True, help="Also list items that need nothing, and why.")
@api_option
def plan(
    paths: tuple[Path, ...],
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    output: str,
    out_file: Path | None,
    prune: bool,
    verbose: bool,
    api: str | None,
) -> None:
    """Show what `aios apply` would change, without changing anything.

    Exit status: 0 no changes, 2 changes pending, 1 error.
    """
    address = routed_to_daemon(api, registry, sandbox, state_dir)
    if address is not None:
        docs = _sources(paths)
        outcome = via_daemon(address, lambda c: c.plan(docs, prune=prune))
        if out_file is not None and outcome.plan_json:
            out_file.write_text(outcome.plan_json, encoding="utf-8")
        if output == "json":
            outcome = dataclasses.replace(outcome, output=outcome.plan_json)
        finish_outcome(outcome)
    specset = _load(paths)
    target = resolve_target(registry, sandbox, state_dir)

    async def go() -> Planned:
        async with open_engine(target) as engine:
            return await engine.plan(engine.merge(specset, prune=prune))

    planned = run(go())
    if out_file is not None:
        out_file.write_text(planned.plan.to_json(), encoding="utf-8")
    if output == "json":
        click.echo(planned.plan.to_json(), nl=False)
    else:
        _show(planned.plan, verbose=verbose)
    if planned.plan.failures:
        echo_err(f"aios: the plan is incomplete: {failure_summary(planned.plan)}")
        raise SystemExit(EXIT_FAILED)
    raise SystemExit(EXIT_CHANGES if planned.plan.has_changes else 0)


@click.command()
@FILES
@target_options
@click.option("--prune", is_flag=True, help="Include removal of resources absent from the files.")
def diff(
    paths: tuple[Path, ...],
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    prune: bool,
) -> None:
    """Show the differences between the specs and the target (no steps).

    Exit status: 0 none, 2 differences, 1 error.
    """
    from reconciler.render import change_line

    specset = _load(paths)
    target = resolve_target(registry, sandbox, state_dir)

    async def go() -> Planned:
        async with open_engine(target) as engine:
            return await engine.plan(engine.merge(specset, prune=prune))

    planned = run(go())
    count = 0
    for domain in planned.plan.domains:
        for change in domain.changes:
            click.echo(f"{change.resource}: {change_line(change)}")
            count += 1
    shown = planned.plan
    for failure in shown.failures:
        echo_err(failure.line())
    # Not compared: a domain that has no plan, a resource left out of its domain's plan
    # (a verifier's refusal of a domain that was diffed is only a note here).
    missing = [
        f
        for f in shown.failures
        if (f.resource and not shown.blocked(f.domain))
        or (not f.resource and shown.domain(f.domain) is None)
    ]
    if missing:
        echo_err(f"aios: could not compare everything: {failure_summary(shown)}")
        raise SystemExit(EXIT_FAILED)
    if count == 0:
        click.echo("No differences.")
    raise SystemExit(EXIT_CHANGES if count else 0)


@click.command()
@FILES
@target_options
@click.option(
    "--yes",
    "-y",
    "assume_yes",
    is_flag=True,
    help="Do not ask for confirmation (never confirms a destructive step: only "
    "`force: true` on the item does).",
)
@click.option(
    "--prune",
    is_flag=True,
    help="Remove what resources applied earlier and absent "
    "from these files created, and stop managing them.",
)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Execute this saved plan (from `aios plan --out`); refused when stale.",
)
@click.option("-v", "--verbose", is_flag=True, help="Also list items that need nothing.")
@api_option
@LOCK_TIMEOUT
def apply(
    paths: tuple[Path, ...],
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    assume_yes: bool,
    prune: bool,
    plan_file: Path | None,
    verbose: bool,
    api: str | None,
    lock_timeout: float | None,
) -> None:
    """Make the target match the specs: plan, verify, confirm, execute, verify again.

    Exit status: 0 every resource Ready, 1 failure, 3 stale saved plan,
    4 a destructive step was refused.
    """
    address = routed_to_daemon(api, registry, sandbox, state_dir)
    if address is not None:
        saved_json = plan_file.read_text(encoding="utf-8") if plan_file else ""
        if plan_file is not None:
            _read_plan(plan_file)  # refuse a file that is no plan before sending it
        finish_outcome(
            _apply_via_daemon(
                address, _sources(paths), prune=prune, assume_yes=assume_yes, saved=saved_json
            )
        )
    specset = _load(paths)
    saved = _read_plan(plan_file) if plan_file else None
    target = resolve_target(registry, sandbox, state_dir, bring_up=True)

    async def go() -> ApplyResult | None:
        async with open_engine(target) as engine:
            with _holding(engine, lock_timeout):  # merged and planned under the lock
                return await _apply(
                    engine,
                    engine.merge(specset, prune=prune),
                    saved=saved,
                    assume_yes=assume_yes,
                    verbose=verbose,
                )

    _finish(run(go()))


@click.command()
@click.argument("generation", type=int)
@target_options
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@api_option
@LOCK_TIMEOUT
def rollback(
    generation: int,
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    assume_yes: bool,
    api: str | None,
    lock_timeout: float | None,
) -> None:
    """Re-apply generation GENERATION as a new generation (through plan and verify).

    The target's resource set becomes exactly that generation's; what later
    generations added is pruned.
    """
    address = routed_to_daemon(api, registry, sandbox, state_dir)
    if address is not None:
        docs = _generation_documents(resolve_target(registry, sandbox, state_dir,
                                                    need_registry=False), generation)  # fmt: skip
        finish_outcome(
            _apply_via_daemon(address, docs, prune=False, assume_yes=assume_yes, replace=True)
        )
    target = resolve_target(registry, sandbox, state_dir, bring_up=True)

    async def go() -> ApplyResult | None:
        from reconciler.engine.reconcile import load_generation
        from specs.specset import SpecSet

        async with open_engine(target) as engine, _holding_async(engine, lock_timeout):
            stored = engine.store.generation(target.name, generation)
            if stored is None:
                raise PermanentError(
                    f"{target.name} has no generation {generation}; see aios history"
                )
            specset = SpecSet.from_resources(tuple(load_generation(stored, engine.domains.kinds)))
            merge = engine.merge(specset, replace=True)
            return await _apply(engine, merge, saved=None, assume_yes=assume_yes, verbose=False)

    _finish(run(go()))


def _holding(engine: Engine, lock_timeout: float | None) -> contextlib.AbstractContextManager[None]:
    """The state directory's writer lock for the whole command (merge, plan, confirm,
    apply): a second aios waits for the first (saying for whom), never plans against a
    machine the first is changing. The engine's apply re-enters it."""
    return engine.store.writer(wait=lock_timeout, on_wait=lambda m: echo_err(f"aios: {m}"))


@contextlib.asynccontextmanager
async def _holding_async(engine: Engine, lock_timeout: float | None) -> AsyncIterator[None]:
    with _holding(engine, lock_timeout):
        yield


def _sources(paths: tuple[Path, ...]) -> Documents:
    """The spec files' (label, bytes) for a daemon; an unreadable one exits 1 (file named)."""
    from specs.errors import SpecError
    from specs.loader import read_sources

    try:
        return read_sources(list(paths))
    except SpecError as exc:
        for line in exc.issues:
            echo_err(line)
        raise SystemExit(EXIT_FAILED) from None


def _generation_documents(target: Target, generation: int) -> Documents:
    """A stored generation's documents, as JSON texts (YAML) the daemon loads again."""
    import json

    from reconciler.engine.store import Store

    store = Store(target.state_dir)
    try:
        stored = store.generation(target.name, generation)
    finally:
        store.close()
    if stored is None:
        echo_err(f"aios: {target.name} has no generation {generation}; see aios history")
        raise SystemExit(EXIT_FAILED)
    return [
        (
            f"generation {generation}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}",
            json.dumps(doc, sort_keys=True).encode(),
        )
        for doc in stored.documents
    ]


def _apply_via_daemon(
    address: str,
    docs: Documents,
    *,
    prune: bool,
    assume_yes: bool,
    saved: str = "",
    replace: bool = False,
) -> ApplyOutcome:
    """Apply through the daemon; without --yes (or a saved plan): its plan, shown and
    confirmed here, then run only if the daemon's fresh plan still equals it."""
    if assume_yes or saved:
        return via_daemon(
            address,
            lambda c: c.apply(docs, prune=prune, assume_yes=True, plan_json=saved,
                              replace=replace),
        )  # fmt: skip
    if not sys.stdin.isatty():
        echo_err(f"aios: {NO_CONFIRMATION}")
        raise SystemExit(EXIT_FAILED)
    planned = via_daemon(address, lambda c: c.plan(docs, prune=prune, replace=replace))
    click.echo(planned.output, nl=False)
    for line in planned.errors:
        echo_err(line)
    if planned.exit_code not in (0, EXIT_CHANGES):
        raise SystemExit(planned.exit_code)
    pending = planned.exit_code == EXIT_CHANGES or (
        bool(planned.plan_json) and Plan.from_json(planned.plan_json).has_changes
    )
    if pending and not click.confirm("Apply these changes?", default=False):
        echo_err("aios: nothing applied")
        raise SystemExit(EXIT_FAILED)
    return via_daemon(
        address,
        lambda c: c.apply(docs, prune=prune, assume_yes=True, plan_json=planned.plan_json,
                          replace=replace),
    )  # fmt: skip


async def _apply(
    engine: Engine, merge: Merge, *, saved: Plan | None, assume_yes: bool, verbose: bool
) -> ApplyResult | None:
    planned = await engine.plan(merge)
    if saved is not None:
        planned = engine.check_saved(saved, planned)  # stale or altered: refused here
    shown = planned.plan  # a saved plan runs only when it equals this one
    _show(shown, verbose=verbose)
    pending = shown.has_changes or bool(merge.pruned)
    if pending and not assume_yes and saved is None:
        if not sys.stdin.isatty():
            raise PermanentError(NO_CONFIRMATION)
        if not click.confirm("Apply these changes?", default=False):
            echo_err("aios: nothing applied")
            return None
    return await engine.apply(
        planned, assume_yes=assume_yes or saved is not None, saved=saved, progress=_progress
    )


_last_progress: dict[str, float] = {}


def _progress(tool: str, done: int, total: int, message: str) -> None:
    import time

    now = time.monotonic()
    if now - _last_progress.get(tool, 0.0) < 0.5 and done != total:
        return
    _last_progress[tool] = now
    share = f" {100 * done // total}%" if total else ""
    echo_err(f"  {tool}:{share} {message}".rstrip())


def _read_plan(path: Path) -> Plan:
    try:
        return Plan.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{path}: not a saved plan: {exc}") from None


def _finish(result: ApplyResult | None) -> None:
    if result is None:
        raise SystemExit(EXIT_FAILED)
    for domain, summary in sorted(result.summaries.items()):
        click.echo(f"{domain}: {summary}")
    not_ready = [r for r in result.reports if r.outcome != "ready"]
    for report in not_ready:
        echo_err(f"{report.resource}: {report.outcome} ({report.reason}): {report.message}")
    click.echo(
        f"generation {result.generation}: "
        + ("all resources Ready" if not not_ready else f"{len(not_ready)} not Ready")
    )
    if result.stale:
        raise SystemExit(EXIT_STALE)
    if result.destructive_refused:
        raise SystemExit(EXIT_DESTRUCTIVE)
    raise SystemExit(0 if result.all_ready else EXIT_FAILED)
