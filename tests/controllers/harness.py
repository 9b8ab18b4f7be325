"""Table-driven fixtures for controllers: one runner shape for every domain.

A plan case is a YAML file:

    description: what the case shows
    specs: |            # spec documents (YAML text), as an operator writes them
      apiVersion: aios.dev/v1
      ...
    owned: {Network/lan: [link:br0]}   # optional inventory (what aios created)
    pruned: {Network/old: [link:x]}    # optional: resources removed with --prune
    state: {...}        # the observed state, as the controller's state model JSON
    expect:
      changes: [{resource, object, op, field?, old?, new?, destructive?}]  # exact list,
                        # each entry compared on the keys it gives
      steps: [{tool, input}]           # exact list (tool and input compared whole)
      noops: [{object, reason?}]       # optional, compared on the keys given
      destructive: true                # optional: the verifier refuses it (no force)

`run_plan_case` checks diff -> changes, plan -> steps, and that the verifier
accepts the plan (schema, allowlist, simulation: diff(desired,
simulate(state, steps)) is empty) — then the mutation checks: dropping any
one step, or changing any one scalar of any step's input, must make the
verifier reject the plan. An observe case is:

    reads: [{tool, args?, output}]     # recorded registry outputs
    specs: | ...                       # optional desired specs (observe may read by them)
    cache: {key: value}                # optional: the reader's persistent cache at the start
    calls: [tool, ...]                 # optional: the exact tools observe must call, in order
    expect: {...}                      # the parsed state, compared whole

Mismatches print GOT/WANT as YAML.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from contract.catalogue import catalogue as tool_catalogue
from reconciler.engine.verify import verify_plan
from reconciler.sdk.controller import Controller, Desired
from reconciler.sdk.plan import Step
from specs.loader import load_documents

_yaml = YAML(typ="safe", pure=True)


def load_case(path: Path) -> dict[str, Any]:
    data = _yaml.load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: a case is a mapping"
    return data


def cases(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def dump(value: Any) -> str:
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(value, out)
    return out.getvalue()


def desired_from(case: Mapping[str, Any], controller: Controller[Any]) -> Desired:
    resources: tuple[Any, ...] = ()
    if case.get("specs"):
        specset = load_documents([("case.yaml", case["specs"].encode())])
        resources = tuple(r for r in specset.resources if r.kind in controller.kinds)
    return Desired(
        domain=controller.domain,
        resources=resources,
        owned={k: frozenset(v) for k, v in (case.get("owned") or {}).items()},
        pruned={k: frozenset(v) for k, v in (case.get("pruned") or {}).items()},
    )


def _subset(got: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    return all(got.get(k) == v for k, v in want.items())


def _compare_list(label: str, got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    ok = len(got) == len(want) and all(_subset(g, w) for g, w in zip(got, want, strict=True))
    assert ok, f"{label} differ\n--- GOT ---\n{dump(got)}--- WANT ---\n{dump(want)}"


def run_plan_case(controller: Controller[Any], path: Path) -> None:
    case = load_case(path)
    desired = desired_from(case, controller)
    state = controller.state_model.model_validate(case["state"])
    expect = case["expect"]
    diff = controller.diff(desired, state)
    changes = [c.model_dump(mode="json") for c in diff.changes]
    _compare_list(f"{path.name}: changes", changes, expect.get("changes", []))
    if "noops" in expect:
        _compare_list(
            f"{path.name}: noops", [n.model_dump(mode="json") for n in diff.noops], expect["noops"]
        )
    steps = controller.plan(diff, desired, state) if diff.changes else ()
    got_steps = [{"tool": s.tool, "input": s.input} for s in steps]
    assert got_steps == expect.get("steps", []), (
        f"{path.name}: steps differ\n--- GOT ---\n{dump(got_steps)}"
        f"--- WANT ---\n{dump(expect.get('steps', []))}"
    )
    catalogue = tool_catalogue()
    planned = frozenset(r.key for r in desired.resources) | frozenset(desired.pruned)
    verdict = verify_plan(controller, desired, state, steps, catalogue, planned_resources=planned)
    if expect.get("destructive"):
        assert verdict.destructive, f"{path.name}: expected a destructive refusal"
        return
    assert verdict.ok, f"{path.name}: verifier rejected the rules plan: {verdict.findings}"
    for label, mutated in mutations(steps):
        bad = verify_plan(controller, desired, state, mutated, catalogue, planned_resources=planned)
        assert not bad.ok, f"{path.name}: verifier accepted a plan with {label}"


def mutations(steps: tuple[Step, ...]) -> Iterator[tuple[str, tuple[Step, ...]]]:
    """Every plan with one step dropped, and with one scalar of one input changed."""
    for i in range(len(steps)):
        yield f"step {i + 1} ({steps[i].tool}) dropped", steps[:i] + steps[i + 1 :]
    for i, step in enumerate(steps):
        for path, value in _leaves(step.input):
            for new in _other_values(value):
                changed = copy.deepcopy(step.input)
                _set(changed, path, new)
                mutated = step.model_copy(update={"input": changed})
                label = f"step {i + 1} ({step.tool}) input {'.'.join(map(str, path))}={new!r}"
                yield label, (*steps[:i], mutated, *steps[i + 1 :])


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _other_values(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1]
    if isinstance(value, str):
        return [value + "x"] if value else ["x"]
    if value is None:
        return []
    return []


def _set(target: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


class RecordedReader:
    """A StateReader that answers from recorded registry outputs (observe cases)."""

    def __init__(self, reads: list[dict[str, Any]], cache: Mapping[str, str] | None = None) -> None:
        self._reads = reads
        self.calls: list[str] = []
        self.cache: dict[str, str] = dict(cache or {})

    def cache_get(self, key: str) -> str | None:
        return self.cache.get(key)

    def cache_put(self, key: str, value: str) -> None:
        self.cache[key] = value

    def has_tool(self, tool: str) -> bool:
        return any(r["tool"] == tool for r in self._reads)

    async def read(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append(tool)
        for read in self._reads:
            if read["tool"] == tool and ("args" not in read or read["args"] == dict(args)):
                return dict(read["output"])
        raise AssertionError(f"no recorded output for {tool} {dict(args)}")


async def run_observe_case(controller: Controller[Any], path: Path) -> None:
    case = load_case(path)
    desired = desired_from(case, controller)
    reader = RecordedReader(case["reads"], case.get("cache"))
    state = await controller.observe(reader, desired)
    if "calls" in case:
        assert reader.calls == case["calls"], (
            f"{path.name}: observe called {reader.calls}, expected {case['calls']}"
        )
    got = state.model_dump(mode="json")
    assert got == case["expect"], (
        f"{path.name}: observed state differs\n--- GOT ---\n{dump(got)}"
        f"--- WANT ---\n{dump(case['expect'])}"
    )
