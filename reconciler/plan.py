"""Changes, steps and plans: the data that flows from diff to execution.

A controller's diff yields `Change`s (typed records: add/change/remove of one
field of one object of one resource) and `NoOp`s (why an item was left
alone). A planner turns changes into `Step`s (tool + input + reason + which
changes it satisfies). A `DomainPlan` holds one domain's changes, steps and
no-ops with the fingerprint of the state it was made from; a `Plan` holds the
domain plans of one target and the binding that makes a saved plan refuse to
run against other specs, another state, another tool catalogue or another
aios version. All of it is frozen pydantic data with a JSON round trip; the
same object `aios plan` prints is the one `aios apply` executes.

Used by controllers (diff, planners), the engine (verifier, executor, store)
and the CLI (rendering). Text rendering lives in reconciler.render.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JSONValue = Any
Op = Literal["add", "change", "remove"]
Risk = Literal["low", "medium", "high", "critical"]
RISK_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class Frozen(BaseModel):
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
    risk: Risk = "low"
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


class Plan(Frozen):
    """The plan for one target: per-domain plans plus the binding."""

    binding: PlanBinding
    domains: tuple[DomainPlan, ...] = ()

    @property
    def has_changes(self) -> bool:
        return any(not d.empty for d in self.domains)

    def domain(self, name: str) -> DomainPlan | None:
        return next((d for d in self.domains if d.domain == name), None)

    def to_json(self) -> str:
        """Stable JSON: the same plan always gives the same bytes."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        return cls.model_validate_json(text)


def canonical_json(value: JSONValue) -> str:
    """Compact JSON with sorted keys: the form every digest is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_digest(value: JSONValue) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def max_risk(risks: list[str] | tuple[str, ...]) -> Risk:
    best: Risk = "low"
    for risk in risks:
        if RISK_ORDER.get(risk, 0) > RISK_ORDER[best]:
            best = risk  # type: ignore[assignment]
    return best
