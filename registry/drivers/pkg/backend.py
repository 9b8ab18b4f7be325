"""The package backend interface and its data types.

A backend (registry.drivers.pkg.apt for apt/dpkg, registry.drivers.pkg.apk for Alpine's
apk) reads the package database under the context's root and runs transactions there;
registry.drivers.pkg.selection picks one for a target. This module imports no backend
(only registry.core), so the backends, their parsers (registry.drivers.pkg.aptparse) and
registry.drivers.pkg.transaction import it one way. Used by those and by
registry.handlers.pkg.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from contract.tooldef import JSON
from registry.core.errors import ToolError

BackendName = Literal["apt", "apk"]


class TransactionError(ToolError):
    """A package transaction failed; `stderr` is the backend's raw error output."""

    def __init__(self, message: str, *, stderr: str, packages: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.stderr = stderr
        self.packages = tuple(packages)


@dataclass(frozen=True)
class Installed:
    """One entry of the package database (dpkg status / apk installed db)."""

    name: str
    version: str
    status: str  # dpkg status word; apk: "installed"
    hold: bool = False
    auto: bool = False
    depends: tuple[str, ...] = ()

    @property
    def present(self) -> bool:
        """Fully installed; 'rc', half-configured and friends count as not installed."""
        return self.status == "installed"

    def to_json(self) -> JSON:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "hold": self.hold,
            "auto": self.auto,
            "depends": list(self.depends),
        }


@dataclass(frozen=True)
class Transaction:
    """What one package transaction asks for."""

    install: tuple[tuple[str, str | None], ...] = ()  # (name, exact version or None)
    remove: tuple[str, ...] = ()
    purge: bool = False
    # Reinstall `install` even at the version dpkg already records (a restore of a
    # package a failed script left half-installed; apt: --reinstall).
    reinstall: bool = False

    @property
    def empty(self) -> bool:
        return not self.install and not self.remove


@dataclass(frozen=True)
class Repository:
    name: str
    url: str
    suite: str = "./"
    components: tuple[str, ...] = ()
    trusted: bool = False
    signed_by: str | None = None
    state: str = "present"

    @classmethod
    def from_json(cls, data: JSON) -> Repository:
        return cls(
            name=data["name"],
            url=data["url"],
            suite=data.get("suite", "./"),
            components=tuple(data.get("components", ())),
            trusted=bool(data.get("trusted", False)),
            signed_by=data.get("signed_by"),
            state=data.get("state", "present"),
        )

    def to_json(self) -> JSON:
        return {
            "name": self.name,
            "url": self.url,
            "suite": self.suite,
            "components": list(self.components),
            "trusted": self.trusted,
            "signed_by": self.signed_by,
            "state": self.state,
        }


@dataclass
class RepoFiles:
    """Files a repository change rewrites: target path -> content (None: absent)."""

    files: dict[str, str | None] = field(default_factory=dict)


class Backend(Protocol):
    """What the pkg tools need from a package manager, acting under `ctx.root`."""

    name: BackendName

    async def installed(self, names: Sequence[str] | None = None) -> list[Installed]:
        """Database entries (all, or the named ones that the database knows)."""
        ...

    async def available(
        self, names: Sequence[str], repositories: Sequence[Repository] | None = None
    ) -> dict[str, list[str]]:
        """Versions the repositories offer per name, newest first.

        With `repositories` whose files differ from the configured ones: the
        versions a temporary index of the configuration after `repo_files`
        would offer (nothing under the root changes).
        """
        ...

    async def list_installed(self) -> list[JSON]:
        """aiOS's pkg.list_installed rows: {name, version} as the backend's query prints them."""
        ...

    async def version_of(self, name: str) -> str:
        """Installed version of `name`, or 'unknown' (aiOS's pkg.install output)."""
        ...

    async def simulate(self, tx: Transaction) -> set[str]:
        """Names a transaction would install, change or remove (dry run)."""
        ...

    async def transact(self, tx: Transaction) -> None:
        """Run the transaction as one backend command; ToolError naming the failure."""
        ...

    async def set_holds(self, hold: Sequence[str], unhold: Sequence[str]) -> None: ...

    async def set_auto(self, auto: Sequence[str], manual: Sequence[str]) -> None: ...

    async def update_index(self) -> None: ...

    async def search(self, query: str, limit: int) -> list[JSON]: ...

    async def upgrade_all(self) -> int: ...

    def repositories(self) -> list[Repository]:
        """The repositories this registry manages on the target."""
        ...

    def repo_files(self, repos: Sequence[Repository]) -> RepoFiles:
        """Target files (and their new content) that realise `repos`."""
        ...


_DEP_NAME = re.compile(r"^\s*([a-z0-9][a-z0-9+.\-]*)")


def dependency_names(field_text: str) -> tuple[str, ...]:
    """Package names in a Depends-style field: 'a (>= 1), b | c, d:any' -> (a, b, c, d)."""
    names: list[str] = []
    for clause in field_text.split(","):
        for alternative in clause.split("|"):
            match = _DEP_NAME.match(alternative)
            if match and match.group(1) not in names:
                names.append(match.group(1))
    return tuple(names)

