"""The models controller: observe, diff, plan (rules), effects (simulation).

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed, via controllers.load_controller) and `ModelsController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controllers.models.domain import DOMAIN

if TYPE_CHECKING:
    from controllers.models.controller import ModelsController

    CONTROLLER: ModelsController


def __getattr__(name: str) -> Any:
    if name == "CONTROLLER":
        from controllers import load_controller

        return load_controller(DOMAIN)
    if name == "ModelsController":
        from controllers.models.controller import ModelsController

        return ModelsController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CONTROLLER", "DOMAIN", "ModelsController"]
