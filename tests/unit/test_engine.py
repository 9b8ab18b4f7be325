"""The engine with toy controllers and an in-memory registry (a named double).

The toy "network" controller manages sysctls of Network specs as key/value
pairs in a fake registry; the toy "firewall" controller does the same for
Firewall table names. The double registry executes `toy.set`/`toy.del`,
supports Rollback, and can be told to fail a key. This proves the engine's
own logic — generations, status, inventory and prune, undo on failure,
destructive refusal, stale saved plans, audit mode, dependency waits —
independently of the real controllers (which have their own system tests).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from contract.tooldef import ToolSpec
from controllers import DEFAULT_DOMAINS
from reconciler.engine import reconcile
from reconciler.engine.reconcile import Engine, Target, load_generation
from reconciler.engine.store import Store
from reconciler.sdk.controller import Controller, Desired, Diff, StateReader
from reconciler.sdk.errors import PermanentError, RegistryUnavailable, ToolFailed
from reconciler.sdk.plan import Change, NoOp, Step
from specs.domains import Domains
from specs.loader import load_documents
from specs.specset import SpecSet

KEY_SCHEMA = {
    "type": "object",
    "properties": {
        "space": {"type": "string"},
        "key": {"type": "string"},
        "value": {"type": "string"},
    },
    "required": ["space", "key"],
    "additionalProperties": False,
}
CATALOGUE = {
    "toy.state": ToolSpec(
        "toy.state", "read", {"type": "object"}, {}, "low", True, False, 1000, ("net_read",)
    ),
    "toy.set": ToolSpec(
        "toy.set", "set", KEY_SCHEMA, {}, "medium", True, True, 1000, ("net_write",)
    ),
    "toy.del": ToolSpec(
        "toy.del", "delete", KEY_SCHEMA, {}, "high", True, True, 1000, ("net_write",)
    ),
}


@dataclass
class Result:
    output: dict[str, Any]
    execution_id: str


class FakeRegistry:
    """In-memory double of the registry client: spaces of key/value pairs."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {"network": {}, "firewall": {}}
        self.fail_keys: set[str] = set()
        self.on_write: Callable[[str, Mapping[str, Any]], None] | None = None
        self.writes = 0
        self.backups: dict[str, tuple[str, str, str | None]] = {}
        self.rolled_back: list[str] = []
        self.reads: list[str] = []

    async def list_tools(self) -> dict[str, ToolSpec]:
        return dict(CATALOGUE)

    async def call(
        self,
        tool: str,
        args: Mapping[str, Any],
        *,
        reason: str,
        on_progress: Callable[[int, int, str], None] | None = None,
    ) -> Result:
        space = self.data.setdefault(str(args.get("space", "network")), {})
        if tool == "toy.state":
            self.reads.append(str(args.get("space")))
            return Result({"values": dict(space)}, "")
        key = str(args["key"])
        if self.on_write is not None:
            self.on_write(tool, args)
        if key in self.fail_keys:
            raise ToolFailed(f"{tool} {key}: injected failure")
        self.writes += 1
        execution = f"x{self.writes}"
        self.backups[execution] = (str(args["space"]), key, space.get(key))
        if tool == "toy.set":
            space[key] = str(args["value"])
        else:
            space.pop(key, None)
        return Result({}, execution)

    async def rollback(self, execution_id: str, reason: str) -> None:
        space, key, old = self.backups.pop(execution_id)
        if old is None:
            self.data[space].pop(key, None)
        else:
            self.data[space][key] = old
        self.rolled_back.append(execution_id)


class ToyState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    values: dict[str, str]


