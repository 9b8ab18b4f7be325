"""Rules planner of the packages domain: at most two steps, repositories first.

1. `pkg.repos` with every repository that changes: declared ones as the spec
   writes them (state: present), removals as they are configured (state:
   absent); the tool refreshes the index (its default), so the packages of
   a repository added here are installable in step 2.
2. `pkg.ensure`: ONE transaction for every package change — `install`
   (`{name, version}` with the version diff resolved for a constrained or
   exact package, just `{name}` for an unversioned one: apt's candidate),
   `remove`, `hold` (packages declared `hold: true` that are added or not
   held yet) and `unhold` (declared `hold: false` and held). `purge` and
   `update_index` are left at their defaults.
Pure and deterministic: lists sorted by name (the engine stamps each step's
risk from the live catalogue).
Used by controllers.packages.controller.
"""

from __future__ import annotations

from collections.abc import Sequence

from controllers.packages.desired import Wanted
from controllers.packages.state import PackagesState, Repo
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.plan import Change, Step


def plan(diff: Diff, desired: Desired, state: PackagesState) -> tuple[Step, ...]:
    wanted = Wanted.of(desired)
    repo_changes = [c for c in diff.changes if c.object.startswith("repository:")]
    package_changes = [c for c in diff.changes if c.object.startswith("package:")]
    steps = []
    if repo_changes:
        steps.append(repos_step(repo_changes, wanted, state))
    if package_changes:
        steps.append(ensure_step(package_changes, wanted))
    return tuple(steps)


def _removal_entry(repo: Repo) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": repo.name,
        "url": repo.url,
        "suite": repo.suite,
        "components": list(repo.components),
        "trusted": repo.trusted,
        "state": "absent",
    }
    if repo.signed_by is not None:
        entry["signed_by"] = repo.signed_by
    return entry


def repos_step(changes: Sequence[Change], wanted: Wanted, state: PackagesState) -> Step:
    entries: dict[str, dict[str, object]] = {}
    words: list[str] = []
    for change in changes:
        name = change.object.split(":", 1)[1]
        if name in entries:
            continue
        current = state.repository(name)
        if change.op == "remove" and current is not None:
            entries[name] = _removal_entry(current)
            words.append(f"- {name}")
            continue
        item = wanted.repo(name)
        assert item is not None, f"no declared repository {name} for {change.id}"
        entries[name] = item.tool_entry()
        words.append(f"{'+' if change.op == 'add' else '~'} {name}")
    return Step(
        tool="pkg.repos",
        input={"repositories": [entries[n] for n in sorted(entries)]},
        reason="repositories first, so the package index knows them: " + ", ".join(sorted(words)),
        satisfies=tuple(c.id for c in changes),
    )


def ensure_step(changes: Sequence[Change], wanted: Wanted) -> Step:
    install: dict[str, dict[str, str]] = {}
    remove: set[str] = set()
    hold: set[str] = set()
    unhold: set[str] = set()
    for change in changes:
        name = change.object.split(":", 1)[1]
        if change.op == "remove":
            remove.add(name)
        elif change.op == "add":
            install[name] = {"name": name}
            item = wanted.package(name)
            if item is not None and item.version is not None:
                install[name]["version"] = str(change.new["version"])
            if change.new.get("hold"):
                hold.add(name)
        elif change.field == "version":
            install[name] = {"name": name, "version": str(change.new)}
        elif change.field == "hold":
            (hold if change.new else unhold).add(name)
    args: dict[str, object] = {}
    if install:
        args["install"] = [install[n] for n in sorted(install)]
    for key, names in (("remove", remove), ("hold", hold), ("unhold", unhold)):
        if names:
            args[key] = sorted(names)
    return Step(
        tool="pkg.ensure",
        input=args,
        reason="one package transaction: " + _summary(install, remove, hold, unhold),
        satisfies=tuple(c.id for c in changes),
        destructive=any(c.destructive for c in changes),
    )


def _summary(
    install: dict[str, dict[str, str]], remove: set[str], hold: set[str], unhold: set[str]
) -> str:
    parts = []
    if install:
        pins = (f"{n}={e['version']}" if "version" in e else n for n, e in sorted(install.items()))
        parts.append("install " + " ".join(pins))
    for verb, names in (("remove", remove), ("hold", hold), ("unhold", unhold)):
        if names:
            parts.append(f"{verb} {' '.join(sorted(names))}")
    return "; ".join(parts)
