"""The packages controller: observe, diff, plan (rules), effects (simulation).

Kind Packages (specs/packages.py) on apt/dpkg or apk through the registry's
pkg.state / pkg.repos / pkg.ensure tools; see controllers.packages.controller.

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed: DOMAIN.controller names it) and `PackagesController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controllers.packages.domain import DOMAIN
from reconciler.sdk.lazy import lazy_controller

if TYPE_CHECKING:
    from controllers.packages.controller import PackagesController

    CONTROLLER: PackagesController

__getattr__ = lazy_controller(globals(), "controllers.packages.controller:PackagesController")

__all__ = ["CONTROLLER", "DOMAIN", "PackagesController"]
