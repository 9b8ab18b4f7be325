"""The packages controller, table-driven: plan and observe fixtures, plus its pure helpers.

Plan cases (tests/controllers/packages/plan/*.yaml) run through the shared
harness: diff -> changes and no-op reasons, plan -> steps, the verifier
accepts the plan, and dropping any step or changing any scalar of any step
input makes it reject the plan. Observe cases replay pkg.state outputs
recorded with the real tool on a scratch root
(tests/controllers/packages/record.py). Error cases (a constraint nothing
satisfies, a backend mismatch) and the version orders (Debian via
python-debian, apk's own, checked against cases from apk-tools'
test/version.data) are tested here directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controllers.packages import CONTROLLER
from controllers.packages.state import PackagesState, Pkg
from controllers.packages.versions import (
    apk_compare,
    compare,
    newest_first,
    parse_constraint,
    resolve,
    satisfies,
)
from reconciler.sdk.controller import Desired
from reconciler.sdk.errors import PermanentError
from reconciler.sdk.plan import Step
from specs.loader import load_documents
from tests.controllers.harness import cases, desired_from, run_observe_case, run_plan_case

HERE = Path(__file__).parent / "packages"


@pytest.mark.parametrize("path", cases(HERE / "plan"), ids=lambda p: p.stem)
def test_plan_case(path: Path) -> None:
    run_plan_case(CONTROLLER, path)


@pytest.mark.parametrize("path", cases(HERE / "observe"), ids=lambda p: p.stem)
async def test_observe_case(path: Path) -> None:
    await run_observe_case(CONTROLLER, path)


def test_there_are_enough_cases() -> None:
    assert len(cases(HERE / "plan")) >= 10
    assert len(cases(HERE / "observe")) >= 3


# --- version orders -------------------------------------------------------------

# From apk-tools' test/version.data (a < b, a = b, a > b).
APK_CASES = """
2.34 > 0.1.0_alpha
23_foo > 4_beta
1.0 < 1.0bc
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha2 > 0.1.0_alpha
1.1 > 1.1_alpha1
1.2.1 > 1.2
0.12.3 > 0.12
2.3.0b-r1 < 2.3.0b-r2
1.06-r6 < 006
3.1_p16 < 3.1_p17
2.5.1-r8 < 2.5.1a-r1
0.1.0_alpha_pre2 < 0.1.0_alpha
8.2.0 < 8.2.001
8.2.0015 < 8.2.002
1.0~1234 < 1.0~2345
1.0~1234-r1 > 1.0~1234-r0
20060720 > 3.0.20060720
2.12r-r4 < 2.12r-r5
0.9.28.1 < 087-r1
1.3_pre1-r1 < 1.3.2
6.0_pre1 < 6.0
6.0_p1 > 6.0
4.5_p1 < 4.5_p1-r1
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
1.0_p10-r0 > 1.0_p9-r0
1.7 < 1.7b
2.16.1-r3 = 2.16.1-r3
""".strip().splitlines()


@pytest.mark.parametrize("line", APK_CASES)
def test_apk_order_matches_apk_tools(line: str) -> None:
    a, op, b = line.split()
    want = {"<": -1, "=": 0, ">": 1}[op]
    assert apk_compare(a, b) == want and apk_compare(b, a) == -want


@pytest.mark.parametrize(
    ("version", "bound", "match"),
    [
        ("3.6.0", "3.6", True),
        ("3.6.9", "3.6", True),
        ("3.6_pre1", "3.6", True),
        ("3.6.0", "3.6.0", True),
        ("3.6.0", "3.8", False),
        ("3.8", "3.8.1", False),
        ("3.8.0.1", "3.8.1", False),
    ],
)
def test_apk_fuzzy_match(version: str, bound: str, match: bool) -> None:
    assert (apk_compare(version, bound, fuzzy=True) == 0) is match
    assert satisfies("apk", version, parse_constraint(f"~{bound}")) is match


def test_debian_order_and_constraints() -> None:
    assert compare("apt", "1.0~rc1-1", "1.0-1") == -1
    assert compare("apt", "1:0.1-1", "9.9-1") == 1
    assert compare("apt", "1.1", "1.1-0") == 0
    assert compare("apt", "1.10-1", "1.9-1") == 1
    assert newest_first("apt", ["1.0-1", "1.10-1", "1.9-1", "1.0-1"]) == (
        "1.10-1",
        "1.9-1",
        "1.0-1",
    )
    constraint = parse_constraint(">= 1.0, << 2")
    assert constraint.clauses == ((">=", "1.0"), ("<", "2"))
    assert resolve("apt", constraint, ["2.0-1", "1.1-1", "1.0-1"]) == "1.1-1"
    assert resolve("apt", parse_constraint(">2"), ["2.0-1"]) == "2.0-1"  # 2.0-1 > 2
    assert resolve("apt", parse_constraint(">2.0-1"), ["2.0-1"]) is None
    assert parse_constraint("==1.2-1").exact == "1.2-1" and parse_constraint(">=1").exact is None
    for version, match in (("1.2", True), ("1.2-1", True), ("1.2.3-1", True), ("1.2~rc1", True)):
        assert satisfies("apt", version, parse_constraint("~1.2")) is match
    assert not satisfies("apt", "1.20-1", parse_constraint("~1.2"))
    with pytest.raises(ValueError, match="not a version constraint"):
        parse_constraint(">= 1 2")


# --- errors, destructive/forced, effects, export -------------------------------

SPEC = """\
apiVersion: aios.dev/v1
kind: Packages
metadata: {{name: base}}
spec:
  backend: {backend}
  packages:
{packages}
"""


def desired(packages: str, backend: str = "auto") -> Desired:
    text = SPEC.format(backend=backend, packages=packages)
    return desired_from({"specs": text}, CONTROLLER)


STATE = PackagesState(
    backend="apt",
    packages=(
        Pkg(name="aios-demo-agent", version="1.0-1", depends=("aios-demo-tools",)),
        Pkg(name="aios-demo-base", version="2.0-1", auto=True),
        Pkg(name="aios-demo-extra", version="1.1-1"),
        Pkg(name="aios-demo-tools", version="1.2-1", auto=True, depends=("aios-demo-base",)),
    ),
    available={"aios-demo-base": ("2.0-1", "1.1-1", "1.0-1"), "aios-demo-models": ()},
)


def test_no_version_satisfies_the_constraint_names_package_and_versions() -> None:
    with pytest.raises(PermanentError) as err:
        CONTROLLER.diff(desired('    - {name: aios-demo-base, version: ">=3"}'), STATE)
    assert str(err.value) == (
        "Packages/base: no available version of package aios-demo-base satisfies '>=3' "
        "(available: 2.0-1, 1.1-1, 1.0-1)"
    )


def test_a_package_nothing_offers_is_a_clear_error() -> None:
    with pytest.raises(PermanentError, match="aios-demo-models is not offered by any"):
        CONTROLLER.diff(desired("    - {name: aios-demo-models}"), STATE)


def test_a_removal_that_would_take_a_declared_package_along_is_refused() -> None:
    spec = "    - {name: aios-demo-base, state: absent, force: true}\n    - name: aios-demo-agent"
    with pytest.raises(PermanentError) as err:
        CONTROLLER.diff(desired(spec), STATE)
    assert str(err.value) == (
        "Packages/base: removing aios-demo-base would also remove aios-demo-agent, which "
        "depends on it (apt removes what depends on a removed package), but aios-demo-agent "
        "is declared present"
    )


def test_backend_mismatch_is_refused() -> None:
    with pytest.raises(PermanentError, match=r"spec.backend is apk, but the target's package"):
        CONTROLLER.diff(desired("    - {name: aios-demo-base}", backend="apk"), STATE)


def test_destructive_and_forced_do_not_trust_the_step() -> None:
    lying = Step(tool="pkg.ensure", input={"remove": ["aios-demo-base"]}, reason="harmless")
    assert CONTROLLER.destructive(STATE, lying) == (
        "removes aios-demo-base (needed by aios-demo-tools)"
    )
    together = lying.model_copy(
        update={"input": {"remove": ["aios-demo-agent", "aios-demo-base", "aios-demo-tools"]}}
    )
    assert CONTROLLER.destructive(STATE, together) is None
    assert CONTROLLER.destructive(STATE, Step(tool="pkg.repos", input={}, reason="")) is None
    forced = desired("    - {name: aios-demo-base, state: absent, force: true}")
    assert CONTROLLER.forced(forced, lying)
    assert not CONTROLLER.forced(desired("    - {name: aios-demo-base, state: absent}"), lying)
    # force covers the whole transaction: another removal without it spoils it
    both = lying.model_copy(update={"input": {"remove": ["aios-demo-base", "aios-demo-extra"]}})
    assert not CONTROLLER.forced(forced, both)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            Step(tool="pkg.install", input={"name": "x"}, reason=""),
            "does not know tool pkg.install",
        ),
        (
            Step(
                tool="pkg.ensure",
                input={"install": [{"name": "aios-demo-base", "version": "9"}]},
                reason="",
            ),
            "aios-demo-base 9, which no repository offers",
        ),
        (
            Step(tool="pkg.ensure", input={"hold": ["aios-demo-models"]}, reason=""),
            "cannot hold aios-demo-models: not installed",
        ),
        (
            Step(tool="pkg.ensure", input={"remove": ["a"], "hold": ["a"]}, reason=""),
            "in both hold and remove",
        ),
        (Step(tool="pkg.ensure", input={"force": True}, reason=""), "cannot model input field"),
        (
            Step(tool="pkg.repos", input={"repositories": [], "update_index": False}, reason=""),
            "without update_index",
        ),
    ],
)
def test_effects_refuse_what_they_cannot_predict(step: Step, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CONTROLLER.simulate(STATE, [step])


def test_effects_removal_must_name_the_configured_repository() -> None:
    state = PackagesState.model_validate(
        {"backend": "apt", "repositories": [{"name": "r", "url": "http://a.example/x"}]}
    )
    entry = {"name": "r", "url": "http://b.example/x", "state": "absent"}
    step = Step(tool="pkg.repos", input={"repositories": [entry]}, reason="")
    with pytest.raises(ValueError, match=r"configured as http://a\.example/x"):
        CONTROLLER.simulate(state, [step])
    step.input["repositories"][0]["url"] = "http://a.example/x"
    assert CONTROLLER.simulate(state, [step]).repositories == ()


def test_export_validates_and_replans_to_nothing() -> None:
    state = PackagesState.model_validate(
        {
            "backend": "apt",
            "packages": [
                {"name": "aios-demo-base", "version": "1.1-1", "hold": True, "auto": True},
                {"name": "aios-demo-console", "version": "1.0-1", "depends": ["aios-demo-base"]},
                {"name": "aios-demo-tools", "version": "1:1.2-1", "hold": True},
                {"name": "libfoo", "version": "2.0-1", "auto": True},
            ],
            "repositories": [
                {"name": "aios-demo", "url": "http://127.0.0.1:18080/apt", "trusted": True},
                {
                    "name": "mirror",
                    "url": "http://mirror.example/debian",
                    "suite": "bookworm",
                    "components": ["main"],
                    "signed_by": "/usr/share/keyrings/m.gpg",
                },
            ],
        }
    )
    documents = CONTROLLER.export(state)
    # libfoo is an automatic dependency: left out; base is automatic but held: exported
    assert [p["name"] for p in documents[0]["spec"]["packages"]] == [
        "aios-demo-base", "aios-demo-console", "aios-demo-tools",
    ]  # fmt: skip
    specset = load_documents([("exported.json", json.dumps(documents[0]).encode())])
    again = Desired("packages", tuple(specset.resources))
    result = CONTROLLER.diff(again, state)
    assert result.changes == ()
    assert {n.object for n in result.noops} == {
        "package:aios-demo-base", "package:aios-demo-console", "package:aios-demo-tools",
        "repository:aios-demo", "repository:mirror",
    }  # fmt: skip
