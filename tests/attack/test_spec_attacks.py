"""The attack corpus, spec side: every case of tests/attack/specs is refused by `aios validate`.

Each case is `NAME.yaml` (or a tree `NAME/`) plus `NAME.expect` in the format of
tests/specs/corpus/README.md. Names start with the area they attack (`ifname-`,
`root-`, `mkfs-`, `mount-`, `pkg-`, `net-` ...); the registry-side twin of each
case lives in tests/attack/test_registry_*.py, so both layers refuse it. Each
case runs in its own subprocess (1 GiB, 20 s): exit 1, exactly the expected
file:line:col errors, never a traceback.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from corpus_support import assert_reports, cases, expected_for, run_all

CORPUS = Path(__file__).resolve().parent / "specs"


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess[str]]:
    return run_all(CORPUS)


def test_every_case_has_its_input() -> None:
    for name in cases(CORPUS):
        assert (CORPUS / f"{name}.yaml").is_file() or (CORPUS / name).is_dir(), name


@pytest.mark.parametrize("name", cases(CORPUS))
def test_spec_attack_is_refused(
    name: str, results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    expected = expected_for(CORPUS, name)
    assert expected, f"{name}.expect is empty"
    assert_reports(results[name], expected)