class ToyController(Controller[ToyState]):
    """Manages `spec.sysctls` (Network) or table names (Firewall) as key/values."""

    namespaces: ClassVar[tuple[str, ...]] = ("toy",)
    state_model = ToyState

    def __init__(self, domain: str, kind: str) -> None:
        self.domain = domain  # type: ignore[misc]
        self.kinds = (kind,)  # type: ignore[misc]

    def _wanted(self, desired: Desired) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for r in desired.resources:
            spec = r.spec
            if self.domain == "network":
                for key, value in spec.sysctls.items():  # type: ignore[attr-defined]
                    out[key] = (value, r.key)
            else:
                for table in spec.tables:  # type: ignore[attr-defined]
                    out[table.name] = (table.family, r.key)
        return out

    async def observe(self, reader: StateReader, desired: Desired) -> ToyState:
        out = await reader.read("toy.state", {"space": self.domain})
        for key, (value, owner) in sorted(self._wanted(desired).items()):
            if value == "unobservable":  # a resource whose observation fails
                raise ToolFailed(f"toy.state: cannot read {key} for {owner}")
            if value == "flaky":
                raise RegistryUnavailable(f"toy.state: registry gone while reading {key}")
        return ToyState(values=out["values"])

    def diff(self, desired: Desired, state: ToyState) -> Diff:
        changes: list[Change] = []
        noops: list[NoOp] = []
        wanted = self._wanted(desired)
        for key, (value, owner) in sorted(wanted.items()):
            obj = f"kv:{key}"
            if key not in state.values:
                changes.append(
                    Change(
                        id=Change.make_id(owner, obj),
                        resource=owner,
                        object=obj,
                        op="add",
                        new=value,
                    )
                )
            elif state.values[key] != value:
                destructive = value == "destroy"
                forced = destructive and desired_force(desired, owner)
                changes.append(
                    Change(
                        id=Change.make_id(owner, obj, "value"),
                        resource=owner,
                        object=obj,
                        op="change",
                        field="value",
                        old=state.values[key],
                        new=value,
                        destructive=destructive,
                        forced=forced,
                    )
                )
            else:
                noops.append(NoOp(resource=owner, object=obj, reason=f"{key} is {value}"))
        for owner, objects in [*desired.owned.items(), *desired.pruned.items()]:
            for obj in sorted(objects):
                key = obj.removeprefix("kv:")
                if key not in wanted and key in state.values:
                    changes.append(
                        Change(
                            id=Change.make_id(owner, obj),
                            resource=owner,
                            object=obj,
                            op="remove",
                            old=state.values[key],
                        )
                    )
        return Diff(tuple(changes), tuple(noops))

    def plan(self, diff: Diff, desired: Desired, state: ToyState) -> tuple[Step, ...]:
        steps = []
        for c in diff.changes:
            key = c.object.removeprefix("kv:")
            if c.new == "unplannable":  # a resource the rules planner cannot plan
                raise PermanentError(f"no rule can set {key} to unplannable")
            if c.new == "badtool":  # a plan the verifier must refuse
                steps.append(
                    Step(tool="toy.nope", input={}, reason=f"set {key}", satisfies=(c.id,))
                )
                continue
            if c.op == "remove":
                steps.append(
                    Step(
                        tool="toy.del",
                        input={"space": self.domain, "key": key},
                        reason=f"remove {key}",
                        satisfies=(c.id,),
                        risk="high",
                    )
                )
            else:
                steps.append(
                    Step(
                        tool="toy.set",
                        input={"space": self.domain, "key": key, "value": c.new},
                        reason=f"set {key}",
                        satisfies=(c.id,),
                        risk="medium",
                    )
                )
        return tuple(steps)

    def simulate(self, state: ToyState, steps: Sequence[Step]) -> ToyState:
        values = dict(state.values)
        for s in steps:
            if s.tool == "toy.set":
                values[s.input["key"]] = s.input["value"]
            elif s.tool == "toy.del":
                values.pop(s.input["key"], None)
            else:
                raise ValueError(f"cannot simulate {s.tool}")
        return ToyState(values=values)

    def destructive(self, state: ToyState, step: Step) -> str | None:
        if step.tool == "toy.set" and step.input.get("value") == "destroy":
            return f"overwrites {step.input['key']}"
        return None

    def forced(self, desired: Desired, step: Step) -> bool:
        return any(r.metadata.annotations.get("force") == "true" for r in desired.resources)

    def export(self, state: ToyState) -> list[dict[str, Any]]:
        return []


def desired_force(desired: Desired, owner: str) -> bool:
    return any(
        r.key == owner and r.metadata.annotations.get("force") == "true" for r in desired.resources
    )


def network(
    name: str,
    sysctls: dict[str, str],
    *,
    mode: str = "enforce",
    force: bool = False,
    depends: str = "",
    prune: bool = False,
) -> str:
    lines = [f"apiVersion: aios.dev/v1\nkind: Network\nmetadata:\n  name: {name}"]
    if force:
        lines.append('  annotations: {force: "true"}')
    if depends:
        lines.append(f"  dependsOn: [{depends}]")
    body = "\n".join(f"    {k}: '{v}'" for k, v in sysctls.items())
    head = f"spec:\n  mode: {mode}" + ("\n  prune: true" if prune else "")
    lines.append(f"{head}\n  sysctls:\n{body}" if sysctls else head)
    return "\n".join(lines) + "\n"


