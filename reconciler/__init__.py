"""aios-reconciler: declarative system state for aiOS.

The engine package. Sub-modules are imported lazily by the CLI so that `aios`
starts fast; this module only carries the version.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
