"""The packages controller: observe, diff, plan (rules), effects (simulation).

Kind Packages (specs/packages.py) on apt/dpkg or apk through the registry's
pkg.state / pkg.repos / pkg.ensure tools; see controllers.packages.controller.

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed: DOMAIN.controller names it) and `PackagesController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controllers.packages.domain import DOMAIN

if TYPE_CHECKING:
    from controllers.packages.controller import PackagesController

    CONTROLLER: PackagesController


def __getattr__(name: str) -> Any:
    if name not in ("CONTROLLER", "PackagesController"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from controllers.packages.controller import PackagesController

    if name == "CONTROLLER":
        globals()["CONTROLLER"] = PackagesController()  # made once: later lookups find the global
        return globals()["CONTROLLER"]
    return PackagesController


__all__ = ["CONTROLLER", "DOMAIN", "PackagesController"]
