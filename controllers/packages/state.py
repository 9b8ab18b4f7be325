"""The packages domain's observed state: installed packages, offered versions, repositories.

Frozen pydantic models (their JSON is the fingerprint a saved plan is bound
to and what `aios get Packages` prints). Normalised by observe: only fully
installed packages appear (dpkg 'rc'/config-files, half-installed and
friends count as not installed), lists sorted by name, `available` newest
first. `Repo` is a repository as pkg.state reports it back for the backend
(`reported_repo` maps a declared repository to that form, so diff and
effects compare like with like: apk keeps repositories as URL lines, with
no suite, components or signed-by). Must not import specs: effects.py uses
it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reconciler.sdk.plan import Frozen

Backend = Literal["apt", "apk"]


class Pkg(Frozen):
    """An installed package."""

    name: str
    version: str
    hold: bool = False
    auto: bool = False  # installed automatically as a dependency
    depends: tuple[str, ...] = ()  # names it depends on (alternatives flattened)


class Repo(Frozen):
    """A repository aios manages (apt: sources.list.d/aios-<name>.list; apk: managed block)."""

    name: str
    url: str
    suite: str = "./"
    components: tuple[str, ...] = ()
    trusted: bool = False
    signed_by: str | None = None

    def describe(self) -> str:
        where = " ".join([self.url, self.suite, *self.components])
        flags = [f for f, on in (("trusted", self.trusted), ("signed", self.signed_by)) if on]
        return where + (f" ({', '.join(flags)})" if flags else "")


class PackagesState(Frozen):
    backend: Backend
    packages: tuple[Pkg, ...] = ()
    # declared names -> versions, newest first
    available: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    repositories: tuple[Repo, ...] = ()

    def package(self, name: str) -> Pkg | None:
        return next((p for p in self.packages if p.name == name), None)

    def repository(self, name: str) -> Repo | None:
        return next((r for r in self.repositories if r.name == name), None)

    def dependents(self, name: str, ignore: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """Installed packages (except `ignore`) that depend on `name`, sorted."""
        return tuple(p.name for p in self.packages if name in p.depends and p.name not in ignore)


def removal_closure(
    packages: tuple[Pkg, ...], names: set[str], keep: frozenset[str] = frozenset()
) -> set[str]:
    """What removing `names` removes, as apt does it: the installed ones among them and,
    transitively, every installed package (except `keep`) that depends on a removed one."""
    gone = {p.name for p in packages if p.name in names}
    frontier = set(gone)
    while frontier:
        dependents = {
            p.name
            for p in packages
            if p.name not in gone and p.name not in keep and frontier & set(p.depends)
        }
        gone |= dependents
        frontier = dependents
    return gone


def reported_repo(
    backend: str,
    *,
    name: str,
    url: str,
    suite: str = "./",
    components: tuple[str, ...] = (),
    trusted: bool = False,
    signed_by: str | None = None,
) -> Repo:
    """How pkg.state reports a repository pkg.repos wrote with these fields."""
    if backend != "apk":
        return Repo(
            name=name,
            url=url,
            suite=suite,
            components=components,
            trusted=trusted,
            signed_by=signed_by,
        )
    base = url.rstrip("/")
    if suite not in ("./", "."):
        base = f"{base}/{suite.strip('/')}"
    first = f"{base}/{components[0]}" if components else base
    return Repo(name=name, url=first, trusted=trusted)
