"""`registry.jobs`: the executions running right now and their progress.

Read-only and free of capabilities, so a client waiting on a long call (a
package transaction, a model download) can poll it with the same identity
and show progress (the definition: contract.catalogue.meta). The pipeline
hands the live job table to the tool as `ctx.options["jobs"]` (a callable
returning one JSON object per running execution). Only on the `full`
profile. Called by registry.server.pipeline; polled by reconciler.client's
`call(..., on_progress=...)`.
"""

from __future__ import annotations

from collections.abc import Callable

from contract.catalogue.meta import REGISTRY_JOBS
from contract.tooldef import JSON
from registry.core.tool import Tool, ToolContext


class Jobs(Tool):
    spec = REGISTRY_JOBS

    async def run(self, ctx: ToolContext, args: JSON) -> JSON:
        source: Callable[[], list[JSON]] | None = ctx.options.get("jobs")
        jobs = source() if source is not None else []
        task = args.get("task_id")
        if isinstance(task, str) and task:
            jobs = [j for j in jobs if j["task_id"] == task]
        return {"jobs": [j for j in jobs if j["execution_id"] != ctx.execution_id]}


TOOLS: tuple[type[Tool], ...] = (Jobs,)
