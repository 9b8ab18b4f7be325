"""The models controller: observe, diff, plan (rules), effects (simulation).

`DOMAIN` (domain.py) is the domain's declaration. `CONTROLLER` (the instance
the engine is handed: DOMAIN.controller names it) and `ModelsController` are
imported on first use, so reading the declaration imports no controller code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from controllers.models.domain import DOMAIN
from reconciler.sdk.lazy import lazy_controller

if TYPE_CHECKING:
    from controllers.models.controller import ModelsController

    CONTROLLER: ModelsController

__getattr__ = lazy_controller(globals(), "controllers.models.controller:ModelsController")

__all__ = ["CONTROLLER", "DOMAIN", "ModelsController"]
