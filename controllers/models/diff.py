"""Models diff: each declared model's file against model.list, its load against model.loaded.

Pure. Files (object `model:<path>`): a present model whose file has the
expected sha256 needs nothing ("demo-tiny present, sha256 be03cd43…
matches"); another sha256 means fetch it again (the tool keeps the previous
file until the new one is verified and committed); a missing file means
fetch it. The expected sha256 is the declared one, or — for a `file:`
source without one — the source file's current sha256 (observed in the same
model.list call), so the model follows its source; when that source is
missing too, a present file is kept and a missing one cannot be fetched
(the planner says so). Deleting weights (`state: absent`) is destructive
and needs `force: true`. Weights are never deleted otherwise: a model a
resource no longer declares, a pruned resource's models and, under
`prune: true`, undeclared files in the directory are kept with a no-op
saying so.

Loads (object `model-load:<name>`, the runtime's model name): a present
`load: always` model not loaded is an `add`; loaded with another path,
contextLength, threads or gpuLayers (or ones the runtime does not report) a
`change` of that field; a status other than `ready` (loading, restarting,
error) a `change` of `status` (the next load heals it); weights that change
under it — its file fetched again or missing, or loaded from another sha256
than expected — a `change` of `sha256` (the planner unloads it before the
fetch and loads it after). `load: on_demand` models are the runtime's: never
loaded or unloaded here, loaded or not (a no-op says so). A declared
`state: absent` model that is loaded is unloaded (`remove`) before its
weights go. A load aios made (inventory `model-load:<name>`) that no
resource declares any more is unloaded (`remove`), chosen by the one
removal rule (reconciler.sdk.removals). The layer is the runtime's routing
(by name) and is not acted on. Used by controllers.models.controller (and
the verifier, on predicted states).
"""

from __future__ import annotations

from controllers.models.desired import models_resources
from controllers.models.state import READY, LoadedModel, ModelsState, parent_of, source_path
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.diffing import Collector
from reconciler.sdk.removals import Removals
from specs.models import Model, Models

LOAD = "model-load:"
SPEC_NAMES = {
    "path": "path",
    "context_length": "contextLength",
    "threads": "threads",
    "gpu_layers": "gpuLayers",
}


def expected_sha256(model: Model, state: ModelsState) -> str | None:
    """The declared sha256, else the `file:` source's current one (None: unknown)."""
    if model.sha256:
        return model.sha256
    source = source_path(model.source or "")
    found = state.file(source) if source else None
    return found.sha256 if found else None


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


def load_params(resource: Models, model: Model) -> dict[str, str | int]:
    """What a `load: always` model is loaded with, in LoadedModel's field names."""
    return {
        "path": resource.spec.path_of(model),
        "context_length": model.context_length,
        "threads": model.threads,
        "gpu_layers": model.gpu_layers,
    }


def weights_changing(
    resource: Models, model: Model, state: ModelsState
) -> tuple[str, str | None, str | None] | None:
    """Why the weights under a loaded `model` change or differ, the sha256 it has now (the
    file's when the file is fetched again, else what the runtime loaded) and the one it gets;
    None: they do not."""
    path = resource.spec.path_of(model)
    have, want = state.file(path), expected_sha256(model, state)
    loaded = state.loaded(model.name)
    if have is None:
        return f"its file {path} is missing and is fetched again", None, want
    if want is not None and have.sha256 != want:
        why = f"its file {path} holds other weights (sha256 {have.sha256[:8]}…): fetched again"
        return why, have.sha256, want
    if loaded is None:
        return None
    sha = want or have.sha256
    if loaded.stale:
        return f"its file {path} was replaced while it stayed loaded", loaded.sha256, sha
    if loaded.sha256 is not None and loaded.sha256 != sha:
        why = f"it was loaded from other weights (sha256 {loaded.sha256[:8]}…) than {path} holds"
        return why, loaded.sha256, sha
    return None


def _settings(model: Model) -> str:
    return (
        f"contextLength {model.context_length}, threads {model.threads}, "
        f"gpuLayers {model.gpu_layers}"
    )


def _unloaded(loaded: LoadedModel) -> dict[str, str | None]:
    return {"name": loaded.name, "status": loaded.status, "path": loaded.path}


def diff_load(resource: Models, model: Model, state: ModelsState, out: Collector) -> None:
    key, obj, name = resource.key, f"{LOAD}{model.name}", model.name
    loaded = state.loaded(name)
    if model.state == "absent":
        if loaded is not None:
            out.change(
                key,
                obj,
                "remove",
                old=_unloaded(loaded),
                detail=f"{name} is unloaded from the AI runtime (state: absent)",
            )
        return
    if model.load == "on_demand":
        if loaded is None:
            why = "the AI runtime loads it on first use and unloads it when idle"
        else:
            why = f"loaded by the AI runtime ({loaded.status}); it unloads it when idle"
        out.noop(key, obj, f"{name}: load on_demand: {why}; the reconciler leaves it alone")
        return
    params = load_params(resource, model)
    if loaded is None:
        new = {
            "name": name,
            "path": params["path"],
            "contextLength": model.context_length,
            "threads": model.threads,
            "gpuLayers": model.gpu_layers,
        }
        out.change(key, obj, "add", new=new, detail=f"load {name} ({_settings(model)})")
        return
    changed = False
    for field, value in params.items():
        if getattr(loaded, field) != value:
            changed = True
            old, label = getattr(loaded, field), SPEC_NAMES[field]
            now = f"the runtime does not report its {label}" if old is None else f"{label} {old}"
            out.change(
                key,
                obj,
                "change",
                field,
                old=old,
                new=value,
                detail=f"{name} is loaded, {now}: loaded again with {value}",
            )
    weights = weights_changing(resource, model, state)
    if weights is not None:
        changed, (why, old_sha, new_sha) = True, weights
        out.change(
            key,
            obj,
            "change",
            "sha256",
            old=old_sha,
            new=new_sha,
            detail=f"{name} is loaded but {why}: unloaded first, loaded again after",
        )
    if loaded.status != READY:
        changed = True
        out.change(
            key,
            obj,
            "change",
            "status",
            old=loaded.status,
            new=READY,
            detail=f"{name} is {loaded.health}: loaded again",
        )
    if not changed:
        at = f" at {loaded.endpoint}" if loaded.endpoint else ""
        out.noop(key, obj, f"{name} loaded and ready{at} ({_settings(model)}, as declared)")


def diff(desired: Desired, state: ModelsState) -> Diff:
    out = Collector()
    resources = list(models_resources(desired))
    declared: set[str] = set()
    for resource in resources:
        for model in resource.spec.models:
            declared.add(f"model:{resource.spec.path_of(model)}")
            declared.add(f"{LOAD}{model.name}")
            diff_model(resource, model, state, out)
            diff_load(resource, model, state, out)
    chosen = Removals(desired, declared.__contains__)  # weights are kept, loads unloaded
    for candidate in chosen.inventory:
        obj = candidate.object
        path = obj.partition(":")[2]
        if obj.startswith(LOAD):
            loaded = state.loaded(path)
            if loaded is not None:
                out.change(
                    candidate.resource,
                    obj,
                    "remove",
                    old=_unloaded(loaded),
                    detail=f"aios loaded {path} and no Models resource declares it any more: "
                    "unloaded from the AI runtime",
                )
            else:
                out.noop(candidate.resource, obj, f"{path} is no longer declared and not loaded")
        elif obj.startswith("model:") and state.file(path) is not None:
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
