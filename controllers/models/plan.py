"""The models rules planner: one model.remove or model.fetch step per changed model.

Removals first (they free space; each is destructive and runs only with
`force: true` on the model), then fetches, each in path order. A fetch sends
the source URL, the expected sha256 (declared, or the `file:` source's) and
the path; the tool verifies hash and GGUF header and commits atomically.
A model whose `file:` source is missing and has no sha256 cannot be fetched:
the planner refuses with a clear message. Pure. Used by
controllers.models.controller.
"""

from __future__ import annotations

from controllers.models.desired import declared
from controllers.models.diff import expected_sha256
from controllers.models.state import ModelsState
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.errors import PlanRejected
from reconciler.sdk.plan import Change, Step


def plan(diff: Diff, desired: Desired, state: ModelsState) -> tuple[Step, ...]:
    models = declared(desired)
    by_path: dict[str, list[Change]] = {}
    for change in diff.changes:
        by_path.setdefault(change.object.partition(":")[2], []).append(change)
    removes, fetches, problems = [], [], []
    for path in sorted(by_path):
        changes = by_path[path]
        model = models[path]
        satisfies = tuple(sorted(c.id for c in changes))
        if any(c.op == "remove" for c in changes):
            removes.append(
                Step(
                    tool="model.remove",
                    input={"path": path},
                    satisfies=satisfies,
                    reason=f"delete the weights of {model.name} at {path} (state: absent)",
                    destructive=True,
                )
            )
            continue
        sha = expected_sha256(model, state)
        if sha is None or model.source is None:
            problems.append(
                f"model:{path}: {model.name}'s source {model.source} is missing "
                "and no sha256 is declared: nothing to fetch"
            )
            continue
        verb = "fetch" if any(c.op == "add" for c in changes) else "fetch again"
        fetches.append(
            Step(
                tool="model.fetch",
                input={"url": model.source, "sha256": sha, "path": path},
                satisfies=satisfies,
                reason=f"{verb} {model.name} from {model.source} to {path} "
                f"(verified: sha256 {sha[:8]}…)",
            )
        )
    if problems:
        raise PlanRejected(problems)
    return (*removes, *fetches)
