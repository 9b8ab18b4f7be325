"""Export the packages domain: the observed machine as one Packages document.

The document (`Packages/exported`) declares the backend, every repository
aios manages (apt: sources.list.d/aios-*.list; apk: the managed block) and
every manually installed package (auto=false) pinned to its exact installed
version, with `hold: true` where it is held (holds of the others are left
unmanaged). Dependencies apt installed automatically are left out — they come
with the packages that need them — unless someone held one: a hold is a
decision, so that package is exported (pinned and held) too. Applied to the
same machine it validates and plans nothing: every pinned version is the
installed one. Used by controllers.packages.controller (`aios export
Packages`).
"""

from __future__ import annotations

from typing import Any

from controllers.packages.state import PackagesState, Pkg, Repo

NAME = "exported"


def export(state: PackagesState) -> list[dict[str, Any]]:
    spec: dict[str, Any] = {"backend": state.backend}
    if state.repositories:
        spec["repositories"] = [_repo(r) for r in state.repositories]
    manual = [p for p in state.packages if not p.auto or p.hold]
    if manual:
        spec["packages"] = [_package(p) for p in manual]
    return [
        {
            "apiVersion": "aios.dev/v1",
            "kind": "Packages",
            "metadata": {"name": NAME},
            "spec": spec,
        }
    ]


def _repo(repo: Repo) -> dict[str, Any]:
    out: dict[str, Any] = {"name": repo.name, "url": repo.url, "suite": repo.suite}
    if repo.components:
        out["components"] = list(repo.components)
    if repo.trusted:
        out["trusted"] = True
    if repo.signed_by:
        out["signedBy"] = repo.signed_by
    return out


def _package(pkg: Pkg) -> dict[str, Any]:
    out: dict[str, Any] = {"name": pkg.name, "version": pkg.version}
    if pkg.hold:
        out["hold"] = True
    return out
