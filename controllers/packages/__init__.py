"""The packages controller: observe, diff, plan (rules), effects (simulation).

Kind Packages (specs/packages.py) on apt/dpkg or apk through the registry's
pkg.state / pkg.repos / pkg.ensure tools; see controllers.packages.controller.
"""

from controllers.packages.controller import CONTROLLER, PackagesController

__all__ = ["CONTROLLER", "PackagesController"]
