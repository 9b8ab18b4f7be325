"""The storage controller: observe, diff, plan (rules), effects (simulation).

`CONTROLLER` is the instance controllers.all_controllers() hands the engine.
"""

from controllers.storage.controller import StorageController

CONTROLLER = StorageController()

__all__ = ["CONTROLLER", "StorageController"]
