"""The models controller, table-driven: plan and observe fixtures, plus its pure helpers.

Plan cases (tests/controllers/models/plan/*.yaml) run through the shared
harness: diff -> changes and no-op reasons, plan -> steps, the verifier
accepts the plan (or refuses a destructive one), and dropping any step or
changing any scalar of any step input makes it reject the plan. Observe
cases replay model.list outputs recorded with the real tool in a throwaway
sandbox (tests/controllers/record_sandbox.py). The planner's refusal, the
effect model's refusals, destructive/forced and export are tested here
directly.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from controllers.models import CONTROLLER
from controllers.models.state import ModelFile, ModelsState
from reconciler.sdk.controller import Desired
from reconciler.sdk.errors import PlanRejected
from reconciler.sdk.plan import Step
from sandbox.demo import gguf_sha256
from specs.loader import load_documents
from tests.controllers.harness import cases, load_case, run_observe_case, run_plan_case

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
