"""Kind Packages: an install set with versions and holds, an absent set, repositories.

The controller turns the whole resource into one package transaction per
reconcile (`pkg.ensure`). `version` is an exact version ('1.2-1', or '=1.2-1')
or constraints ('>=1.0, <2'), compared with the backend's own version order.
Removing a package that installed packages depend on is destructive and needs
`force: true` on the item. Backends: apt/dpkg and apk; `auto` picks what the
target has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field, model_validator

from specs.base import Claim, Resource, ResourceSpec, SpecModel
from specs.types import (
    AbsPath,
    Dns1123,
    FieldError,
    ItemState,
    PackageName,
    Url,
    VersionConstraint,
)


class Package(SpecModel):
    name: PackageName
    version: VersionConstraint | None = Field(
        default=None, description="Exact version or constraints; omit for any version."
    )
    hold: bool | None = Field(
        default=None, description="true pins the installed version; omit to leave holds alone."
    )
    state: ItemState = "present"
    force: bool = Field(
        default=False, description="Allow removing a package that others depend on."
    )

    @model_validator(mode="after")
    def _absent(self) -> Package:
        if self.state == "absent" and (self.version is not None or self.hold):
            field = "version" if self.version is not None else "hold"
            raise FieldError((field,), "an absent package takes no version or hold")
        return self


class Repository(SpecModel):
    name: Dns1123
    url: Url
    suite: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/\-]+$")] = "./"
    components: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9._\-]+$")], ...] = ()
    trusted: bool = Field(default=False, description="Skip signature checks (local repositories).")
    signed_by: AbsPath | None = None
    state: ItemState = "present"

    @model_validator(mode="after")
    def _flat_or_dist(self) -> Repository:
        if self.suite.endswith("/") and self.components:
            raise ValueError("a flat repository (suite ending in '/') takes no components")
        if not self.suite.endswith("/") and not self.components:
            raise ValueError("a suite without components; use e.g. components: [main]")
        return self


class PackagesSpec(ResourceSpec):
    backend: Literal["auto", "apt", "apk"] = "auto"
    packages: tuple[Package, ...] = ()
    repositories: tuple[Repository, ...] = ()


class Packages(Resource):
    """Packages and package repositories of the target."""

    KIND = "Packages"
    kind: Literal["Packages"]
    spec: PackagesSpec

    def claims(self) -> Iterator[Claim]:
        for i, pkg in enumerate(self.spec.packages):
            yield Claim(key=f"package:{pkg.name}", loc=("spec", "packages", i, "name"))
        for i, repo in enumerate(self.spec.repositories):
            yield Claim(key=f"repository:{repo.name}", loc=("spec", "repositories", i, "name"))
