"""The desired side of the models domain: the Models resources and the models they declare.

`models_resources(desired)` yields the Models resources in key order;
`declared(desired)` maps each declared model's path to its spec item.
Used by observe (which paths to list), diff, plan and the controller
(`forced`, `scope`).
"""

from __future__ import annotations

from collections.abc import Iterator

from reconciler.sdk.controller import Desired
from specs.models import Model, Models


def models_resources(desired: Desired) -> Iterator[Models]:
    for resource in sorted(desired.resources, key=lambda r: r.key):
        if isinstance(resource, Models):
            yield resource


def declared(desired: Desired) -> dict[str, Model]:
    """Path -> declared model, over every Models resource."""
    return {
        resource.spec.path_of(model): model
        for resource in models_resources(desired)
        for model in resource.spec.models
    }
