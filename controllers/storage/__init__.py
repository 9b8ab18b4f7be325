"""The storage controller: observe, diff, plan (rules), effects (simulation).

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed: DOMAIN.controller names it) and `StorageController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controllers.storage.domain import DOMAIN

if TYPE_CHECKING:
    from controllers.storage.controller import StorageController

    CONTROLLER: StorageController


def __getattr__(name: str) -> Any:
    if name not in ("CONTROLLER", "StorageController"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from controllers.storage.controller import StorageController

    if name == "CONTROLLER":
        globals()["CONTROLLER"] = StorageController()  # made once: later lookups find the global
        return globals()["CONTROLLER"]
    return StorageController


__all__ = ["CONTROLLER", "DOMAIN", "StorageController"]
