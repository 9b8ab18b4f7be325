"""`registry.jobs`: the executions running right now and their progress.

Read-only and free of capabilities, so a client waiting on a long call (a
package transaction, a model download) can poll it with the same identity
and show progress. The pipeline hands the live job table to the tool as
`ctx.options["jobs"]` (a callable returning one JSON object per running
execution). Only on the `full` profile. Called by registry.server.pipeline; polled by
reconciler.client's `call(..., on_progress=...)`.
"""

from __future__ import annotations

from collections.abc import Callable

from contract.tooldef import JSON, ToolSpec, obj_schema
from registry.core.tool import Tool, ToolContext

_PROGRESS = obj_schema(
    {
        "done": {"type": "integer"},
        "total": {"type": "integer"},
        "message": {"type": "string"},
    },
    ("done", "total", "message"),
)
_JOB = obj_schema(
    {
        "execution_id": {"type": "string"},
        "tool": {"type": "string"},
        "agent_id": {"type": "string"},
        "task_id": {"type": "string"},
        "started": {"type": "string"},
        "elapsed_ms": {"type": "integer"},
        "progress": _PROGRESS,
    },
    ("execution_id", "tool", "agent_id", "task_id", "started", "elapsed_ms", "progress"),
)


class Jobs(Tool):
    spec = ToolSpec(
        name="registry.jobs",
        description=(
            "Executions running now with their progress; `task_id` filters to one task's calls."
        ),
        input_schema=obj_schema({"task_id": {"type": "string"}}),
        output_schema=obj_schema({"jobs": {"type": "array", "items": _JOB}}, ("jobs",)),
        risk="low",
        idempotent=True,
        reversible=False,
        timeout_ms=2000,
        capabilities=(),
    )

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        source: Callable[[], list[JSON]] | None = ctx.options.get("jobs")
        jobs = source() if source is not None else []
        task = args.get("task_id")
        if isinstance(task, str) and task:
            jobs = [j for j in jobs if j["task_id"] == task]
        return {"jobs": [j for j in jobs if j["execution_id"] != ctx.execution_id]}


TOOLS: tuple[type[Tool], ...] = (Jobs,)
