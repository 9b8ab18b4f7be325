"""The one shape every domain controller has, and what the engine hands it.

A controller (controllers/<domain>/) is a `Controller` subclass with
(abstract: observe, diff, plan, simulate, export):
  observe(reader, desired) -> state   registry reads only (the reader refuses writes)
  diff(desired, state) -> Diff         pure: changes + no-op reasons (built with
                                       reconciler.sdk.diffing.Collector; undeclared
                                       objects chosen by reconciler.sdk.removals)
  plan(diff, desired, state) -> steps  pure rules planner, safe order (the engine
                                       stamps each step's risk from the catalogue)
  simulate(state, steps) -> state      pure effect model (controllers/<d>/effects.py,
                                       which must not import specs)
  destructive(state, step) -> reason   why a step destroys data, independent of the
                                       planner's own flags (the verifier asks)
  forced(desired, step) -> bool        whether the spec items a destructive step
                                       touches carry `force: true`
  export(state) -> documents          the observed state as spec documents
The engine (reconciler.engine) runs them in dependency order: observe once,
diff, plan, verify (schema, allowlist, risk, simulate: diff(desired,
simulate(state, steps)) must be empty), execute, re-observe, diff again.
State models are frozen pydantic models (reconciler.sdk.plan.Frozen) whose
JSON dump is the fingerprint and what `aios get` prints.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from contract.tooldef import JSON as JSON  # controllers import it from here
from reconciler.sdk.plan import Change, NoOp, Step, canonical_digest
from reconciler.sdk.ports import StateReader as StateReader  # controllers import it from here
from specs.base import Resource


@dataclass(frozen=True)
class Desired:
    """What one domain should look like, plus what aios owns.

    `resources`: the resources of this domain's kinds in the target's set.
    `owned`: resource key -> object keys aios created for that resource (the
    inventory); an owned object the resource no longer declares is removed
    (reconciler.sdk.removals: owned before pruned, and only for resources in
    the set).
    `pruned`: resources being removed with `--prune` -> object keys they
    created; those objects are removed (their changes name the pruned key as
    their resource).
    `approved`: resources in `propose` mode whose changes an operator approved
    (`aios approve`): planned as if their mode were enforce.
    `held`: resources the daemon holds (`aios suspend`): diffed, never planned.
    """

    domain: str
    resources: tuple[Resource, ...]
    owned: Mapping[str, frozenset[str]] = field(default_factory=dict)
    pruned: Mapping[str, frozenset[str]] = field(default_factory=dict)
    approved: frozenset[str] = frozenset()
    held: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Diff:
    changes: tuple[Change, ...] = ()
    noops: tuple[NoOp, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes


@dataclass(frozen=True)
class Call:
    """A registry call the engine makes; `steps` indexes the plan steps it runs."""

    tool: str
    input: Mapping[str, Any]
    steps: tuple[int, ...]


StateT = TypeVar("StateT", bound=BaseModel)


class Controller(ABC, Generic[StateT]):
    """Base class of the domain controllers.

    observe, diff, plan, simulate and export are abstract: a subclass that
    leaves one out cannot be instantiated, and mypy reports it where the
    class is instantiated. The rest have defaults a domain may override.
    """

    domain: ClassVar[str]  # "network", "firewall", "packages", "storage", "models"
    kinds: ClassVar[tuple[str, ...]]  # spec kinds this controller reconciles
    namespaces: ClassVar[tuple[str, ...]]  # tool namespaces its plans may use
    state_model: ClassVar[type[BaseModel]]
    # Which domains' changes make the engine observe and plan this one again is the
    # declaration's `observes_changes_of` (specs.domains.Domain), read by the engine.

    @abstractmethod
    async def observe(self, reader: StateReader, desired: Desired) -> StateT:
        """The actual state, read through `reader` (registry reads only)."""

    @abstractmethod
    def diff(self, desired: Desired, state: StateT) -> Diff:
        """Changes from `state` to `desired`, and why the rest needs nothing. Pure."""

    @abstractmethod
    def plan(self, diff: Diff, desired: Desired, state: StateT) -> tuple[Step, ...]:
        """Steps that make `diff`'s changes, in a safe order. Pure. The engine fills
        each step's `risk` from the live catalogue (the planner leaves it)."""

    @abstractmethod
    def simulate(self, state: StateT, steps: Sequence[Step]) -> StateT:
        """The state `steps` would leave (the domain's effect model). Pure."""

    def destructive(self, state: StateT, step: Step) -> str | None:
        """Why `step` destroys data on `state` (None: it does not)."""
        return None

    def forced(self, desired: Desired, step: Step) -> bool:
        """True when every spec item a destructive `step` touches has force: true."""
        return False

    @abstractmethod
    def export(self, state: StateT) -> list[JSON]:
        """The observed state as spec documents (dicts in YAML key names)."""

    def scope(self, state: StateT, resources: Sequence[Resource]) -> JSON:
        """The part of `state` the given resources declare (`aios get KIND NAME`)."""
        return state.model_dump(mode="json")

    def fingerprint(self, state: StateT) -> str:
        return canonical_digest(state.model_dump(mode="json"))

    def transactions(self, steps: Sequence[Step]) -> tuple[Call, ...]:
        """How steps run: one call per step unless the domain batches them.

        The network controller folds its steps into one all-or-nothing
        `net.apply`, the firewall controller its tables into one
        `firewall.apply`; the verifier checks these calls too.
        """
        return tuple(Call(s.tool, s.input, (i,)) for i, s in enumerate(steps))

    def created(self, change: Change) -> bool:
        """Whether applying `change` makes aios the creator (inventory) of its object."""
        return change.op == "add" and not change.field
