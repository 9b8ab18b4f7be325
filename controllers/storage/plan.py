"""The storage rules planner: changes -> storage tool steps in a safe order.

Order: swap files removed; directories removed (deepest first); unmounts
(deepest first: removed mounts, replaced ones, mounts on a filesystem that
is remade, and anything mounted below them); mkfs (images created);
mounts (parents first; new, replaced and remounted with missing options);
the managed fstab block (one `storage.fstab` with every entry); directories
(parents first: after the mounts they may live on); swap files; image files
deleted last (`fs.delete` cannot be undone, so nothing runs after it).
Each step carries only inputs that matter (a fresh mount sends the compared
options, a remount only the missing ones, mkfs `force` only over an
existing filesystem, `image.size` only when the image is created, `probe`
only the filesystem a LABEL=/UUID= names) so the effect model can catch any
altered input. Pure; byte-identical output for the same inputs. Used by
controllers.storage.controller.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from controllers.storage.desired import Items, fstab_entry, gather, label_candidates
from controllers.storage.diff import REMOUNTING_FIELDS, describe_fs, remade
from controllers.storage.options import for_fresh_mount, missing
from controllers.storage.state import FstabEntry, StorageState, depth, is_under
from reconciler.sdk.controller import Desired, Diff
from reconciler.sdk.errors import PlanRejected
from reconciler.sdk.plan import Change, Step
from specs.storage import Mount


def step(tool: str, inp: dict[str, Any], reason: str, changes: Iterable[Change]) -> Step:
    done = tuple(changes)
    return Step(
        tool=tool,
        input=inp,
        reason=reason,
        satisfies=tuple(sorted({c.id for c in done})),
        destructive=any(c.destructive for c in done),
    )


class Planner:
    def __init__(self, diff: Diff, desired: Desired, state: StorageState) -> None:
        self.items: Items = gather(desired)
        self.state = state
        self.by_object: dict[str, list[Change]] = {}
        for change in diff.changes:
            self.by_object.setdefault(change.object, []).append(change)
        self.remade = remade(diff.changes)
        self.unmounted = self._unmounts()

    def objects(self, kind: str) -> list[tuple[str, list[Change]]]:
        prefix = kind + ":"
        return sorted(
            ((o.partition(":")[2], cs) for o, cs in self.by_object.items() if o.startswith(prefix)),
            key=lambda pair: depth(pair[0]),
        )

    def plan(self) -> tuple[Step, ...]:
        self._refuse_impossible()
        return (
            *self._swap_steps(absent=True),
            *self._directory_steps(absent=True),
            *self._umount_steps(),
            *self._mkfs_steps(),
            *self._mount_steps(),
            *self._fstab_steps(),
            *self._directory_steps(absent=False),
            *self._swap_steps(absent=False),
            *self._delete_steps(),
        )

    def _refuse_impossible(self) -> None:
        problems = [
            f"{c.object}: {c.detail}"
            for cs in self.by_object.values()
            for c in cs
            if c.field == "type" and c.object.startswith(("directory:", "swapfile:"))
        ]
        for target, _changes in self.objects("filesystem"):
            fs = self.state.filesystem(target)
            if target.startswith("/dev/") and (fs is None or not fs.exists):
                problems.append(f"filesystem:{target}: device {target} does not exist")
        if problems:
            raise PlanRejected(problems)

    # --- mounts ------------------------------------------------------------------

    def _unmounts(self) -> dict[str, tuple[str, list[Change]]]:
        """Live mount targets this plan unmounts -> (why, the changes that ask for it)."""
        out: dict[str, tuple[str, list[Change]]] = {}
        for target, changes in self.objects("mount"):
            if self.state.mount_at(target) is None:
                continue
            if any(c.op == "remove" for c in changes):
                out[target] = ("unmount it", changes)
            elif any(c.field in REMOUNTING_FIELDS for c in changes):
                out[target] = ("unmount it before mounting as declared", changes)
        for live in self.state.mounts:
            if live.source in self.remade and live.target not in out:
                out[live.target] = (f"{live.source} is formatted again", [])
        for live in self.state.mounts:  # what is mounted below an unmounted target goes first
            parents = sorted(t for t in out if t != live.target and is_under(live.target, t))
            if parents and live.target not in out:
                out[live.target] = (f"it is mounted below {parents[0]}, which is unmounted", [])
        lost = [
            f"mount:{target}: {why}, but no spec declares this mount, so it would stay "
            "unmounted; declare it"
            for target, (why, changes) in sorted(out.items())
            if not changes and not self._declared_present(target)
        ]
        if lost:
            raise PlanRejected(lost)
        return out

    def _declared_present(self, target: str) -> bool:
        item = self.items.mounts.get(target)
        return item is not None and item.spec.state == "present"

    def _umount_steps(self) -> list[Step]:
        steps = []
        for target in sorted(self.unmounted, key=depth, reverse=True):
            why, changes = self.unmounted[target]
            live = self.state.mount_at(target)
            assert live is not None
            steps.append(
                step(
                    "storage.umount",
                    {"target": target},
                    f"unmount {live.source} from {target}: {why}",
                    [c for c in changes if c.field in REMOUNTING_FIELDS],
                )
            )
        return steps

    def _mount_steps(self) -> list[Step]:
        steps = []
        targets = {t for t, _ in self.objects("mount")} | set(self.unmounted)
        for target in sorted(targets, key=depth):
            item = self.items.mounts.get(target)
            if item is None or item.spec.state == "absent":
                continue
            changes = [c for c in self.by_object.get(f"mount:{target}", []) if c.op != "remove"]
            fresh = target in self.unmounted or self.state.mount_at(target) is None
            if not changes and not fresh:
                continue
            steps.append(self._mount(item.spec, changes, fresh=fresh))
        return steps

    def _mount(self, spec: Mount, changes: list[Change], *, fresh: bool) -> Step:
        inp: dict[str, Any] = {"target": spec.target, "source": spec.source}
        if spec.type != "auto":
            inp["type"] = spec.type
        live = self.state.mount_at(spec.target)
        if fresh or live is None:
            options = for_fresh_mount(spec.options)
            reason = f"mount {spec.source} on {spec.target}"
        else:
            options = missing(spec.options, live.options)
            reason = f"remount {spec.target} with {', '.join(options)}"
        if options:
            inp["options"] = list(options)
        candidates = label_candidates(spec.source, self.items, self.state)
        if spec.source.startswith(("LABEL=", "UUID=")):
            if len(candidates) != 1:
                found = ", ".join(candidates) or "none"
                raise PlanRejected(
                    [
                        f"mount:{spec.target}: {spec.source} must name exactly one declared "
                        f"filesystem (found: {found})"
                    ]
                )
            inp["probe"] = list(candidates)
        if not changes:
            reason += " again (this plan unmounted it)"
        return step("storage.mount", inp, reason, changes)

    # --- filesystems ---------------------------------------------------------------

    def _mkfs_steps(self) -> list[Step]:
        steps = []
        for target, changes in self.objects("filesystem"):
            item = self.items.filesystems.get(target)
            if item is None or item.spec.state == "absent":
                continue
            spec = item.spec
            fs = self.state.filesystem(target)
            inp: dict[str, Any] = {"target": target, "type": spec.type}
            if spec.label is not None:
                inp["label"] = spec.label
            if spec.mkfs_options:
                inp["options"] = list(spec.mkfs_options)
            reason = f"make {spec.type} on {target}"
            if spec.image is not None and (fs is None or not fs.exists):
                inp["image"] = {"size": spec.image.size}
                reason += f" (creating the {spec.image.size} image)"
            if fs is not None and fs.type is not None:
                inp["force"] = True
                reason += f", replacing {describe_fs(fs)} (force: true)"
            steps.append(step("storage.mkfs", inp, reason, changes))
        return steps

    def _delete_steps(self) -> list[Step]:
        return [
            step("fs.delete", {"path": target}, f"delete image {target} (state: absent)", changes)
            for target, changes in self.objects("filesystem")
            if any(c.op == "remove" for c in changes)
        ]

    # --- fstab ---------------------------------------------------------------------

    def _fstab_steps(self) -> list[Step]:
        changes = [c for _, cs in self.objects("fstab") for c in cs]
        if not changes:
            return []
        block: dict[str, FstabEntry] = {e.target: e for e in self.state.fstab}
        for change in changes:
            target = change.object.partition(":")[2]
            if change.op == "remove":
                block.pop(target, None)
            else:
                block[target] = fstab_entry(self.items.mounts[target].spec)
        entries = [block[t].tool_form() for t in sorted(block, key=depth)]
        summary = ", ".join(
            f"{'+' if c.op == 'add' else '-' if c.op == 'remove' else '~'} "
            f"{c.object.partition(':')[2]}"
            for c in changes
        )
        reason = f"write the managed fstab block ({len(entries)} entries): {summary}"
        return [step("storage.fstab", {"entries": entries}, reason, changes)]

    # --- directories and swap files ---------------------------------------------------

    def _directory_steps(self, *, absent: bool) -> list[Step]:
        steps = []
        pairs = self.objects("directory")
        for path, changes in reversed(pairs) if absent else pairs:
            removing = any(c.op == "remove" for c in changes)
            if removing != absent:
                continue
            inp: dict[str, Any] = {"path": path}
            if absent:
                inp["state"] = "absent"
                if any(c.destructive for c in changes):
                    inp["force"] = True
                reason = f"remove directory {path}" + (" and its content" if "force" in inp else "")
            else:
                spec = self.items.directories[path].spec
                attrs = {"mode": spec.mode, "owner": spec.owner, "group": spec.group}
                inp |= {k: v for k, v in attrs.items() if v is not None}
                set_ = ", ".join(f"{k} {v}" for k, v in inp.items() if k != "path")
                verb = "create" if any(c.op == "add" for c in changes) else "set"
                reason = f"{verb} directory {path}" + (f" ({set_})" if set_ else "")
            steps.append(step("storage.dir", inp, reason, changes))
        return steps

    def _swap_steps(self, *, absent: bool) -> list[Step]:
        steps = []
        for path, changes in self.objects("swapfile"):
            removing = any(c.op == "remove" for c in changes)
            if removing != absent:
                continue
            if absent:
                inp: dict[str, Any] = {"path": path, "state": "absent"}
                reason = f"swapoff and delete swap file {path}"
            else:
                spec = self.items.swapfiles[path].spec
                inp = {"path": path, "size": spec.size}
                if spec.priority is not None:
                    inp["priority"] = spec.priority
                reason = f"swap file {path} of {spec.size}, made and activated"
            steps.append(step("storage.swapfile", inp, reason, changes))
        return steps


def plan(diff: Diff, desired: Desired, state: StorageState) -> tuple[Step, ...]:
    return Planner(diff, desired, state).plan()
