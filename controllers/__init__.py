"""Domain controllers, one package per domain, all of one shape.

Each package declares its domain once, in domain.py (a specs.domains.Domain:
its kinds, its controller class, the domains it runs after), and
`DEFAULT_DOMAINS` lists those declarations in run order. That list is the
source of truth the composition root (reconciler.cli.common) hands the engine
and the loader: the kind -> domain map, the domain order, the default
dependencies and the kind table all derive from it (the engine itself never
imports controllers).

Importing this package, or a domain package, reads the declarations only.
`load_controller(domain)` imports a domain's controller on first use: the
declaration names the package's `CONTROLLER` (made on first access, once), or
a Controller class, which is instantiated once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from controllers.firewall.domain import DOMAIN as FIREWALL
from controllers.models.domain import DOMAIN as MODELS
from controllers.network.domain import DOMAIN as NETWORK
from controllers.packages.domain import DOMAIN as PACKAGES
from controllers.storage.domain import DOMAIN as STORAGE
from specs.domains import Domain, Domains

if TYPE_CHECKING:
    from reconciler.sdk.controller import Controller

DEFAULT_DOMAINS = Domains((STORAGE, PACKAGES, MODELS, NETWORK, FIREWALL))

_INSTANCES: dict[str, Controller[Any]] = {}


def load_controller(domain: Domain) -> Controller[Any]:
    """The controller `domain` declares (an instance, or a class made once)."""
    found = _INSTANCES.get(domain.controller)
    if found is None:
        from reconciler.sdk.controller import Controller

        module, _, attr = domain.controller.partition(":")
        named = getattr(importlib.import_module(module), attr)
        made = named() if isinstance(named, type) else named
        if not isinstance(made, Controller) or made.domain != domain.name:
            raise TypeError(f"{domain.controller} is not the {domain.name} domain's Controller")
        found = _INSTANCES.setdefault(domain.controller, made)
    return found


__all__ = ["DEFAULT_DOMAINS", "load_controller"]
