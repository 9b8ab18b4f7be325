"""aios-reconciler: declarative system state for aiOS — the reconciler side.

- `sdk`: what domain controllers are written against (Controller, plans,
  the registry-client and cache protocols, errors).
- `engine`: merge, plan, verify, apply and record one reconcile.
- `client`: `RegistryClient`, the gRPC client of aios.tools.ToolRegistry.
- `cli`: the `aios` command and the composition root that wires
  controllers, engine, client and sandbox; `config` and `render` serve it.

The domain controllers live beside it in controllers/, the spec language in
specs/, the registry server in registry/ (ARCHITECTURE.md). Sub-modules are
imported lazily by the CLI so that `aios` starts fast; this module only
carries the version.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
