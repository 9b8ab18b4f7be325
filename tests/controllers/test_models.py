"""The models controller, table-driven: plan and observe fixtures, plus its pure helpers.

Plan cases (tests/controllers/models/plan/*.yaml) run through the shared
harness: diff -> changes and no-op reasons, plan -> steps, the verifier
accepts the plan (or refuses a destructive one), and dropping any step or
changing any scalar of any step input makes it reject the plan. Observe
cases replay model.list outputs recorded with the real tool in a throwaway
sandbox (tests/controllers/record_sandbox.py), or — model.loaded, until a
sandbox runtime records them — written after the tool's output schema,
which every recorded output is checked against here. The planner's refusal,
the effect model's refusals (files and loads), destructive/forced, a failing
model.loaded, export and scope are tested here directly.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from contract.catalogue import catalogue as tool_catalogue
from contract.schemacheck import validator
from controllers.models import CONTROLLER
from controllers.models.state import LoadedModel, ModelFile, ModelsState, Runtime
from reconciler.sdk.controller import Desired
from reconciler.sdk.errors import PlanRejected, ToolFailed
from reconciler.sdk.plan import Step
from sandbox.demo import gguf_sha256
from specs.loader import load_documents
from tests.controllers.harness import (
    RecordedReader,
    cases,
    load_case,
    run_observe_case,
    run_plan_case,
)

HERE = Path(__file__).parent / "models"
TINY = gguf_sha256("demo-tiny")


@pytest.mark.parametrize("path", cases(HERE / "plan"), ids=lambda p: p.stem)
def test_plan_case(path: Path) -> None:
    run_plan_case(CONTROLLER, path)


@pytest.mark.parametrize("path", cases(HERE / "observe"), ids=lambda p: p.stem)
async def test_observe_case(path: Path) -> None:
    await run_observe_case(CONTROLLER, path)


def _desired(models: str, directory: str = "/var/lib/aios/models") -> Desired:
    text = (
        "apiVersion: aios.dev/v1\nkind: Models\nmetadata: {name: m}\n"
        f"spec:\n  directory: {directory}\n  models: {models}\n"
    )
    return Desired("models", tuple(load_documents([("m.yaml", text.encode())]).resources))


def _step(tool: str, **inp: Any) -> Step:
    return Step(tool=tool, input=inp, reason="test")


STATE = ModelsState(
    directories=("/var/lib/aios/models",),
    files=(
        ModelFile(path="/srv/in/x.gguf", size=5, sha256=TINY, gguf_version=3),
        ModelFile(path="/var/lib/aios/models/demo-tiny.gguf", size=1 << 20, sha256=TINY),
    ),
)


def test_a_file_source_that_is_gone_cannot_be_fetched() -> None:
    desired = _desired("[{name: x, source: 'file:/srv/in/missing.gguf'}]")
    diff = CONTROLLER.diff(desired, STATE)
    assert [c.op for c in diff.changes] == ["add"]
    assert "missing" in diff.changes[0].detail
    with pytest.raises(PlanRejected, match="nothing to fetch"):
        CONTROLLER.plan(diff, desired, STATE)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            _step("model.fetch", url="file:/srv/in/y.gguf", sha256=TINY, path="/m/y.gguf"),
            "not observed",
        ),
        (
            _step("model.fetch", url="file:/srv/in/x.gguf", sha256="ab" * 32, path="/m/y.gguf"),
            "not observed",
        ),
        (
            _step("model.fetch", url="file:/srv/in/x.gguf", sha256=TINY, path="/m/y.gguf", size=6),
            "not 6",
        ),
        (_step("model.remove", path="/m/y.gguf", force=True), "cannot model"),
        (_step("storage.mount", target="/m"), "does not know"),
    ],
)
def test_the_effect_model_refuses_what_would_fail(step: Step, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CONTROLLER.simulate(STATE, [step])


def test_a_fetch_predicts_the_file_and_where_it_came_from() -> None:
    step = _step("model.fetch", url="file:/srv/in/x.gguf", sha256=TINY, path="/m/x.gguf")
    after = CONTROLLER.simulate(STATE, [step, _step("model.remove", path="/srv/in/x.gguf")])
    assert after.file("/m/x.gguf") == ModelFile(
        path="/m/x.gguf", size=5, sha256=TINY, gguf_version=3, fetched_from="file:/srv/in/x.gguf"
    )
    assert after.file("/srv/in/x.gguf") is None


def test_destructive_and_forced_do_not_trust_the_planner_flags() -> None:
    remove = _step("model.remove", path="/var/lib/aios/models/demo-tiny.gguf")
    assert remove.destructive is False
    assert "1048576 bytes" in (CONTROLLER.destructive(STATE, remove) or "")
    assert (
        CONTROLLER.destructive(STATE, _step("model.fetch", url="x", sha256=TINY, path="/a")) is None
    )
    assert CONTROLLER.forced(_desired("[{name: demo-tiny, state: absent, force: true}]"), remove)
    assert not CONTROLLER.forced(_desired("[{name: demo-tiny, state: absent}]"), remove)
    assert not CONTROLLER.forced(
        _desired("[{name: demo-tiny, state: absent, force: true}]", "/srv/other"), remove
    )


def _dump(documents: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False  # as `aios export` prints them
    yaml.dump_all(documents, out)
    return out.getvalue()


def test_export_lists_the_directory_and_replans_to_nothing() -> None:
    state = ModelsState(
        directories=("/var/lib/aios/models",),
        files=(
            *STATE.files,
            ModelFile(path="/var/lib/aios/models/sub/deeper.gguf", size=1, sha256=TINY),
            ModelFile(path="/var/lib/aios/models/-bad-name.gguf", size=1, sha256=TINY),
        ),
    )
    (document,) = CONTROLLER.export(state)
    assert document["spec"] == {
        "directory": "/var/lib/aios/models",
        "models": [
            {
                "name": "demo-tiny",
                "source": "file:/var/lib/aios/models/demo-tiny.gguf",
                "sha256": TINY,
                "path": "/var/lib/aios/models/demo-tiny.gguf",
            }
        ],
    }
    resources = load_documents([("export.yaml", _dump([document]).encode())]).resources
    diff = CONTROLLER.diff(Desired("models", tuple(resources)), state)
    assert diff.changes == ()
    assert any("demo-tiny present, sha256 be03cd43… matches" in n.reason for n in diff.noops)
    assert CONTROLLER.export(ModelsState(directories=("/x",))) == []


def test_recorded_export_round_trips() -> None:
    state = ModelsState.model_validate(
        load_case(HERE / "observe" / "export-directory.yaml")["expect"]
    )
    documents = CONTROLLER.export(state)
    resources = load_documents([("export.yaml", _dump(documents).encode())]).resources
    assert CONTROLLER.diff(Desired("models", tuple(resources)), state).changes == ()


def test_scope_is_the_declared_files() -> None:
    scoped = CONTROLLER.scope(STATE, _desired("[{name: demo-tiny, state: absent}]").resources)
    assert [f["path"] for f in scoped["files"]] == ["/var/lib/aios/models/demo-tiny.gguf"]


@pytest.mark.parametrize("path", cases(HERE / "observe"), ids=lambda p: p.stem)
def test_observe_case_outputs_are_what_the_tools_return(path: Path) -> None:
    tools = tool_catalogue()
    for read in load_case(path)["reads"]:
        errors = list(validator(tools[read["tool"]].output_schema).iter_errors(read["output"]))
        assert not errors, f"{path.name}: {read['tool']} output: {errors[0].message}"


ALWAYS = "[{name: demo-tiny, source: 'file:/srv/in/x.gguf', load: always, threads: 1}]"


class _FailingRuntime(RecordedReader):
    async def read(self, tool: str, args: Any) -> dict[str, Any]:
        if tool == "model.loaded":
            self.calls.append(tool)
            raise ToolFailed("model runtime at localhost:50055 unreachable: connection refused")
        return await super().read(tool, args)


async def test_a_failing_model_loaded_fails_the_domain_never_reads_as_not_loaded() -> None:
    reader = _FailingRuntime([{"tool": "model.list", "output": {"models": []}}])
    with pytest.raises(ToolFailed, match="localhost:50055 unreachable: connection refused"):
        await CONTROLLER.observe(reader, _desired(ALWAYS))
    assert reader.calls == ["model.list", "model.loaded"]


@pytest.mark.parametrize(
    "output",
    [
        {"models": []},
        {"runtime": "x", "models": [{"status": "ready"}]},
        {"runtime": "x", "models": [1]},
    ],
)
async def test_unreadable_model_loaded_output_fails(output: dict[str, Any]) -> None:
    reads = [
        {"tool": "model.list", "output": {"models": []}},
        {"tool": "model.loaded", "output": output},
    ]
    with pytest.raises(ToolFailed, match=r"model\.loaded returned output"):
        await CONTROLLER.observe(RecordedReader(reads), _desired(ALWAYS))


READY_TINY = LoadedModel(
    name="demo-tiny",
    status="ready",
    path="/var/lib/aios/models/demo-tiny.gguf",
    port=8081,
    context_length=2048,
    threads=1,
    gpu_layers=0,
    sha256=TINY,
    restarts=0,
    on_demand=False,
)
TINY_PATH = "/var/lib/aios/models/demo-tiny.gguf"
UNLOADED = STATE.model_copy(
    update={
        "files": (STATE.files[0], ModelFile(path=TINY_PATH, size=1, sha256=TINY, gguf_version=3))
    }
)
LOADED = UNLOADED.model_copy(
    update={"runtime": Runtime(address="localhost:50055", models=(READY_TINY,))}
)


def _load(**changed: Any) -> Step:
    inp = {"name": "demo-tiny", "path": TINY_PATH, "contextLength": 2048, "threads": 1}
    return _step("model.load", **{**inp, "gpuLayers": 0, **changed})


@pytest.mark.parametrize(
    ("state", "step", "message"),
    [
        (LOADED, _step("model.unload", name="other"), "has no model other"),
        (LOADED, _load(path="/m/none.gguf"), "no file at /m/none.gguf"),
        (LOADED, _load(sha256="ab" * 32), f"has sha256 {TINY}, not"),
        (LOADED, _load(path="/srv/in/x.gguf", name="x", port=1), "cannot model input field"),
        (
            STATE.model_copy(update={"files": (ModelFile(path="/m/t.gguf", size=4, sha256=TINY),)}),
            _load(path="/m/t.gguf"),
            "not a GGUF file",
        ),
        (LOADED, _step("model.loaded", name="x"), "cannot model input field"),
    ],
)
def test_the_load_effect_model_refuses_what_would_fail(
    state: ModelsState, step: Step, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CONTROLLER.simulate(state, [step])


def test_loads_are_predicted_as_the_runtime_does_them() -> None:
    assert CONTROLLER.simulate(LOADED, [_step("model.loaded")]) == LOADED
    assert CONTROLLER.simulate(LOADED, [_load()]) == LOADED  # same parameters: left as it is
    reloaded = CONTROLLER.simulate(LOADED, [_load(contextLength=512)]).loaded("demo-tiny")
    assert reloaded == READY_TINY.model_copy(update={"context_length": 512, "port": None})
    # A fetch over a loaded model's file leaves it serving the old weights (stale);
    # a load with the same parameters does not cure that, unload + load does.
    fetch = _step("model.fetch", url="file:/srv/in/x.gguf", sha256=TINY, path=TINY_PATH)
    replaced = LOADED.model_copy(
        update={"files": (STATE.files[0], ModelFile(path=TINY_PATH, size=1, sha256="ab" * 32))}
    )
    after = CONTROLLER.simulate(replaced, [fetch, _load()])
    assert after.loaded("demo-tiny").stale  # type: ignore[union-attr]
    after = CONTROLLER.simulate(replaced, [_step("model.unload", name="demo-tiny"), fetch, _load()])
    assert after.loaded("demo-tiny").stale is False  # type: ignore[union-attr]
    assert CONTROLLER.simulate(LOADED, [fetch]).loaded("demo-tiny") == READY_TINY  # same bytes
    healed = LOADED.model_copy(
        update={
            "runtime": Runtime(
                address="a", models=(READY_TINY.model_copy(update={"status": "error: x"}),)
            )
        }
    )
    assert CONTROLLER.simulate(healed, [_load()]).loaded("demo-tiny").status == "ready"  # type: ignore[union-attr]
    assert CONTROLLER.simulate(UNLOADED, [_load()]).runtime == Runtime(
        address="",
        models=(READY_TINY.model_copy(update={"port": None}),),
    )


def test_unload_is_not_destructive() -> None:
    assert CONTROLLER.destructive(LOADED, _step("model.unload", name="demo-tiny")) is None


def test_export_keeps_a_load_and_replans_to_nothing() -> None:
    (document,) = CONTROLLER.export(LOADED)
    (tiny,) = document["spec"]["models"]
    assert tiny["load"] == "always"
    assert (tiny["contextLength"], tiny["threads"], tiny["gpuLayers"]) == (2048, 1, 0)
    resources = load_documents([("export.yaml", _dump([document]).encode())]).resources
    assert CONTROLLER.diff(Desired("models", tuple(resources)), LOADED).changes == ()
    on_demand = READY_TINY.model_copy(update={"on_demand": True})
    state = LOADED.model_copy(update={"runtime": Runtime(address="a", models=(on_demand,))})
    (document,) = CONTROLLER.export(state)
    assert "load" not in document["spec"]["models"][0]


def test_scope_shows_file_hash_loaded_endpoint_and_health() -> None:
    resources = _desired(
        "[{name: demo-tiny, source: 'file:/srv/in/x.gguf', load: always},"
        " {name: other, source: 'file:/srv/in/x.gguf'}]"
    ).resources
    restarting = READY_TINY.model_copy(
        update={"status": "restarting: llama-server exited", "restarts": 3, "last_error": "boom"}
    )
    state = LOADED.model_copy(
        update={"runtime": Runtime(address="unix:///r.sock", models=(restarting,))}
    )
    scoped = CONTROLLER.scope(state, resources)
    assert scoped["runtime"] == "unix:///r.sock"
    tiny, other = scoped["models"]
    assert tiny == {
        "name": "demo-tiny",
        "resource": "Models/m",
        "path": TINY_PATH,
        "file": "present",
        "sha256": TINY,
        "load": "always",
        "loaded": "restarting: llama-server exited",
        "endpoint": "127.0.0.1:8081",
        "health": "restarting: llama-server exited (3 restart(s); last error: boom)",
    }
    assert (other["file"], other["loaded"], other["endpoint"]) == ("missing", "not loaded", None)
    assert CONTROLLER.scope(LOADED, resources)["models"][0]["health"] == "healthy"
    assert CONTROLLER.scope(STATE, resources)["models"][0]["loaded"].startswith("not asked")
