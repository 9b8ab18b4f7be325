"""Models diff: each declared model's file against what model.list found.

Pure. A present model whose file has the expected sha256 needs nothing
("demo-tiny present, sha256 be03cd43… matches"); another sha256 means
fetch it again (the tool keeps the previous file until the new one is
verified and committed); a missing file means fetch it. The expected sha256
is the declared one, or — for a `file:` source without one — the source
file's current sha256 (observed in the same model.list call), so the model
follows its source; when that source is missing too, a present file is kept
and a missing one cannot be fetched (the planner says so). Deleting weights
(`state: absent`) is destructive and needs `force: true`. Weights are never
deleted otherwise: a model a resource no longer declares, a pruned
resource's models and, under `prune: true`, undeclared files in the
directory are kept with a no-op saying so. Runtime settings (layer, load,
contextLength, threads, gpuLayers) are recorded, not applied: loading
into the AI runtime is a later issue, and each present model's no-op says
so. Used by controllers.models.controller (and the verifier, on predicted
states).
"""

from __future__ import annotations

from controllers.models.desired import models_resources
from controllers.models.state import ModelsState, parent_of, source_path
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.diffing import Collector
from reconciler.sdk.removals import Removals
from specs.models import Model, Models


def expected_sha256(model: Model, state: ModelsState) -> str | None:
    """The declared sha256, else the `file:` source's current one (None: unknown)."""
    if model.sha256:
        return model.sha256
    source = source_path(model.source or "")
    found = state.file(source) if source else None
    return found.sha256 if found else None


def runtime_note(model: Model) -> str:
    return (
        f"{model.name}: layer {model.layer}, load {model.load}, contextLength "
        f"{model.context_length}, threads {model.threads}, gpuLayers {model.gpu_layers} are "
        "recorded; loading into the AI runtime is not managed by this controller yet (the AI "
        "runtime handles it; a later issue)"
    )


def diff_model(resource: Models, model: Model, state: ModelsState, out: Collector) -> None:
    key, path = resource.key, resource.spec.path_of(model)
    obj = f"model:{path}"
    have = state.file(path)
    if model.state == "absent":
        if have is None:
            out.noop(key, obj, f"{model.name} is absent at {path}, as declared")
            return
        out.change(
            key,
            obj,
            "remove",
            old={"name": model.name, "sha256": have.sha256},
            destructive=True,
            forced=model.force,
            detail=f"deleting the weights of {model.name} at {path} ({have.size} bytes)",
        )
        return
    out.noop(key, obj, runtime_note(model))
    want = expected_sha256(model, state)
    by = "" if model.sha256 else f" (the sha256 of its source {model.source})"
    if have is None:
        detail = "" if want else f"its source {model.source} is missing: nothing to fetch"
        out.change(
            key,
            obj,
            "add",
            new={"name": model.name, "source": model.source, "sha256": want},
            detail=detail,
        )
    elif want is None:
        out.noop(
            key,
            obj,
            f"{model.name} present at {path}; its source {model.source} is "
            "missing, so it cannot be compared: kept",
        )
    elif have.sha256 != want:
        out.change(
            key,
            obj,
            "change",
            "sha256",
            old=have.sha256,
            new=want,
            detail=f"{path} holds other weights; {model.name} is fetched again{by}",
        )
    elif have.fetched_from is not None and have.fetched_from != model.source:
        out.change(key, obj, "change", "source", old=have.fetched_from, new=model.source)
    else:
        out.noop(key, obj, f"{model.name} present, sha256 {want[:8]}… matches{by}")


def diff(desired: Desired, state: ModelsState) -> Diff:
    out = Collector()
    resources = list(models_resources(desired))
    declared: set[str] = set()
    for resource in resources:
        for model in resource.spec.models:
            declared.add(f"model:{resource.spec.path_of(model)}")
            diff_model(resource, model, state, out)
    chosen = Removals(desired, declared.__contains__)  # weights are kept, never removed
    for candidate in chosen.inventory:
        obj = candidate.object
        path = obj.partition(":")[2]
        if obj.startswith("model:") and state.file(path) is not None:
            out.noop(
                candidate.resource,
                obj,
                f"{path} is no longer declared: its weights are kept "
                "(only state: absent with force: true deletes them)",
            )
    for resource in (r for r in resources if r.spec.prune):
        for found in state.files:
            obj = f"model:{found.path}"
            if parent_of(found.path) == resource.spec.directory and chosen.claim(obj):
                out.noop(
                    resource.key,
                    obj,
                    f"{found.path} is not declared by any Models "
                    "resource; prune: true does not delete weights (only state: absent "
                    "with force: true does)",
                )
    return out.result()