def firewall(name: str, table: str) -> str:
    return (
        f"apiVersion: aios.dev/v1\nkind: Firewall\nmetadata:\n  name: {name}\nspec:\n"
        f"  tables:\n    - name: {table}\n"
    )


def specset(*docs: str) -> SpecSet:
    return load_documents([(f"doc{i}.yaml", d.encode()) for i, d in enumerate(docs)])



class Sleeps:
    """The engine's injected sleep (a double): records each wait, never sleeps."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    controllers: dict[str, Controller[Any]] = {
        "network": ToyController("network", "Network"),
        "firewall": ToyController("firewall", "Firewall"),
    }
    target = Target(name="toy", address="memory", state_dir=tmp_path / "state")
    return Engine(target, Store(target.state_dir), FakeRegistry(), controllers, DEFAULT_DOMAINS)


def observing(engine: Engine, domain: str, observes: frozenset[str]) -> None:
    """Make `domain` observe changes of `observes`: the engine reads its declaration."""
    engine.domains = Domains(
        dataclasses.replace(d, observes_changes_of=observes) if d.name == domain else d
        for d in engine.domains
    )


def fake(engine: Engine) -> FakeRegistry:
    assert isinstance(engine.client, FakeRegistry)
    return engine.client


async def apply(engine: Engine, specs: SpecSet | None, **kw: Any) -> Any:
    prune = kw.pop("prune", False)
    replace = kw.pop("replace", False)
    planned = await engine.plan(engine.merge(specs, prune=prune, replace=replace))
    return await engine.apply(planned, assume_yes=True, **kw)


async def test_converge_then_noop(engine: Engine) -> None:
    s = specset(network("lan", {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "2"}))
    planned = await engine.plan(engine.merge(s))
    assert planned.plan.has_changes and len(planned.plan.domains[0].steps) == 2
    result = await engine.apply(planned, assume_yes=True)
    assert result.all_ready and result.generation == 1
    assert fake(engine).data["network"] == {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.conf.all.rp_filter": "2",
    }
    writes = fake(engine).writes
    again = await apply(engine, s)
    assert again.all_ready and again.generation == 1
    assert fake(engine).writes == writes, "a no-op apply made write calls"
    status = engine.store.status("toy", "Network/lan")
    assert status is not None and status.ready and len(status.history) == 2
    assert [h["reason"] for h in status.history] == ["UpToDate", "Reconciled"]


async def test_failed_step_rolls_back_earlier_calls(engine: Engine) -> None:
    fake(engine).data["network"]["net.a"] = "old"
    fake(engine).fail_keys.add("net.c")
    result = await apply(
        engine, specset(network("lan", {"net.a": "new", "net.b": "1", "net.c": "1"}))
    )
    assert not result.all_ready
    assert fake(engine).data["network"] == {"net.a": "old"}, "earlier calls were not undone"
    assert len(fake(engine).rolled_back) == 2
    report = next(r for r in result.reports if r.resource == "Network/lan")
    assert report.outcome == "degraded" and "rolled back" in report.message
    status = engine.store.status("toy", "Network/lan")
    assert status is not None and not status.ready
    assert status.condition("Degraded")["status"] == "True"  # type: ignore[index]


async def test_destructive_needs_force(engine: Engine) -> None:
    fake(engine).data["network"]["net.a"] = "keep"
    refused = await apply(engine, specset(network("lan", {"net.a": "destroy"})))
    assert refused.destructive_refused == ["network"]
    assert fake(engine).data["network"]["net.a"] == "keep" and fake(engine).writes == 0
    forced = await apply(engine, specset(network("lan", {"net.a": "destroy"}, force=True)))
    assert forced.all_ready and fake(engine).data["network"]["net.a"] == "destroy"


async def test_saved_plan_is_refused_when_state_moved(engine: Engine) -> None:
    s = specset(network("lan", {"net.a": "1"}))
    saved = (await engine.plan(engine.merge(s))).plan
    fake(engine).data["network"]["net.zzz"] = "drift"  # the observed state changes
    planned = await engine.plan(engine.merge(s))
    result = await engine.apply(planned, assume_yes=True, saved=saved)
    assert result.stale == ["network"] and fake(engine).writes == 0
    other = specset(network("lan", {"net.a": "2"}))
    with pytest.raises(Exception, match="spec digest"):
        engine.check_binding(saved, await engine.plan(engine.merge(other)))


async def test_apply_keeps_absent_resources_and_prune_removes_what_they_created(
    engine: Engine,
) -> None:
    fake(engine).data["network"]["net.byhand"] = "1"
    await apply(engine, specset(network("a", {"net.a": "1"}), network("b", {"net.b": "1"})))
    kept = await apply(engine, specset(network("a", {"net.a": "1"})))
    assert kept.all_ready and "net.b" in fake(engine).data["network"]
    assert {s.resource for s in engine.store.statuses("toy")} == {"Network/a", "Network/b"}
    pruned = await apply(engine, specset(network("a", {"net.a": "1"})), prune=True)
    assert pruned.all_ready
    assert fake(engine).data["network"] == {"net.a": "1", "net.byhand": "1"}
    assert {s.resource for s in engine.store.statuses("toy")} == {"Network/a"}
    assert [
        r.key for r in load_generation(engine.store.current_generation("toy"), engine.domains.kinds)
    ] == ["Network/a"]


async def test_owned_object_dropped_from_spec_is_removed(engine: Engine) -> None:
    await apply(engine, specset(network("a", {"net.a": "1", "net.b": "1"})))
    result = await apply(engine, specset(network("a", {"net.a": "1"})))
    assert result.all_ready and fake(engine).data["network"] == {"net.a": "1"}


async def test_audit_mode_reports_drift_without_writing(engine: Engine) -> None:
    result = await apply(engine, specset(network("lan", {"net.a": "1"}, mode="audit")))
    assert fake(engine).writes == 0
    report = result.reports[0]
    assert report.outcome == "drifted" and report.reason == "DriftDetected"
    assert not result.all_ready


async def test_dependent_domain_waits_for_a_failed_one(engine: Engine) -> None:
    fake(engine).fail_keys.add("net.a")
    result = await apply(
        engine, specset(network("lan", {"net.a": "1"}), firewall("edge", "filter"))
    )
    by = {r.resource: r for r in result.reports}
    assert by["Network/lan"].outcome == "degraded"
    assert by["Firewall/edge"].outcome == "stalled"
    assert by["Firewall/edge"].reason == "DependencyNotReady"
    assert "filter" not in fake(engine).data["firewall"]


async def test_independent_domains_both_run(engine: Engine) -> None:
    result = await apply(
        engine, specset(network("lan", {"net.a": "1"}), firewall("edge", "filter"))
    )
    assert result.all_ready and fake(engine).data["firewall"] == {"filter": "inet"}


async def test_rollback_to_an_earlier_generation(engine: Engine) -> None:
    await apply(engine, specset(network("lan", {"net.a": "1"})))
    await apply(engine, specset(network("lan", {"net.a": "2"}), network("x", {"net.x": "1"})))
    assert engine.store.current_generation("toy").generation == 2  # type: ignore[union-attr]
    first = engine.store.generation("toy", 1)
    again = SpecSet.from_resources(tuple(load_generation(first, engine.domains.kinds)))
    result = await apply(engine, again, replace=True)
    assert result.all_ready and result.generation == 3
    assert fake(engine).data["network"] == {"net.a": "1"}


async def test_unchanged_set_does_not_bump_the_generation(engine: Engine) -> None:
    s = specset(network("lan", {"net.a": "1"}))
    first = await apply(engine, s)
    second = await apply(engine, specset(network("lan", {"net.a": "1"})))
    assert first.generation == second.generation == 1


def test_plan_is_byte_identical_for_the_same_inputs(engine: Engine) -> None:
    s = specset(network("lan", {"net.b": "1", "net.a": "2"}))
    one = asyncio.run(engine.plan(engine.merge(s))).plan.to_json()
    two = asyncio.run(engine.plan(engine.merge(s))).plan.to_json()
    assert one == two


async def test_merge_rebuilds_only_stored_resources_the_applied_set_does_not_replace(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await apply(engine, specset(network("lan", {"net.a": "1"}), firewall("fw", "filter")))
    rebuilt: list[str] = []
    real = reconcile.load_document

    def counting(doc: Any, *kinds: Any) -> Any:
        rebuilt.append(f"{doc['kind']}/{doc['metadata']['name']}")
        return real(doc, *kinds)

    monkeypatch.setattr(reconcile, "load_document", counting)
    merge = engine.merge(specset(network("lan", {"net.a": "2"})))
    assert rebuilt == ["Firewall/fw"]  # the stored Network/lan is replaced, not revalidated
    assert [r.key for r in merge.specset.resources] == ["Firewall/fw", "Network/lan"]
    rebuilt.clear()
    assert list(engine.merge(specset(network("lan", {})), prune=True).pruned) == ["Firewall/fw"]
    assert rebuilt == []


@pytest.mark.parametrize("observes", [frozenset(), frozenset({"network"})])
async def test_a_domain_is_replanned_only_when_it_observes_a_changed_dependency(
    engine: Engine, observes: frozenset[str]
) -> None:
    observing(engine, "firewall", observes)
    result = await apply(
        engine, specset(network("lan", {"net.a": "1"}), firewall("edge", "filter"))
    )
    assert result.all_ready
    # plan + verify-after, and one more observe before executing when it depends
    assert fake(engine).reads.count("firewall") == (3 if observes else 2)


# --- errors belong to the resource that causes them; failed specs never poison --------


def by_resource(result: Any) -> dict[str, Any]:
    return {r.resource: r for r in result.reports}


@pytest.mark.parametrize(
    ("value", "reason", "words"),
    [
        ("unobservable", "ToolFailed", "cannot read net.bad for Network/bad"),
        ("unplannable", "PermanentError", "no rule can set net.bad to unplannable"),
        ("badtool", "PlanRejected", "step 1 (toy.nope): the registry has no such tool"),
    ],
)
async def test_a_resource_that_cannot_be_planned_is_left_out_with_its_own_error(
    engine: Engine, value: str, reason: str, words: str
) -> None:
    specs = specset(network("good", {"net.good": "1"}), network("bad", {"net.bad": value}))
    planned = await engine.plan(engine.merge(specs))
    failures = planned.plan.failures
    assert [(f.domain, f.resource, f.reason) for f in failures] == [
        ("network", "Network/bad", reason)
    ]
    assert words in failures[0].message
    assert planned.plan.domain("network").resources == ("Network/good",)  # type: ignore[union-attr]
    result = await engine.apply(planned, assume_yes=True)
    reports = by_resource(result)
    assert reports["Network/good"].outcome == "ready", reports["Network/good"]
    assert reports["Network/bad"].outcome == "stalled"
    assert reports["Network/bad"].reason == reason and words in reports["Network/bad"].message
    assert fake(engine).data["network"] == {"net.good": "1"}
    # The generation holds what took effect: the bad resource is not in it ...
    current = engine.store.current_generation("toy")
    assert current is not None and [
        r.key for r in load_generation(current, engine.domains.kinds)
    ] == ["Network/good"]
    # ... so a later apply of other specs plans from that set and is not poisoned,
    later = await apply(engine, specset(network("other", {"net.other": "1"})))
    assert later.all_ready, [(r.resource, r.reason, r.message) for r in later.reports]
    assert {r.resource for r in later.reports} == {"Network/good", "Network/other"}
    # and the failed resource's status (it is in no generation) is gone.
    assert {s.resource for s in engine.store.statuses("toy")} == {"Network/good", "Network/other"}


async def test_a_failed_change_keeps_the_previous_spec_in_the_generation(engine: Engine) -> None:
    await apply(engine, specset(network("a", {"net.a": "1"}), network("b", {"net.b": "1"})))
    failed = await apply(engine, specset(network("b", {"net.b": "unplannable"})))
    assert by_resource(failed)["Network/b"].outcome == "stalled"
    assert by_resource(failed)["Network/a"].outcome == "ready"
    assert failed.generation == 1, "nothing new took effect: no new generation"
    stored = load_generation(engine.store.current_generation("toy"), engine.domains.kinds)
    assert [r.spec.sysctls for r in stored] == [{"net.a": "1"}, {"net.b": "1"}]  # type: ignore[attr-defined]
    again = await apply(engine, specset(network("c", {"net.c": "1"})))
    assert again.all_ready and again.generation == 2
    assert fake(engine).data["network"] == {"net.a": "1", "net.b": "1", "net.c": "1"}


async def test_rollback_never_replays_a_spec_that_did_not_apply(engine: Engine) -> None:
    await apply(engine, specset(network("a", {"net.a": "1"})))
    await apply(engine, specset(network("b", {"net.b": "1"})))
    bad = specset(network("a", {"net.a": "2"}), network("x", {"net.x": "unplannable"}))
    assert by_resource(await apply(engine, bad))["Network/x"].outcome == "stalled"
    assert [g.generation for g in engine.store.generations("toy")] == [1, 2, 3]
    assert [
        r.key for r in load_generation(engine.store.generation("toy", 3), engine.domains.kinds)
    ] == [
        "Network/a",
        "Network/b",
    ]
    assert fake(engine).data["network"] == {"net.a": "2", "net.b": "1"}
    again = SpecSet.from_resources(
        tuple(load_generation(engine.store.generation("toy", 2), engine.domains.kinds))
    )
    back = await apply(engine, again, replace=True)
    assert back.all_ready and back.generation == 4
    assert fake(engine).data["network"] == {"net.a": "1", "net.b": "1"}


async def test_prune_true_in_the_domain_means_no_partial_plan(engine: Engine) -> None:
    # Planning without Network/bad would let Network/good's prune remove what bad declares.
    fake(engine).data["network"]["net.bad"] = "live"
    specs = specset(
        network("good", {"net.good": "1"}, prune=True), network("bad", {"net.bad": "unplannable"})
    )
    planned = await engine.plan(engine.merge(specs))
    assert planned.plan.blocked("network")
    result = await engine.apply(planned, assume_yes=True)
    reports = by_resource(result)
    assert reports["Network/bad"].reason == "PermanentError"
    assert reports["Network/good"].reason == "Blocked"
    assert "because of Network/bad" in reports["Network/good"].message
    assert fake(engine).writes == 0 and fake(engine).data["network"] == {"net.bad": "live"}


async def test_a_temporary_error_is_nobodys_fault(engine: Engine) -> None:
    specs = specset(network("good", {"net.good": "1"}), network("bad", {"net.bad": "flaky"}))
    planned = await engine.plan(engine.merge(specs))
    reads = len(fake(engine).reads)
    assert reads == 1, "a temporary error must not be retried resource by resource"
    assert [(f.resource, f.reason) for f in planned.plan.failures] == [("", "RegistryUnavailable")]
    result = await engine.apply(planned, assume_yes=True)
    assert {r.outcome for r in result.reports} == {"degraded"}
    assert fake(engine).writes == 0


async def test_a_destructive_step_blames_its_resource_and_blocks_the_rest(engine: Engine) -> None:
    fake(engine).data["network"]["net.keep"] = "old"
    specs = specset(network("calm", {"net.calm": "1"}), network("rough", {"net.keep": "destroy"}))
    result = await apply(engine, specs)
    assert result.destructive_refused == ["network"] and fake(engine).writes == 0
    reports = by_resource(result)
    assert reports["Network/rough"].reason == "DestructiveRefused"
    assert "overwrites net.keep" in reports["Network/rough"].message
    assert reports["Network/calm"].reason == "Blocked"
    assert "because of Network/rough" in reports["Network/calm"].message


async def test_a_failed_call_is_charged_to_the_resource_whose_step_it_ran(engine: Engine) -> None:
    await apply(engine, specset(network("idle", {"net.idle": "1"})))
    fake(engine).fail_keys.add("net.z")
    specs = specset(
        network("idle", {"net.idle": "1"}),
        network("mover", {"net.m": "1"}),
        network("zed", {"net.z": "1"}),
    )
    result = await apply(engine, specs)
    reports = by_resource(result)
    assert reports["Network/zed"].reason == "StepFailed"
    assert "toy.set failed: toy.set net.z: injected failure" in reports["Network/zed"].message
    assert reports["Network/mover"].reason == "RolledBack"
    assert "a call for Network/zed failed" in reports["Network/mover"].message
    assert reports["Network/idle"].outcome == "ready"
    assert fake(engine).data["network"] == {"net.idle": "1"}
    assert [
        r.key for r in load_generation(engine.store.current_generation("toy"), engine.domains.kinds)
    ] == ["Network/idle"]


# --- status while an apply runs, and after it was killed ----------------------------


async def test_resources_are_marked_reconciling_before_the_first_call(engine: Engine) -> None:
    await apply(engine, specset(network("lan", {"net.a": "1"}), network("idle", {"net.i": "1"})))
    seen: list[tuple[str, str, str]] = []

    def look(tool: str, args: Mapping[str, Any]) -> None:
        for status in engine.store.statuses("toy"):
            condition = status.condition("Reconciling") or {}
            seen.append((status.resource, str(condition.get("status")), str(status.ready)))

    fake(engine).on_write = look
    result = await apply(engine, specset(network("lan", {"net.a": "2"})))
    assert result.all_ready
    assert ("Network/lan", "True", "False") in seen, seen
    assert ("Network/idle", "False", "True") in seen, "an untouched resource stays Ready"
    after = engine.store.status("toy", "Network/lan")
    assert after is not None and after.ready
    assert [h["reason"] for h in after.history] == ["Reconciled", "Reconciled"]


KILLED = """
import asyncio, sys
from pathlib import Path
from tests.unit import test_engine as t

