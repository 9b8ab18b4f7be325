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
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.common import (
    EXIT_CHANGES,
    EXIT_DESTRUCTIVE,
    EXIT_FAILED,
    EXIT_STALE,
    domains,
    echo_err,
    isatty,
    open_engine,
    resolve_target,
    run,
    target_options,
)
from reconciler.engine.reconcile import ApplyResult, Engine, Merge, Planned
from reconciler.render import failure_summary, render_plan, use_colour
from reconciler.sdk.errors import PermanentError
from reconciler.sdk.plan import Plan

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
def plan(
    paths: tuple[Path, ...],
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    output: str,
    out_file: Path | None,
    prune: bool,
    verbose: bool,
) -> None:
    """Show what `aios apply` would change, without changing anything.

    Exit status: 0 no changes, 2 changes pending, 1 error.
    """
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
def apply(
    paths: tuple[Path, ...],
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    assume_yes: bool,
    prune: bool,
    plan_file: Path | None,
    verbose: bool,
) -> None:
    """Make the target match the specs: plan, verify, confirm, execute, verify again.

    Exit status: 0 every resource Ready, 1 failure, 3 stale saved plan,
    4 a destructive step was refused.
    """
    specset = _load(paths)
    saved = _read_plan(plan_file) if plan_file else None
    target = resolve_target(registry, sandbox, state_dir, bring_up=True)

    async def go() -> ApplyResult | None:
        async with open_engine(target) as engine:
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
def rollback(
    generation: int,
    registry: str | None,
    sandbox: str | None,
    state_dir: Path | None,
    assume_yes: bool,
) -> None:
    """Re-apply generation GENERATION as a new generation (through plan and verify).

    The target's resource set becomes exactly that generation's; what later
    generations added is pruned.
    """
    target = resolve_target(registry, sandbox, state_dir, bring_up=True)

    async def go() -> ApplyResult | None:
        from reconciler.engine.reconcile import load_generation
        from specs.specset import SpecSet

        async with open_engine(target) as engine:
            stored = engine.store.generation(target.name, generation)
            if stored is None:
                raise PermanentError(
                    f"{target.name} has no generation {generation}; see aios history"
                )
            specset = SpecSet.from_resources(tuple(load_generation(stored, engine.domains.kinds)))
            merge = engine.merge(specset, replace=True)
            return await _apply(engine, merge, saved=None, assume_yes=assume_yes, verbose=False)

    _finish(run(go()))


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
            raise PermanentError(
                "refusing to apply without confirmation on a non-interactive terminal; use --yes"
            )
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
