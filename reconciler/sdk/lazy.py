"""A domain package's `CONTROLLER`, made on first use, so reading its declaration is cheap.

Each controllers/<domain>/__init__.py imports only its `DOMAIN` (domain.py) and sets
`__getattr__ = lazy_controller(globals(), "controllers.<domain>.controller:<Class>")`:
the first lookup of `CONTROLLER` imports the controller module and makes the one
instance the engine is handed (stored in the package, so later lookups find it); the
class itself is available under its own name the same way. Called by the domain
packages; read through controllers.load_controller (the declaration's `controller`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, MutableMapping
from typing import Any


def lazy_controller(namespace: MutableMapping[str, Any], where: str) -> Callable[[str], Any]:
    """A module `__getattr__` serving `CONTROLLER` and the class named by `where` ("mod:Class")."""
    module_name, _, class_name = where.partition(":")

    def __getattr__(name: str) -> Any:
        if name not in ("CONTROLLER", class_name):
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        cls = getattr(importlib.import_module(module_name), class_name)
        if name == "CONTROLLER":
            namespace["CONTROLLER"] = cls()  # made once: later lookups find the global
            return namespace["CONTROLLER"]
        return cls

    return __getattr__
