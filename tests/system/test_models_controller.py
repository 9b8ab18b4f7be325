"""The models controller end to end: real CLI, real sandbox, files read back with sha256sum.

Each test gets its own sandbox (`box`), whose file server serves the demo
models at sandbox.demo.MODEL_BASE_URL in the sandbox's network namespace.
Files are read back inside the sandbox's namespaces (`box.sh`), drift is
made there with rm/dd. The ai-workstation example runs whole (storage,
packages, models): the weights land on the filesystem its Storage resource
mounts, because the engine runs storage before models.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from controllers.models import CONTROLLER
from controllers.models.state import ModelsState
from reconciler.engine.reader import ReadOnlyReader
from reconciler.sdk.controller import Desired
from sandbox.demo import MODEL_BASE_URL, SMOLLM2, SMOLLM2_SHA256, gguf_sha256
from specs.loader import load_paths
from specs.models import Models
from tests.system.cli_support import aios, apply, engine_on, ok, statuses, write_tree
from tests.system.engine_support import REPO, Box, box  # noqa: F401

DIR = "/var/lib/aios/models"


def model_line(name: str, *, sha: str | None = None, extra: str = "") -> str:
    return (
        f'    - {{name: {name}, source: "{MODEL_BASE_URL}/{name}.gguf", '
        f"sha256: {sha or gguf_sha256(name)}{extra}}}"
    )


def spec(tmp: Path, tag: str, *lines: str, name: str = "assistant", prune: bool = False) -> Path:
    text = "\n".join(
        [
            "apiVersion: aios.dev/v1",
            "kind: Models",
            f"metadata: {{name: {name}}}",
            "spec:",
            *(["  prune: true"] if prune else []),
            f"  directory: {DIR}",
            "  models:",
            *lines,
        ]
    )
    return write_tree(tmp, tag, **{"models.yaml": text + "\n"})


def two(tmp: Path, tag: str) -> Path:
    return spec(tmp, tag, model_line("demo-tiny"), model_line("tinyllama-1.1b-demo"))


def sha256sums(sb: Box, directory: str = DIR) -> dict[str, str]:
    """file name -> sha256 of the .gguf files directly in `directory` (sha256sum)."""
    out = sb.sh("sh", "-c", f"cd {sb.root}{directory} && sha256sum *.gguf", check=False)
    return {name: digest for digest, name in (line.split() for line in out.splitlines())}


def test_converge_replan_and_zero_writes(box: Box, tmp_path: Path) -> None:  # noqa: F811
    tree = two(tmp_path, "a")
    out = ok(apply(box, tree))
    assert "models: 2 step(s) applied" in out
    assert sha256sums(box) == {
        "demo-tiny.gguf": gguf_sha256("demo-tiny"),
        "tinyllama-1.1b-demo.gguf": gguf_sha256("tinyllama-1.1b-demo"),
    }
    writes = box.write_calls()
    assert writes == 2
    plan = ok(aios(box, "plan", "-f", str(tree), "-v"))
    assert "demo-tiny present, sha256 be03cd43… matches" in plan
    assert "load on_demand: the AI runtime loads it on first use" in plan
    ok(apply(box, tree))
    assert box.write_calls() == writes, "a converged machine takes zero write calls"
    assert statuses(box)["Models/assistant"][:2] == (True, "Ready/UpToDate")


def test_drift_is_repaired(box: Box, tmp_path: Path) -> None:  # noqa: F811
    tree = two(tmp_path, "a")
    ok(apply(box, tree))
    box.sh("rm", f"{box.root}{DIR}/demo-tiny.gguf")
    box.sh("dd", "if=/dev/zero", f"of={box.root}{DIR}/tinyllama-1.1b-demo.gguf", "bs=1k",
           "count=4", "seek=8", "conv=notrunc", "status=none")  # fmt: skip
    plan = aios(box, "plan", "-f", str(tree))
    assert plan.returncode == 2 and "~ model:" in plan.stdout and "+ model:" in plan.stdout
    ok(apply(box, tree))
    assert sha256sums(box)["demo-tiny.gguf"] == gguf_sha256("demo-tiny")
    assert sha256sums(box)["tinyllama-1.1b-demo.gguf"] == gguf_sha256("tinyllama-1.1b-demo")


def test_prune_keeps_weights_and_says_so(box: Box, tmp_path: Path) -> None:  # noqa: F811
    ok(apply(box, two(tmp_path, "a")))
    box.sh("cp", f"{box.root}{DIR}/demo-tiny.gguf", f"{box.root}{DIR}/byhand.gguf")
    # The resource stops declaring tinyllama (aios fetched it) and widens to prune: true.
    narrowed = spec(tmp_path, "b", model_line("demo-tiny"), prune=True)
    out = ok(apply(box, narrowed, "-v"))
    assert "tinyllama-1.1b-demo.gguf is no longer declared: its weights are kept" in out
    assert "byhand.gguf is not declared by any Models resource" in out
    other = spec(tmp_path, "c", model_line("qwen3-14b-demo"), name="other")
    ok(apply(box, other, "--prune"))  # Models/assistant is pruned
    assert set(sha256sums(box)) == {
        "byhand.gguf", "demo-tiny.gguf", "tinyllama-1.1b-demo.gguf", "qwen3-14b-demo.gguf",
    }  # fmt: skip
    assert set(statuses(box)) == {"Models/other"}


def test_deleting_weights_needs_force(box: Box, tmp_path: Path) -> None:  # noqa: F811
    ok(apply(box, two(tmp_path, "a")))
    absent = "    - {name: tinyllama-1.1b-demo, state: absent"
    refused = apply(box, spec(tmp_path, "b", model_line("demo-tiny"), absent + "}"))
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "deletes the model weights" in refused.stderr and "force: true" in refused.stderr
    assert "tinyllama-1.1b-demo.gguf" in sha256sums(box)
    ok(apply(box, spec(tmp_path, "c", model_line("demo-tiny"), absent + ", force: true}")))
    assert set(sha256sums(box)) == {"demo-tiny.gguf"}


def test_a_failing_fetch_is_rolled_back(box: Box, tmp_path: Path) -> None:  # noqa: F811
    # The second fetch (path order) downloads bytes whose sha256 is not the declared one.
    wrong = model_line("tinyllama-1.1b-demo", sha=gguf_sha256("demo-tiny"))
    result = apply(box, spec(tmp_path, "a", model_line("demo-tiny"), wrong))
    assert result.returncode == 1, result.stdout + result.stderr
    ready, reason, message = statuses(box)["Models/assistant"]
    assert not ready and reason == "Degraded/StepFailed"
    assert "sha256 mismatch" in message and "rolled back model.fetch" in message
    assert sha256sums(box) == {}, "the fetch made before the failing one was undone"
    assert box.sh("ls", "-A", f"{box.root}{DIR}").strip() == "", "no part file left"


def test_stale_saved_plan_is_refused(box: Box, tmp_path: Path) -> None:  # noqa: F811
    ok(apply(box, spec(tmp_path, "a", model_line("demo-tiny"))))
    tree = two(tmp_path, "b")
    saved = tmp_path / "plan.json"
    ok(aios(box, "plan", "-f", str(tree), "--out", str(saved)), 2)
    box.sh("rm", f"{box.root}{DIR}/demo-tiny.gguf")
    stale = aios(box, "apply", "-f", str(tree), "--plan", str(saved))
    assert stale.returncode == 3, stale.stdout + stale.stderr
    assert sha256sums(box) == {}


def test_export_round_trips(box: Box, tmp_path: Path) -> None:  # noqa: F811
    ok(apply(box, two(tmp_path, "a")))
    exported = ok(aios(box, "export", "Models"))
    tree = write_tree(tmp_path, "export", **{"models.yaml": exported})
    ok(box.aios("validate", "-f", str(tree)))
    assert f"source: file:{DIR}/demo-tiny.gguf" in exported
    out = ok(aios(box, "plan", "-f", str(tree), "--state-dir", str(tmp_path / "fresh")))
    assert "No changes" in out


def test_predicted_state_equals_the_re_observed_one(box: Box, tmp_path: Path) -> None:  # noqa: F811
    tree = spec(
        tmp_path, "a", model_line("demo-tiny"),
        model_line("mistral-7b-demo", extra=f", path: {DIR}/strategic/mistral.gguf"),
    )  # fmt: skip
    specset = load_paths([tree])
    resources = tuple(r for r in specset.resources if isinstance(r, Models))

    def projection(state: ModelsState) -> list[tuple[str, str]]:
        return [(f["path"], f["sha256"]) for f in CONTROLLER.scope(state, resources)["files"]]

    async def go() -> tuple[ModelsState, ModelsState]:
        async with engine_on(box, ("models",)) as engine:
            planned = await engine.plan(engine.merge(specset))
            work = planned.works["models"]
            assert isinstance(work.state, ModelsState) and work.verdict.ok
            predicted = CONTROLLER.simulate(work.state, work.steps)
            result = await engine.apply(planned, assume_yes=True)
            assert result.all_ready, result.summaries
            reader = ReadOnlyReader(engine.client, await engine.catalogue(), reason="test")
            return predicted, await CONTROLLER.observe(reader, Desired("models", resources))

    predicted, after = asyncio.run(go())
    assert projection(predicted) == projection(after)
    assert len(projection(after)) == 2


def test_ai_workstation_example_end_to_end(box: Box, tmp_path: Path) -> None:  # noqa: F811
    example = tmp_path / "ai-workstation"
    shutil.copytree(REPO / "examples" / "ai-workstation", example)
    out = ok(apply(box, example))
    assert "all resources Ready" in out
    assert {s[0] for s in statuses(box).values()} == {True}
    found = box.sh("findmnt", "-n", "-o", "TARGET,FSTYPE", "-T",
                   f"{box.root}{DIR}/{SMOLLM2}.gguf").split()  # fmt: skip
    assert found == [f"{box.root}{DIR}", "ext4"], "the weights live on the mounted image"
    assert sha256sums(box) == {
        f"{SMOLLM2}.gguf": SMOLLM2_SHA256,
        "tinyllama-1.1b-demo.gguf": gguf_sha256("tinyllama-1.1b-demo"),
    }
    assert sha256sums(box, f"{DIR}/strategic") == {
        "mistral-7b-demo.gguf": gguf_sha256("mistral-7b-demo")
    }
    writes = box.write_calls()
    ok(aios(box, "plan", "-f", str(example)))
    ok(apply(box, example))
    assert box.write_calls() == writes


def test_a_failing_fetch_does_not_undo_another_domain(box: Box, tmp_path: Path) -> None:  # noqa: F811
    # Storage and models are separate transactions (storage runs first): the failed
    # fetch is undone within models; the mount storage made stays, Ready.
    storage = (
        "apiVersion: aios.dev/v1\nkind: Storage\nmetadata: {name: disk}\nspec:\n"
        f"  mounts: [{{target: {DIR}, source: tmpfs, type: tmpfs, options: [size=16M],"
        " persist: false}]\n"
    )
    tree = spec(
        tmp_path, "a", model_line("demo-tiny"),
        model_line("tinyllama-1.1b-demo", sha=gguf_sha256("demo-tiny")),
    )  # fmt: skip
    (tree / "storage.yaml").write_text(storage)
    result = apply(box, tree)
    assert result.returncode == 1, result.stdout + result.stderr
    status = statuses(box)
    assert status["Storage/disk"][:2] == (True, "Ready/Reconciled")
    assert status["Models/assistant"][1] == "Degraded/StepFailed"
    assert "rolled back model.fetch" in status["Models/assistant"][2]
    found = box.sh("findmnt", "-n", "-o", "FSTYPE", f"{box.root}{DIR}").strip()
    assert found == "tmpfs" and sha256sums(box) == {}