class Hanging(t.FakeRegistry):
    hang = False

    async def call(self, tool, args, *, reason, on_progress=None):
        if self.hang and tool != "toy.state":
            print("calling", flush=True)
            await asyncio.sleep(3600)
        return await super().call(tool, args, reason=reason, on_progress=on_progress)

async def main():
    controllers = {"network": t.ToyController("network", "Network")}
    target = t.Target(name="toy", address="memory", state_dir=Path(sys.argv[1]))
    registry = Hanging()
    engine = t.Engine(target, t.Store(target.state_dir), registry, controllers, t.DEFAULT_DOMAINS)
    first = await t.apply(engine, t.specset(t.network("lan", {"net.a": "1"})))
    assert first.all_ready
    registry.hang = True
    await t.apply(engine, t.specset(t.network("lan", {"net.a": "2"})))

asyncio.run(main())
"""


def test_a_killed_apply_leaves_its_resources_interrupted(tmp_path: Path) -> None:
    """kill -9 in the middle of a call: the status says Interrupted, never Ready."""
    import signal
    import subprocess
    import sys

    from reconciler.engine.status import interrupted, run_of, writer_active

    state_dir = tmp_path / "state"
    repo = Path(__file__).resolve().parents[2]
    with subprocess.Popen(
        [sys.executable, "-c", KILLED, str(state_dir)], cwd=repo, stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "calling"
            assert writer_active(state_dir), "the apply holds the writer lock while it runs"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    store = Store(state_dir)
    try:
        status = store.status("toy", "Network/lan")
        assert status is not None and not status.ready
        run = run_of(status)
        assert run and status.condition("Reconciling")["status"] == "True"  # type: ignore[index]
        assert not writer_active(state_dir), "a killed apply holds no lock"
        journal = {run: store.journal_rows(run)}
        shown = interrupted([status], journal, writer_active=False)[0]
        assert not shown.ready
        ready = shown.condition("Ready")
        assert ready is not None and ready["reason"] == "Interrupted"
        assert f"apply run {run} ended before it finished" in ready["message"]
        assert "1 call(s) journaled, not finished; 0 done" in ready["message"]
        # While an apply holds the lock, the mark is shown as it is (in progress).
        assert interrupted([status], journal, writer_active=True) == [status]
    finally:
        store.close()


# --- saved plans: only a plan equal to a fresh one runs (the CLI's rule, in-process) --


def _tamper(plan: Any, edit: Callable[[dict[str, Any]], None]) -> Any:
    from reconciler.sdk.plan import Plan

    data = json.loads(plan.to_json())
    edit(data)
    return Plan.model_validate(data)


def _net(data: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in data["domains"] if d["domain"] == "network")
    return found


EXTRA = {"tool": "toy.set", "input": {"space": "network", "key": "net.evil", "value": "1"},
         "reason": "set net.a", "satisfies": [], "risk": "low", "destructive": False}  # fmt: skip
TAMPERED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("added-step", lambda d: _net(d)["steps"].append(EXTRA),
     "network: step 3 (toy.set) is not in a fresh plan (saved 3 steps, fresh 2)"),
    ("changed-input", lambda d: _net(d)["steps"][0]["input"].update(key="net.evil"),
     'network: step 1 (toy.set): input differs at $.key: saved "net.evil", '
     'a fresh plan has "net.a"'),
    ("changed-reason", lambda d: _net(d)["steps"][0].update(reason="harmless"),
     'network: step 1 (toy.set): reason differs: saved "harmless", a fresh plan has "set net.a"'),
    ("removed-step", lambda d: _net(d)["steps"].pop(),
     "network: step 2 of a fresh plan (toy.set) is missing (saved 1 steps, fresh 2)"),
    ("reordered-steps", lambda d: _net(d)["steps"].reverse(),
     "network: step 1 (toy.set): the same steps in another order"),
    ("changed-risk", lambda d: _net(d)["steps"][0].update(risk="critical"),
     'network: step 1 (toy.set): risk differs: saved "critical", a fresh plan has "medium"'),
    ("changed-destructive", lambda d: _net(d)["steps"][0].update(destructive=True),
     "network: step 1 (toy.set): destructive differs: saved true, a fresh plan has false"),
    ("changed-shown-value", lambda d: _net(d)["changes"][0].update(new="9"),
     'network: change 1 (kv:net.a): new differs: saved "9", a fresh plan has "1"'),
    ("removed-domain", lambda d: d.update(domains=[]),
     "network: the saved plan has no network domain; a fresh plan has 2 step(s) there"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "edit", "message"), TAMPERED, ids=[t[0] for t in TAMPERED])
async def test_a_saved_plan_that_differs_from_a_fresh_one_runs_nothing(
    engine: Engine, name: str, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    from reconciler.sdk.errors import PlanRejected

    s = specset(network("lan", {"net.a": "1", "net.b": "2"}))
    saved = _tamper((await engine.plan(engine.merge(s))).plan, edit)
    planned = await engine.plan(engine.merge(s))
    with pytest.raises(PlanRejected) as refused:
        engine.check_saved(saved, planned)
    assert message in str(refused.value)
    with pytest.raises(PlanRejected):
        await engine.apply(planned, assume_yes=True, saved=saved)
    assert fake(engine).writes == 0 and engine.store.current_generation("toy") is None
    untouched = (await engine.plan(engine.merge(s))).plan
    result = await engine.apply(
        await engine.plan(engine.merge(s)), assume_yes=True, saved=untouched
    )
    assert result.all_ready and fake(engine).data["network"] == {"net.a": "1", "net.b": "2"}


async def test_what_runs_is_what_the_verifier_checked(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.engine import planning

    verified: list[tuple[Any, ...]] = []
    real = planning.verify_plan

    def spy(*args: Any, **kwargs: Any) -> Any:
        verified.append(tuple(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr(planning, "verify_plan", spy)
    ran: list[dict[str, Any]] = []
    fake(engine).on_write = lambda tool, args: ran.append({"tool": tool, **args})
    s = specset(network("lan", {"net.a": "1"}))
    saved = (await engine.plan(engine.merge(s))).plan
    await engine.apply(await engine.plan(engine.merge(s)), assume_yes=True, saved=saved)
    assert ran == [{"tool": "toy.set", "space": "network", "key": "net.a", "value": "1"}]
    assert any([{"tool": st.tool, **st.input} for st in steps] == ran for steps in verified)


# --- rendering: a plan that could not be made never reads as "No changes" ------------


async def test_render_shows_a_domain_that_could_not_be_planned(engine: Engine) -> None:
    from reconciler.render import render_plan
    from reconciler.sdk.plan import Plan

    planned = await engine.plan(engine.merge(specset(network("lan", {"net.a": "unobservable"}))))
    text = render_plan(planned.plan)
    assert "No changes" not in text
    assert text.splitlines() == [
        "network: could not be planned",
        "  ! ToolFailed: toy.state: cannot read net.a for Network/lan",
        "Planning failed: domain network could not be planned (ToolFailed); "
        "the target may not match the specs.",
    ]
    assert Plan.from_json(planned.plan.to_json()) == planned.plan
    assert json.loads(planned.plan.to_json())["failures"] == [
        {
            "domain": "network",
            "resource": "",
            "reason": "ToolFailed",
            "message": "toy.state: cannot read net.a for Network/lan",
            "retryable": False,
        }
    ]


async def test_render_shows_a_left_out_resource_and_an_incomplete_summary(engine: Engine) -> None:
    from reconciler.render import render_plan

    fake(engine).data["network"]["net.good"] = "1"
    specs = specset(network("good", {"net.good": "1"}), network("bad", {"net.bad": "unplannable"}))
    text = render_plan((await engine.plan(engine.merge(specs))).plan)
    assert text.splitlines() == [
        "network:",
        "  ! Network/bad: PermanentError: no rule can set net.bad to unplannable",
        "Planning failed: Network/bad could not be planned (PermanentError); "
        "the target may not match the specs.",
        "1 item(s) already as declared (-v lists them).",
    ]
    fake(engine).data["network"].clear()
    text = render_plan((await engine.plan(engine.merge(specs))).plan)
    assert text.splitlines()[-1] == (
        "Plan: 1 to add, 0 to change, 0 to remove (1 step(s)). "
        "INCOMPLETE: Network/bad could not be planned (PermanentError)."
    )
