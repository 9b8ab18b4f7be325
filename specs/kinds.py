"""The registry of spec kinds: kind name -> Resource model.

Used by the loader (to pick the model for a document's `kind`), by the JSON
Schema export and by the engine to enumerate domains.
"""

from __future__ import annotations

from specs.base import Resource
from specs.firewall import Firewall
from specs.models import Models
from specs.network import Network
from specs.packages import Packages
from specs.storage import Storage

KIND_MODELS: dict[str, type[Resource]] = {
    "Network": Network,
    "Firewall": Firewall,
    "Packages": Packages,
    "Storage": Storage,
    "Models": Models,
}

AnyResource = Network | Firewall | Packages | Storage | Models

__all__ = ["KIND_MODELS", "AnyResource", "Firewall", "Models", "Network", "Packages", "Storage"]
