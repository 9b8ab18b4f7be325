"""The choice of package backend for a target: apt or apk, by what the target has.

`select_backend` returns registry.drivers.pkg.apt's AptBackend when <root>/var/lib/dpkg
exists, registry.drivers.pkg.apk's ApkBackend when <root>/lib/apk/db exists; on a root
with neither, the package manager found on the registry's host (apt-get first). It lives
apart from the interface (registry.drivers.pkg.backend), which both backends import, so
the interface module imports no backend. Called by registry.handlers.pkg.
"""

from __future__ import annotations

import shutil

from registry.core.errors import ToolError
from registry.core.tool import ToolContext
from registry.drivers.pkg.apk import ApkBackend
from registry.drivers.pkg.apt import AptBackend
from registry.drivers.pkg.backend import Backend


def select_backend(ctx: ToolContext) -> Backend:
    """apt or apk, by what the target has (see module docstring)."""
    if (ctx.root / "var/lib/dpkg").is_dir():
        return AptBackend(ctx)
    if (ctx.root / "lib/apk/db").is_dir():
        return ApkBackend(ctx)
    if shutil.which("apt-get"):
        return AptBackend(ctx)
    if shutil.which("apk"):
        return ApkBackend(ctx)
    raise ToolError("No supported package manager found")
