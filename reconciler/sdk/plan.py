"""Changes, steps and plans: the data that flows from diff to execution.

A controller's diff yields `Change`s (typed records: add/change/remove of one
field of one object of one resource) and `NoOp`s (why an item was left
alone). A planner turns changes into `Step`s (tool + input + reason + which
changes it satisfies). A `DomainPlan` holds one domain's changes, steps and
no-ops with the fingerprint of the state it was made from; a `Plan` holds the
domain plans of one target and the binding that makes a saved plan refuse to
run against other specs, another state, another tool catalogue or another
aios version. All of it is frozen pydantic data with a JSON round trip; the
same object `aios plan` prints is the one `aios apply` executes. A
`PlanFailure` says which domain (or which resource of it) could not be
planned and why, so a plan never looks complete when it is not.

`plan_difference` names the first way a saved domain plan differs from a
fresh one (`aios apply --plan` runs a saved plan only when it equals a fresh
plan for the same binding).

Used by controllers (diff, planners), the engine (verifier, execute, store)
and the CLI (rendering). Text rendering lives in reconciler.render.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from contract.tooldef import Risk

JSONValue = Any
Op = Literal["add", "change", "remove"]


class Frozen(BaseModel):
    """The base of all frozen data in the reconciler: plan records here and every
    controller's state model (controllers/<domain>/state.py). Immutable, so a state
    or plan can be shared and fingerprinted; unknown fields are refused, so a saved
    plan or a recorded state with a typo does not load silently."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Change(Frozen):
    """One difference between desired and actual state.

    `id` is stable for the same difference (resource, object, field) so plans
    made from the same inputs are byte-identical and steps can name the
    changes they satisfy. `object` is the kind:identity of the thing changed
    (`link:br0`, `nft-table:inet/filter`, `package:curl`). `field` is empty
    when the whole object is added or removed.
    """

    id: str
    resource: str  # Kind/name of the resource the change comes from
    object: str
    op: Op
    field: str = ""
    old: JSONValue = None
    new: JSONValue = None
    destructive: bool = False
    forced: bool = False  # the spec item carries force: true
    detail: str = ""  # human note, e.g. why it is destructive

    @staticmethod
    def make_id(resource: str, obj: str, field: str = "") -> str:
        return f"{resource}|{obj}|{field}" if field else f"{resource}|{obj}"


class NoOp(Frozen):
    """An item the spec declares that needs nothing, and why."""

    resource: str
    object: str
    reason: str


class Step(Frozen):
    """One tool call of a plan."""

    tool: str
    input: dict[str, JSONValue]
    reason: str
    satisfies: tuple[str, ...] = ()  # Change ids
    risk: Risk = "low"  # the tool's, from the live catalogue (reconciler.engine.planning)
    destructive: bool = False

    def input_digest(self) -> str:
        return canonical_digest(self.input)


class DomainPlan(Frozen):
    """Changes, steps and no-ops of one domain, and what they were made from."""

    domain: str
    resources: tuple[str, ...]  # Kind/name keys of the resources this plan covers
    state_fingerprint: str  # digest of the observed state the plan was made from
    changes: tuple[Change, ...] = ()
    steps: tuple[Step, ...] = ()
    noops: tuple[NoOp, ...] = ()
    planner: Literal["rules", "llm", "none"] = "rules"

    @property
    def empty(self) -> bool:
        return not self.steps and not self.changes


class PlanBinding(Frozen):
    """What a saved plan was made for; any mismatch makes it stale."""

    target: str
    spec_digest: str
    catalogue_hash: str
    aios_version: str
    generation: int = Field(description="Generation the plan would create when applied.")
    inventory_digest: str = Field(
        default="", description="Digest of what aios had created on the target (its inventory)."
    )


class PlanFailure(Frozen):
    """A domain, or one resource of it, that could not be planned, and why.

    `resource` empty: the domain as a whole failed (nothing of it runs).
    `resource` set: the failure is attributed to that resource; without a
    domain-wide entry the resource was left out and the rest of its domain
    was planned without it.
    """

    domain: str
    resource: str = ""
    reason: str  # the error class (ToolFailed, PlanRejected, DestructiveRefused, ...)
    message: str
    retryable: bool = False

    def line(self) -> str:
        who = self.resource or f"domain {self.domain}"
        return f"{who}: {self.reason}: {self.message}"


