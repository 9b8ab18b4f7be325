"""Effect model of the packages domain: `(state, steps) -> predicted state`. Pure.

pkg.repos: every `present` entry becomes a managed repository in the form
pkg.state reports it for the backend; an `absent` entry removes the
configured repository, and must describe it as configured (a removal that
names another URL is refused: it is not what the plan means). An index
that is not refreshed (`update_index: false`) cannot be predicted.
`available` is unchanged: observe already read it from an index that
includes the declared repositories.

pkg.ensure (one transaction, as registry.drivers.pkg.transaction runs it):
- install `{name, version}`: that version, which must be offered
  (`available`) or already installed; without a version: the newest
  available one (apt's candidate). Installed packages named here become
  manually installed (auto=false); a held one stays held (the tool releases
  and re-holds it) unless it is in `unhold`;
- remove: the package and, like apt, every installed package that depends
  on a removed one, transitively (dependencies with alternatives are
  flattened in the state, so this may predict more than apt removes: the
  verifier then refuses rather than surprises);
- unhold, then hold: hold needs the package installed after the
  transaction (the tool fails otherwise), unhold needs it installed;
- purge and update_index do not change what the state models.
Inconsistent or unknown input raises ValueError (the verifier reports it).
Must not import specs (import-linter contract). Used by the controller's
simulate().
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.packages.state import PackagesState, Pkg, removal_closure, reported_repo
from reconciler.sdk.plan import Step

REPOS_KEYS = frozenset({"repositories", "update_index"})
REPO_KEYS = frozenset({"name", "url", "suite", "components", "trusted", "signed_by", "state"})
ENSURE_KEYS = frozenset({"install", "remove", "purge", "hold", "unhold", "update_index"})


def simulate(state: PackagesState, steps: Sequence[Step]) -> PackagesState:
    for step in steps:
        if step.tool == "pkg.repos":
            state = apply_repos(state, step.input)
        elif step.tool == "pkg.ensure":
            state = apply_ensure(state, step.input)
        else:
            raise ValueError(f"the packages effect model does not know tool {step.tool}")
    return state


def _check_keys(what: str, data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{what}: cannot model input field(s) {', '.join(unknown)}")


def apply_repos(state: PackagesState, args: Mapping[str, Any]) -> PackagesState:
    _check_keys("pkg.repos", args, REPOS_KEYS)
    if args.get("update_index", True) is not True:
        raise ValueError("pkg.repos without update_index: the package index would not know them")
    repos = {r.name: r for r in state.repositories}
    for entry in args["repositories"]:
        _check_keys("pkg.repos repository", entry, REPO_KEYS)
        repo = reported_repo(
            state.backend,
            name=entry["name"],
            url=entry["url"],
            suite=entry.get("suite", "./"),
            components=tuple(entry.get("components", ())),
            trusted=bool(entry.get("trusted", False)),
            signed_by=entry.get("signed_by"),
        )
        if entry.get("state", "present") == "present":
            repos[repo.name] = repo
            continue
        current = repos.pop(repo.name, None)
        if current is not None and current != repo:
            raise ValueError(
                f"pkg.repos removes repository {repo.name} as {repo.describe()}, "
                f"but it is configured as {current.describe()}"
            )
    return state.model_copy(update={"repositories": tuple(repos[n] for n in sorted(repos))})


def _names(args: Mapping[str, Any], key: str) -> list[str]:
    return [str(n) for n in args.get(key, ())]


def apply_ensure(state: PackagesState, args: Mapping[str, Any]) -> PackagesState:
    _check_keys("pkg.ensure", args, ENSURE_KEYS)
    install = [(str(i["name"]), i.get("version")) for i in args.get("install", ())]
    remove, hold, unhold = _names(args, "remove"), _names(args, "hold"), _names(args, "unhold")
    _check_overlaps([n for n, _ in install], remove, hold, unhold)
    packages = {p.name: p for p in state.packages}
    for name, version in install:
        packages[name] = _installed(state, packages.get(name), name, version)
    _remove(packages, set(remove), keep={n for n, _ in install})
    for name in unhold:
        if name not in packages:
            raise ValueError(f"pkg.ensure cannot unhold {name}: not installed")
        packages[name] = packages[name].model_copy(update={"hold": False})
    for name in hold:
        if name not in packages:
            raise ValueError(f"pkg.ensure cannot hold {name}: not installed")
        packages[name] = packages[name].model_copy(update={"hold": True})
    return state.model_copy(update={"packages": tuple(packages[n] for n in sorted(packages))})


def _check_overlaps(
    install: list[str], remove: list[str], hold: list[str], unhold: list[str]
) -> None:
    for label, left, right in (
        ("install and remove", install, remove),
        ("hold and unhold", hold, unhold),
        ("hold and remove", hold, remove),
    ):
        both = sorted(set(left) & set(right))
        if both:
            raise ValueError(f"pkg.ensure names {', '.join(both)} in both {label}")
    if len(install) != len(set(install)):
        raise ValueError("pkg.ensure names a package twice in install")


def _installed(state: PackagesState, current: Pkg | None, name: str, version: Any) -> Pkg:
    offered = state.available.get(name, ())
    if version is None:
        if not offered:
            raise ValueError(f"pkg.ensure installs {name}, which no repository offers")
        version = offered[0]
    elif version not in offered and (current is None or current.version != version):
        raise ValueError(f"pkg.ensure installs {name} {version}, which no repository offers")
    same = current is not None and current.version == version
    return Pkg(
        name=name,
        version=str(version),
        hold=current.hold if current is not None else False,
        auto=False,
        depends=current.depends if same and current is not None else (),
    )


def _remove(packages: dict[str, Pkg], names: set[str], *, keep: set[str]) -> None:
    """Remove `names` and, transitively, installed packages depending on them."""
    for name in removal_closure(tuple(packages.values()), names, frozenset(keep)):
        del packages[name]
