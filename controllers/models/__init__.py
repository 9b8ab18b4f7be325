"""The models controller: observe, diff, plan (rules), effects (simulation).

`CONTROLLER` is the instance controllers.all_controllers() hands the engine.
"""

from controllers.models.controller import ModelsController

CONTROLLER = ModelsController()

__all__ = ["CONTROLLER", "ModelsController"]