class Plan(Frozen):
    """The plan for one target: per-domain plans, what could not be planned, the binding."""

    binding: PlanBinding
    domains: tuple[DomainPlan, ...] = ()
    failures: tuple[PlanFailure, ...] = ()

    @property
    def has_changes(self) -> bool:
        return any(not d.empty for d in self.domains)

    @property
    def complete(self) -> bool:
        """Every involved domain and resource was planned, and the verifier passed them."""
        return not self.failures

    def domain(self, name: str) -> DomainPlan | None:
        return next((d for d in self.domains if d.domain == name), None)

    def blocked(self, name: str) -> bool:
        """Domain `name` failed as a whole (nothing of it would run)."""
        return any(f.domain == name and not f.resource for f in self.failures)

    def to_json(self) -> str:
        """Stable JSON: the same plan always gives the same bytes."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.model_validate_json(text)


def plan_difference(saved: DomainPlan, fresh: DomainPlan) -> str | None:
    """The first way `saved` differs from `fresh`, in words; None when they are equal.

    Compares everything a reviewer saw or the engine would run: the
    resources covered, the changes (with their descriptions and flags), the
    steps (tool, input, reason, satisfied changes, risk, destructive flag),
    the no-ops and the planner. The state fingerprint is the caller's concern
    (a different state makes a plan stale, not altered).
    """
    if saved.resources != fresh.resources:
        return (
            f"it covers resources {', '.join(saved.resources) or 'none'}; "
            f"a fresh plan covers {', '.join(fresh.resources) or 'none'}"
        )
    steps = _sequence_difference(
        "step", saved.steps, fresh.steps, lambda s: s.tool, _model_difference
    )
    if steps:
        return steps
    changes = _sequence_difference(
        "change", saved.changes, fresh.changes, _change_label, _model_difference
    )
    if changes:
        return changes
    noops = _sequence_difference(
        "no-op", saved.noops, fresh.noops, lambda n: n.object, _model_difference
    )
    if noops:
        return noops
    if saved.planner != fresh.planner:
        return f"planner: saved {saved.planner!r}, a fresh plan has {fresh.planner!r}"
    return None


M = TypeVar("M", bound=BaseModel)


def _change_label(change: Change) -> str:
    return f"{change.object} {change.field}".rstrip()


def _sequence_difference(
    noun: str,
    saved: tuple[M, ...],
    fresh: tuple[M, ...],
    label: Callable[[M], str],
    detail: Callable[[M, M], str],
) -> str | None:
    """The first difference between two sequences of models, compared as canonical JSON
    (so `1`, `1.0` and `true` differ, as they do on the wire)."""
    old_json = [_canonical_model(m) for m in saved]
    new_json = [_canonical_model(m) for m in fresh]
    if old_json == new_json:
        return None
    for index, (old, new) in enumerate(zip(saved, fresh, strict=False)):
        if old_json[index] != new_json[index]:
            where = f"{noun} {index + 1} ({label(old)})"
            if len(saved) == len(fresh) and sorted(old_json) == sorted(new_json):
                return (
                    f"{where}: the same {noun}s in another order "
                    f"(a fresh plan has {label(new)} here)"
                )
            return f"{where}: {detail(old, new)}"
    if len(saved) > len(fresh):
        extra = saved[len(fresh)]
        return (
            f"{noun} {len(fresh) + 1} ({label(extra)}) is not in a fresh plan "
            f"(saved {len(saved)} {noun}s, fresh {len(fresh)})"
        )
    missing = fresh[len(saved)]
    return (
        f"{noun} {len(saved) + 1} of a fresh plan ({label(missing)}) is missing "
        f"(saved {len(saved)} {noun}s, fresh {len(fresh)})"
    )


def _canonical_model(model: BaseModel) -> str:
    return canonical_json(model.model_dump(mode="json"))


def _model_difference(old: BaseModel, new: BaseModel) -> str:
    """The first differing field of two models of one type, with both values."""
    a, b = old.model_dump(mode="json"), new.model_dump(mode="json")
    for name in type(old).model_fields:
        if canonical_json(a.get(name)) != canonical_json(b.get(name)):
            path, x, y = _first_json_difference(a.get(name), b.get(name), "$")
            at = "" if path == "$" else f" at {path}"
            return f"{name} differs{at}: saved {_brief(x)}, a fresh plan has {_brief(y)}"
    return "differs"  # pragma: no cover - equal dumps mean equal models


_ABSENT = object()


def _first_json_difference(
    a: JSONValue, b: JSONValue, path: str
) -> tuple[str, JSONValue, JSONValue]:
    """(JSON path, saved value, fresh value) of the first difference inside a and b."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a:
                return f"{path}.{key}", _ABSENT, b[key]
            if key not in b:
                return f"{path}.{key}", a[key], _ABSENT
            if canonical_json(a[key]) != canonical_json(b[key]):
                return _first_json_difference(a[key], b[key], f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list):
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            if canonical_json(x) != canonical_json(y):
                return _first_json_difference(x, y, f"{path}[{index}]")
        if len(a) > len(b):
            return f"{path}[{len(b)}]", a[len(b)], _ABSENT
        if len(b) > len(a):
            return f"{path}[{len(a)}]", _ABSENT, b[len(a)]
    return path, a, b


def _brief(value: JSONValue, limit: int = 80) -> str:
    """A value as JSON (control characters escaped), cut at `limit`."""
    text = "(absent)" if value is _ABSENT else canonical_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def canonical_json(value: JSONValue) -> str:
    """Compact JSON with sorted keys: the form every digest is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_digest(value: JSONValue) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
