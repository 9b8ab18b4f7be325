"""Observe the packages domain: ONE `pkg.state` read, parsed and normalised.

What is asked for (`request`):
- `names`: every package a resource declares (present or absent), owns
  (inventory) or a pruned resource created; `available` is kept for the
  declared-present ones (the versions constraints resolve against);
- `all_packages` when one of those may be removed, so reverse dependencies
  are known (a removal others depend on is destructive, and apt removes the
  dependents too);
- `repositories`: the declared repositories, so that on a first converge
  that also adds the repository, `available` already comes from an index
  that includes it (pkg.state builds a temporary one; nothing changes).
  Repositories removed because they are owned-but-undeclared, pruned or in
  a prune scope are not in that list (pkg.state needs a URL for each): a
  version offered only by such a repository still looks available.

The state keeps only what the resources are about — the named packages and,
transitively, the installed packages that depend on the ones that may be
removed — so unrelated package churn does not make a saved plan stale. With
no resources at all (`aios export`), it keeps the whole database.
Used by controllers.packages.controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controllers.packages.desired import Wanted
from controllers.packages.state import Backend, PackagesState, Pkg, Repo
from controllers.packages.versions import newest_first
from reconciler.sdk.controller import Desired, StateReader
from reconciler.sdk.errors import ToolFailed

TOOL = "pkg.state"


@dataclass(frozen=True)
class Scope:
    everything: bool  # keep the whole database (no resources: export)
    names: frozenset[str]  # packages the resources are about
    removable: frozenset[str]  # of those, the ones a plan may remove
    present: frozenset[str]  # declared present: keep their `available`


def scope_of(desired: Desired, wanted: Wanted) -> Scope:
    objects = [*(o for objs in desired.owned.values() for o in objs)]
    objects += [o for objs in desired.pruned.values() for o in objs]
    inventory = {o.split(":", 1)[1] for o in objects if o.startswith("package:")}
    declared = {p.name for p in wanted.packages}
    present = frozenset(wanted.present_names())
    names = frozenset(declared | inventory)
    return Scope(
        everything=not desired.resources and not desired.pruned and not desired.owned,
        names=names,
        removable=names - present,
        present=present,
    )


def request(wanted: Wanted, scope: Scope) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if scope.names:
        args["names"] = sorted(scope.names)
    if scope.removable:
        args["all_packages"] = True
    if wanted.repos:
        args["repositories"] = [r.tool_entry() for r in wanted.repos]
    return args


async def observe(reader: StateReader, desired: Desired) -> PackagesState:
    wanted = Wanted.of(desired)
    scope = scope_of(desired, wanted)
    output = await reader.read(TOOL, request(wanted, scope))
    return parse(output, scope)


def parse(output: Mapping[str, Any], scope: Scope) -> PackagesState:
    try:
        backend: Backend = output["backend"]
        installed = {
            p["name"]: Pkg(
                name=p["name"],
                version=p["version"],
                hold=bool(p["hold"]),
                auto=bool(p["auto"]),
                depends=tuple(sorted(set(p["depends"]))),
            )
            for p in output["packages"]
            if p["status"] == "installed"
        }
        offered: Mapping[str, list[str]] = output["available"]
        repos = [_repo(r) for r in output["repositories"] if r.get("state", "present") == "present"]
    except (KeyError, TypeError) as exc:
        raise ToolFailed(f"{TOOL} returned an unexpected shape: {exc!r}") from None
    keep = set(installed) if scope.everything else _closure(installed, scope)
    available = {
        name: newest_first(backend, versions)
        for name, versions in sorted(offered.items())
        if scope.everything or name in scope.present
    }
    return PackagesState(
        backend=backend,
        packages=tuple(installed[n] for n in sorted(keep)),
        available=available,
        repositories=tuple(sorted(repos, key=lambda r: r.name)),
    )


def _repo(data: Mapping[str, Any]) -> Repo:
    return Repo(
        name=data["name"],
        url=data["url"],
        suite=data.get("suite", "./"),
        components=tuple(data.get("components", ())),
        trusted=bool(data.get("trusted", False)),
        signed_by=data.get("signed_by"),
    )


def _closure(installed: Mapping[str, Pkg], scope: Scope) -> set[str]:
    """Named packages that are installed, plus everything installed that depends on a
    removable one, transitively."""
    keep = {n for n in scope.names if n in installed}
    frontier = {n for n in scope.removable if n in installed}
    while frontier:
        dependents = {p.name for p in installed.values() if frontier & set(p.depends)}
        frontier = dependents - keep
        keep |= dependents
    return keep
