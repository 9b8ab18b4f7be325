"""The models controller: wires observe, diff, plan, effects and export together.

Object keys: `model:<path>` (a file; the name is in every change and
reason) and `model-load:<name>` (a model loaded in the AI runtime; aios
created it when its model.load added it). Prune scope: none for weights — a
model a resource stops declaring, the models of a pruned resource and
undeclared files under `prune: true` are kept with a no-op saying so; only
`state: absent` with `force: true` deletes weights. A load aios made that
no resource declares any more (or a pruned resource's) is unloaded.
Destructive (decided here, not from the planner's flags):
`model.remove` of a file (deleting weights). Forced when the model declared
at that path is `state: absent` with `force: true`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from controllers.models import diff as diff_module
from controllers.models import effects, export, observe, plan
from controllers.models.desired import models_resources
from controllers.models.domain import DOMAIN
from controllers.models.state import ModelsState
from reconciler.sdk.controller import JSON, Controller, Desired, Diff, StateReader
from reconciler.sdk.plan import Step
from specs.base import Resource


class ModelsController(Controller[ModelsState]):
    domain: ClassVar[str] = DOMAIN.name  # the declaration: domain.py
    kinds: ClassVar[tuple[str, ...]] = tuple(DOMAIN.kinds)
    namespaces: ClassVar[tuple[str, ...]] = ("model",)
    state_model = ModelsState

    async def observe(self, reader: StateReader, desired: Desired) -> ModelsState:
        return await observe.observe(reader, desired)

    def diff(self, desired: Desired, state: ModelsState) -> Diff:
        return diff_module.diff(desired, state)

    def plan(self, diff: Diff, desired: Desired, state: ModelsState) -> tuple[Step, ...]:
        return plan.plan(diff, desired, state)

    def simulate(self, state: ModelsState, steps: Sequence[Step]) -> ModelsState:
        return effects.simulate(state, steps)

    def destructive(self, state: ModelsState, step: Step) -> str | None:
        if step.tool != "model.remove":
            return None
        path = str(step.input.get("path", ""))
        found = state.file(path)
        held = f" ({found.size} bytes, sha256 {found.sha256[:8]}…)" if found else ""
        return f"deletes the model weights at {path}{held}"

    def forced(self, desired: Desired, step: Step) -> bool:
        if step.tool != "model.remove":
            return False
        path = step.input.get("path")
        return any(
            resource.spec.path_of(model) == path and model.state == "absent" and model.force
            for resource in models_resources(desired)
            for model in resource.spec.models
        )

    def export(self, state: ModelsState) -> list[JSON]:
        return export.export(state)

    def scope(self, state: ModelsState, resources: Sequence[Resource]) -> JSON:
        """The files `resources` declare, and each model's file, hash, load, status, endpoint
        and health."""
        return export.scope(state, Desired(self.domain, tuple(resources)))
