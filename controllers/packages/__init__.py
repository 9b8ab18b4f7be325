"""The packages controller: observe, diff, plan (rules), effects (simulation).

Kind Packages (specs/packages.py) on apt/dpkg or apk through the registry's
pkg.state / pkg.repos / pkg.ensure tools; see controllers.packages.controller.

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed, via controllers.load_controller) and `PackagesController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controllers.packages.domain import DOMAIN

if TYPE_CHECKING:
    from controllers.packages.controller import PackagesController

    CONTROLLER: PackagesController


def __getattr__(name: str) -> Any:
    if name == "CONTROLLER":
        from controllers import load_controller

        return load_controller(DOMAIN)
    if name == "PackagesController":
        from controllers.packages.controller import PackagesController

        return PackagesController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CONTROLLER", "DOMAIN", "PackagesController"]
