"""Kind Packages: an install set with versions and holds, an absent set, repositories.

The controller turns the whole resource into one package transaction per
reconcile (`pkg.ensure`). `version` is an exact version ('1.2-1', or '=1.2-1')
or constraints ('>=1.0, <2'), compared with the backend's own version order.
Removing a package that installed packages depend on is destructive and needs
`force: true` on the item. Backends: apt/dpkg and apk; `auto` picks what the
target has.

A repository's url, suite, components and signedBy become words of a line
`deb [trusted=yes signed-by=KEY] URL SUITE COMPONENT...` in a sources file,
and a version reaches apt-get's command line: each value is one word of an
allow-list of characters, so none can start a comment (`#`), open or close a
bracket group (`[`, `]`: `signedBy: "/k trusted=yes"` used to switch signature
checks off), quote, break the line or read as an option (a leading '-'). A
`file:` URL and a flat suite are paths, normalised and without `..` (a file:
repository is read under the registry's --root). The same rules as the
registry's schemas (contract.catalogue.pkg; tests keep them equal).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

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

# Used with fullmatch. contract.catalogue.pkg has the same bodies (REPO_URL_RE ...).
_PATH_PART = r"(?!\.\.?(?:/|$))[A-Za-z0-9._~+,=@:\-]+"
REPO_URL_RE = (
    r"https?://(?:\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?|[A-Za-z0-9\-._~%!$&'()*+,;=:@]+)"
    r"(?:/[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*)?"
    rf"|file:(?://)?(?:/{_PATH_PART})+/?"
)
SUITE_RE = r"(?!/)(?!(?:.*/)?\.\.(?:/|$))[A-Za-z0-9._/\-]+"
COMPONENT_RE = r"(?!\.\.$)[A-Za-z0-9._\-]+"
SIGNED_BY_RE = r"/(?!.*(?:^|/)\.\.?(?:/|$))[A-Za-z0-9._/\-]+"
VERSION_START_RE = r"[A-Za-z0-9]"


def _checked(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


RepoUrl = Annotated[
    Url,
    _checked(
        REPO_URL_RE,
        "an apt repository URL (http(s)://HOST[/PATH] or file:/PATH, one word without "
        "'#', quotes, brackets outside an IPv6 host, '\\', '?' or '..' in a file: path)",
    ),
]
Suite = Annotated[
    str,
    _checked(SUITE_RE, "a suite (letters, digits, '.', '_', '-', '/'; no leading '/', no '..')"),
    Field(json_schema_extra={"pattern": f"^(?:{SUITE_RE})$"}),
]
Component = Annotated[
    str,
    _checked(COMPONENT_RE, "a component (letters, digits, '.', '_', '-'; not '..')"),
    Field(json_schema_extra={"pattern": f"^(?:{COMPONENT_RE})$"}),
]
SignedBy = Annotated[
    AbsPath,
    _checked(SIGNED_BY_RE, "a keyring path (letters, digits, '.', '_', '-', '/'; no '..')"),
]


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
        for clause in (self.version or "").split(","):
            version = clause.strip().lstrip("=<>~").strip()
            if version and not re.match(VERSION_START_RE, version):
                raise FieldError(
                    ("version",),
                    f"version {self.version!r}: a version starts with a letter or digit "
                    "(it reaches apt-get's command line)",
                )
        return self


class Repository(SpecModel):
    name: Dns1123
    url: RepoUrl
    suite: Suite = "./"
    components: tuple[Component, ...] = ()
    trusted: bool = Field(default=False, description="Skip signature checks (local repositories).")
    signed_by: SignedBy | None = None
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
