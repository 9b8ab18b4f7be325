"""The storage controller: wires observe, diff, plan, effects and export together.

Object keys: `filesystem:<device or image>`, `mount:<target>`,
`fstab:<target>` (one managed-block line per persisted mount; the block is
written whole by one `storage.fstab` step), `directory:<path>`,
`swapfile:<path>`.

Prune scope (conservative): objects aios created (the inventory) are removed
when their resource stops declaring them or is pruned — mounts unmounted,
fstab entries dropped, swap files removed, directories removed only when
empty; image files are never deleted that way (data: only `state: absent`
with `force: true` deletes one). `prune: true` on a Storage resource also
drops managed fstab entries no spec declares. Nothing aios did not mount is
ever unmounted by pruning.

Destructive (decided here from the observed state, not from the planner's
flags): `storage.mkfs` on a target that holds a filesystem (or was not
observed), `fs.delete` (an image file), `storage.dir` removal with `force`.
Forced when the filesystem or directory item of that path has `force: true`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from controllers.storage import diff as diff_module
from controllers.storage import effects, export, observe, plan
from controllers.storage.desired import gather
from controllers.storage.diff import describe_fs
from controllers.storage.domain import DOMAIN
from controllers.storage.state import StorageState
from reconciler.sdk.controller import JSON, Controller, Desired, Diff, StateReader
from reconciler.sdk.plan import Step
from specs.base import Resource
from specs.storage import Storage


class StorageController(Controller[StorageState]):
    domain: ClassVar[str] = DOMAIN.name  # the declaration: domain.py
    kinds: ClassVar[tuple[str, ...]] = tuple(DOMAIN.kinds)
    namespaces: ClassVar[tuple[str, ...]] = ("storage", "fs")
    state_model = StorageState

    async def observe(self, reader: StateReader, desired: Desired) -> StorageState:
        return await observe.observe(reader, desired)

    def diff(self, desired: Desired, state: StorageState) -> Diff:
        return diff_module.diff(desired, state)

    def plan(self, diff: Diff, desired: Desired, state: StorageState) -> tuple[Step, ...]:
        return plan.plan(diff, desired, state)

    def simulate(self, state: StorageState, steps: Sequence[Step]) -> StorageState:
        return effects.simulate(state, steps)

    def destructive(self, state: StorageState, step: Step) -> str | None:
        inp = step.input
        if step.tool == "storage.mkfs":
            fs = state.filesystem(str(inp.get("target", "")))
            if fs is None:
                return f"formats {inp.get('target')}, which was not observed"
            if fs.type is not None:
                return f"formats {fs.path}, which holds {describe_fs(fs)}"
            return None
        if step.tool == "fs.delete":
            return f"deletes {inp.get('path')}"
        if step.tool == "storage.dir" and inp.get("state") == "absent" and inp.get("force"):
            return f"removes {inp.get('path')} with everything in it"
        return None

    def forced(self, desired: Desired, step: Step) -> bool:
        items = gather(desired)
        inp = step.input
        if step.tool == "storage.mkfs":
            fs = items.filesystems.get(str(inp.get("target", "")))
            return fs is not None and fs.spec.state == "present" and fs.spec.force
        if step.tool == "fs.delete":
            fs = items.filesystems.get(str(inp.get("path", "")))
            return fs is not None and fs.spec.state == "absent" and fs.spec.force
        if step.tool == "storage.dir":
            directory = items.directories.get(str(inp.get("path", "")))
            return directory is not None and directory.spec.force
        return False

    def export(self, state: StorageState) -> list[JSON]:
        return export.export(state)

    def scope(self, state: StorageState, resources: Sequence[Resource]) -> JSON:
        """The mounts, filesystems, fstab entries, paths and swap files `resources` declare."""
        items = gather(Desired(self.domain, tuple(r for r in resources if isinstance(r, Storage))))
        paths = set(items.directories) | set(items.swapfiles) | set(items.filesystems)
        data: dict[str, Any] = state.model_dump(mode="json")
        return {
            "filesystems": [f for f in data["filesystems"] if f["path"] in items.filesystems],
            "mounts": [m for m in data["mounts"] if m["target"] in items.mounts],
            "fstab": [e for e in data["fstab"] if e["target"] in items.mounts],
            "paths": [p for p in data["paths"] if p["path"] in paths],
            "swapfiles": [s for s in data["swapfiles"] if s["path"] in items.swapfiles],
        }
