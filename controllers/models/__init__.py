"""The models controller: observe, diff, plan (rules), effects (simulation).

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed: DOMAIN.controller names it) and `ModelsController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controllers.models.domain import DOMAIN

if TYPE_CHECKING:
    from controllers.models.controller import ModelsController

    CONTROLLER: ModelsController


def __getattr__(name: str) -> Any:
    if name not in ("CONTROLLER", "ModelsController"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from controllers.models.controller import ModelsController

    if name == "CONTROLLER":
        globals()["CONTROLLER"] = ModelsController()  # made once: later lookups find the global
        return globals()["CONTROLLER"]
    return ModelsController


__all__ = ["CONTROLLER", "DOMAIN", "ModelsController"]
