"""The gate every plan passes before anything runs, whoever made it.

Checks, in order, and reports every finding (not just the first):
  1. each step's tool exists in the registry's catalogue and belongs to a
     namespace the domain may use, and is a write tool (plans change things);
  2. each step's input, and each batched call the engine will send from the
     steps, validates against the tool's input JSON Schema;
  3. risk policy: a step the domain's effect model calls destructive runs only
     if every spec item it touches has `force: true` — `--yes` never counts;
  4. simulation: the domain's effect model applies the steps to the observed
     state, and diffing the desired state against that prediction must leave
     no change (so a dropped step or a mutated input is caught).
The verdict also says which steps the findings name (`blamed_steps`), so
the engine can attribute a refusal to the resources those steps serve. Pure:
no I/O. Used by reconciler.engine.planning on every plan that can run — the
rules planner's, a saved plan's (which runs only when it equals a fresh,
verified one) and, later, the LLM planner's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from contract.tooldef import ToolSpec
from reconciler.sdk.controller import Controller, Desired
from reconciler.sdk.plan import Change, Step, canonical_digest, canonical_json
from reconciler.sdk.ports import Cache

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True)
class Verdict:
    """What the verifier found; a plan runs only when `ok`."""

    findings: tuple[str, ...] = ()
    destructive: tuple[str, ...] = ()  # destructive steps without force: true
    residual: tuple[Change, ...] = ()  # what the simulated state still misses
    blamed_steps: tuple[int, ...] = ()  # 0-based indexes of the steps a finding names

    @property
    def ok(self) -> bool:
        return not self.findings and not self.destructive


def verify_plan(
    controller: Controller[Any],
    desired: Desired,
    state: BaseModel,
    steps: Sequence[Step],
    catalogue: Mapping[str, ToolSpec],
    *,
    planned_resources: frozenset[str],
    memo: Cache | None = None,
) -> Verdict:
    """Check `steps` against the catalogue, the risk policy and the effect model.

    `planned_resources`: keys of the resources whose changes the plan must
    satisfy (resources in audit or propose mode are diffed but not planned).
    `memo`: a persistent cache; an input already found valid against the same
    schema is not walked again (re-applying a 10,000-rule table repeats it).
    """
    findings: list[str] = []
    destructive: list[str] = []
    blamed: set[int] = set()
    for number, step in enumerate(steps, start=1):
        spec = catalogue.get(step.tool)
        where = f"step {number} ({step.tool})"
        before = len(findings) + len(destructive)
        if spec is None:
            findings.append(f"{where}: the registry has no such tool")
            blamed.add(number - 1)
            continue
        if spec.namespace not in controller.namespaces:
            findings.append(
                f"{where}: namespace {spec.namespace} is not allowed for the "
                f"{controller.domain} domain (allowed: {', '.join(controller.namespaces)})"
            )
        if not spec.writes:
            findings.append(f"{where}: a read-only tool has no place in a plan")
        findings.extend(f"{where}: {e}" for e in schema_errors(spec, step.input, memo))
        reason = controller.destructive(state, step)
        if reason and not controller.forced(desired, step):
            destructive.append(
                f"{where} is destructive ({reason}); only `force: true` on the spec item "
                "allows it — --yes does not"
            )
        if len(findings) + len(destructive) > before:
            blamed.add(number - 1)
    for call in controller.transactions(steps):
        spec = catalogue.get(call.tool)
        if spec is None:
            findings.append(f"batched call {call.tool}: the registry has no such tool")
            blamed.update(call.steps)
        elif len(call.steps) != 1 or steps[call.steps[0]].tool != call.tool:
            errors = schema_errors(spec, call.input, memo)
            findings.extend(f"batched {call.tool}: {e}" for e in errors)
            if errors:
                blamed.update(call.steps)
    residual: tuple[Change, ...] = ()
    if not findings:
        try:
            predicted = controller.simulate(state, steps)
        except Exception as exc:  # an effect model refusing a step is a finding, not a crash
            findings.append(f"simulation: cannot predict the effect of this plan: {exc}")
        else:
            residual = tuple(
                c
                for c in controller.diff(desired, predicted).changes
                if c.resource in planned_resources
            )
            if residual:
                missing = "; ".join(describe(c) for c in residual[:10])
                more = f" (+{len(residual) - 10} more)" if len(residual) > 10 else ""
                findings.append(
                    f"simulation: the plan does not reach the desired state: {missing}{more}"
                )
    return Verdict(tuple(findings), tuple(destructive), residual, tuple(sorted(blamed)))


def describe(change: Change) -> str:
    what = f"{change.object}.{change.field}" if change.field else change.object
    if change.op == "change":
        return f"{what}: {short(change.old)} -> {short(change.new)}"
    return f"{change.op} {what}"


def short(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def schema_errors(spec: ToolSpec, value: Mapping[str, Any], memo: Cache | None = None) -> list[str]:
    """JSON Schema errors as `$.path: message`; empty schema: nothing to check."""
    if not spec.input_schema:
        return []
    schema_json = _schema_json(spec)
    key = ""
    if memo is not None:
        key = "schema-ok:" + canonical_digest([schema_json, value])
        if memo.cache_get(key) == "1":
            return []
    validator = _validator(schema_json)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors and memo is not None:
        memo.cache_put(key, "1")
    return [f"{json_path(e.absolute_path)}: {e.message}" for e in errors[:20]]


_SCHEMA_JSON: dict[int, tuple[ToolSpec, str]] = {}


def _schema_json(spec: ToolSpec) -> str:
    """The canonical JSON of a tool's input schema, computed once per ToolSpec."""
    cached = _SCHEMA_JSON.get(id(spec))
    if cached is None or cached[0] is not spec:
        cached = _SCHEMA_JSON[id(spec)] = (spec, canonical_json(spec.input_schema))
    return cached[1]


def json_path(parts: Sequence[object]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    import json

    from contract import schemacheck

    return schemacheck.validator(json.loads(schema_json))
