"""The models rules planner: model.unload, model.remove, model.fetch, model.load steps.

Order: unloads first (models no resource declares any more that aios
loaded, `state: absent` models, and loaded models whose weights change
under them: a fetch never replaces the file of a loaded model), then
removals (they free space; each is destructive and runs only with
`force: true` on the model), then fetches, then loads — each group in path
(files) or name (loads) order, so a model's file is fetched before it is
loaded. A fetch sends the source URL, the expected sha256 (declared, or the
`file:` source's) and the path; the tool verifies hash and GGUF header and
commits atomically. Exactly one model.load per `load: always` model that
needs one — not loaded, other parameters (the tool re-applies them), a
status other than `ready` (heals it) or new weights — with the path,
contextLength, threads, gpuLayers and the sha256 the file must have. A
model whose `file:` source is missing and has no sha256 cannot be fetched:
the planner refuses with a clear message. Pure. Used by
controllers.models.controller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controllers.models.desired import declared, models_resources
from controllers.models.diff import LOAD, SPEC_NAMES, expected_sha256
from controllers.models.state import ModelsState
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.errors import PlanRejected
from reconciler.sdk.plan import Change, Step
from specs.models import Model, Models


def _fetch_or_remove(
    path: str, model: Model, changes: Sequence[Change], state: ModelsState, problems: list[str]
) -> Step | None:
    satisfies = tuple(sorted(c.id for c in changes))
    if any(c.op == "remove" for c in changes):
        return Step(
            tool="model.remove",
            input={"path": path},
            satisfies=satisfies,
            reason=f"delete the weights of {model.name} at {path} (state: absent)",
            destructive=True,
        )
    sha = expected_sha256(model, state)
    if sha is None or model.source is None:
        problems.append(
            f"model:{path}: {model.name}'s source {model.source} is missing "
            "and no sha256 is declared: nothing to fetch"
        )
        return None
    verb = "fetch" if any(c.op == "add" for c in changes) else "fetch again"
    return Step(
        tool="model.fetch",
        input={"url": model.source, "sha256": sha, "path": path},
        satisfies=satisfies,
        reason=f"{verb} {model.name} from {model.source} to {path} (verified: sha256 {sha[:8]}…)",
    )


def _why(change: Change) -> str:
    if change.field in SPEC_NAMES:
        return f"{SPEC_NAMES[change.field]} {change.old} → {change.new}"
    if change.field == "status":
        return f"heals status {change.old}"
    return "with its new weights"


def _load(resource: Models, model: Model, changes: Sequence[Change], state: ModelsState) -> Step:
    path = resource.spec.path_of(model)
    found = state.file(path)
    sha = expected_sha256(model, state) or (found.sha256 if found else None)
    inp: dict[str, Any] = {
        "name": model.name,
        "path": path,
        "contextLength": model.context_length,
        "threads": model.threads,
        "gpuLayers": model.gpu_layers,
    }
    if sha is not None:
        inp["sha256"] = sha
    whys = [_why(c) for c in changes if c.op == "change"]
    return Step(
        tool="model.load",
        input=inp,
        satisfies=tuple(sorted(c.id for c in changes)),
        reason=f"load {model.name} from {path} into the AI runtime (contextLength "
        f"{model.context_length}, threads {model.threads}, gpuLayers {model.gpu_layers})"
        + (f": {', '.join(whys)}" if whys else ""),
    )


def _unload(name: str, changes: Sequence[Change], model: Model | None) -> Step:
    if model is None:
        why = "aios loaded it and no Models resource declares it any more"
    elif model.state == "absent":
        why = "state: absent"
    else:
        why = "its weights change: it is loaded again after"
    return Step(
        tool="model.unload",
        input={"name": name},
        satisfies=tuple(sorted(c.id for c in changes)),
        reason=f"unload {name} from the AI runtime ({why})",
    )


def plan(diff: Diff, desired: Desired, state: ModelsState) -> tuple[Step, ...]:
    by_path = declared(desired)
    by_name = {m.name: (r, m) for r in models_resources(desired) for m in r.spec.models}
    files: dict[str, list[Change]] = {}
    loads: dict[str, list[Change]] = {}
    for change in diff.changes:
        if change.object.startswith(LOAD):
            loads.setdefault(change.object.removeprefix(LOAD), []).append(change)
        else:
            files.setdefault(change.object.partition(":")[2], []).append(change)
    unload_steps: list[Step] = []
    load_steps: list[Step] = []
    for name in sorted(loads):
        changes = loads[name]
        resource, model = by_name.get(name, (None, None))
        if resource is None or model is None or any(c.op == "remove" for c in changes):
            unload_steps.append(_unload(name, changes, model))
            continue
        if any(c.field == "sha256" for c in changes):  # only for a loaded model (diff)
            unload_steps.append(_unload(name, changes, model))
        load_steps.append(_load(resource, model, changes, state))
    removes: list[Step] = []
    fetches: list[Step] = []
    problems: list[str] = []
    for path in sorted(files):
        step = _fetch_or_remove(path, by_path[path], files[path], state, problems)
        if step is not None:
            (removes if step.tool == "model.remove" else fetches).append(step)
    if problems:
        raise PlanRejected(problems)
    return (*unload_steps, *removes, *fetches, *load_steps)
