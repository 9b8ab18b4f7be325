"""The `registry.*` tool catalogue as data: the registry's tools about itself.

`registry.jobs`: the executions running right now and their progress,
read-only and free of capabilities, so a client waiting on a long call (a
package transaction, a model download) can poll it with the same identity.
Schemas are closed objects without a `$schema` tag. Made by
contract.tooldef.define; read by registry.handlers.meta (the handler) and
contract.catalogue (ALL); polled by reconciler.client's
`call(..., on_progress=...)`.
"""

from __future__ import annotations

from contract.tooldef import ToolSpec, define, obj_schema

PROGRESS = obj_schema(
    {
        "done": {"type": "integer"},
        "total": {"type": "integer"},
        "message": {"type": "string"},
    },
    ("done", "total", "message"),
)
JOB = obj_schema(
    {
        "execution_id": {"type": "string"},
        "tool": {"type": "string"},
        "agent_id": {"type": "string"},
        "task_id": {"type": "string"},
        "started": {"type": "string"},
        "elapsed_ms": {"type": "integer"},
        "progress": PROGRESS,
    },
    ("execution_id", "tool", "agent_id", "task_id", "started", "elapsed_ms", "progress"),
)

REGISTRY_JOBS = define(
    "registry.jobs",
    "Executions running now with their progress; `task_id` filters to one task's calls.",
    obj_schema({"task_id": {"type": "string"}}),
    obj_schema({"jobs": {"type": "array", "items": JOB}}, ("jobs",)),
    risk="low",
    idempotent=True,
    reversible=False,
    timeout_ms=2000,
    capabilities=(),
)

ALL: tuple[ToolSpec, ...] = (REGISTRY_JOBS,)
