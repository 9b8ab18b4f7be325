"""The desired side of the packages domain, flattened out of the Packages resources.

`Wanted.of(desired)` lists every declared package and repository item with
the key of the resource declaring it (the loader guarantees one claimant per
`package:<name>` / `repository:<name>`), the resources with `prune: true`,
and the backend each resource asks for. `check_backend` refuses a resource
whose `backend` is not what the target has. Used by observe (what to ask
pkg.state for), diff, plan and the controller's `forced`.
"""

from __future__ import annotations

from dataclasses import dataclass

from controllers.packages.state import Repo, reported_repo
from reconciler.sdk.controller import Desired
from reconciler.sdk.errors import PermanentError
from specs.packages import Packages


@dataclass(frozen=True)
class WantedPackage:
    resource: str
    name: str
    version: str | None  # constraint text as normalised by the spec model; None: any
    hold: bool | None  # None: holds are left alone
    absent: bool
    force: bool

    @property
    def key(self) -> str:
        return f"package:{self.name}"


@dataclass(frozen=True)
class WantedRepo:
    resource: str
    name: str
    url: str
    suite: str
    components: tuple[str, ...]
    trusted: bool
    signed_by: str | None
    absent: bool

    @property
    def key(self) -> str:
        return f"repository:{self.name}"

    def reported(self, backend: str) -> Repo:
        """The form pkg.state reports once pkg.repos wrote this repository."""
        return reported_repo(
            backend,
            name=self.name,
            url=self.url,
            suite=self.suite,
            components=self.components,
            trusted=self.trusted,
            signed_by=self.signed_by,
        )

    def tool_entry(self) -> dict[str, object]:
        """This repository as a pkg.repos / pkg.state `repositories` item."""
        entry: dict[str, object] = {
            "name": self.name,
            "url": self.url,
            "suite": self.suite,
            "components": list(self.components),
            "trusted": self.trusted,
            "state": "absent" if self.absent else "present",
        }
        if self.signed_by is not None:
            entry["signed_by"] = self.signed_by
        return entry


@dataclass(frozen=True)
class Wanted:
    packages: tuple[WantedPackage, ...]
    repos: tuple[WantedRepo, ...]
    backends: tuple[tuple[str, str], ...]  # (resource key, backend it asks for)
    prune: tuple[str, ...]  # keys of resources with prune: true, sorted

    @classmethod
    def of(cls, desired: Desired) -> Wanted:
        packages: list[WantedPackage] = []
        repos: list[WantedRepo] = []
        backends: list[tuple[str, str]] = []
        prune: list[str] = []
        for resource in sorted(desired.resources, key=lambda r: r.key):
            if not isinstance(resource, Packages):
                continue
            spec = resource.spec
            backends.append((resource.key, spec.backend))
            if spec.prune:
                prune.append(resource.key)
            packages.extend(
                WantedPackage(
                    resource=resource.key,
                    name=p.name,
                    version=p.version,
                    hold=p.hold,
                    absent=p.state == "absent",
                    force=p.force,
                )
                for p in spec.packages
            )
            repos.extend(
                WantedRepo(
                    resource=resource.key,
                    name=r.name,
                    url=r.url,
                    suite=r.suite,
                    components=tuple(r.components),
                    trusted=r.trusted,
                    signed_by=r.signed_by,
                    absent=r.state == "absent",
                )
                for r in spec.repositories
            )
        return cls(tuple(packages), tuple(repos), tuple(backends), tuple(prune))

    def package(self, name: str) -> WantedPackage | None:
        return next((p for p in self.packages if p.name == name), None)

    def repo(self, name: str) -> WantedRepo | None:
        return next((r for r in self.repos if r.name == name), None)

    @property
    def declared(self) -> frozenset[str]:
        """Object keys some resource declares (present or absent)."""
        return frozenset([*(p.key for p in self.packages), *(r.key for r in self.repos)])

    def present_names(self) -> tuple[str, ...]:
        return tuple(sorted(p.name for p in self.packages if not p.absent))

    def check_backend(self, backend: str) -> None:
        for key, wanted in self.backends:
            if wanted not in ("auto", backend):
                raise PermanentError(
                    f"{key}: spec.backend is {wanted}, but the target's package manager is "
                    f"{backend}; use backend: auto or {backend}"
                )
