"""The attack corpus, spec side: every case of tests/attack/specs is refused by `aios validate`.

Each case is `NAME.yaml` (or a tree `NAME/`) plus `NAME.expect` in the format of
tests/specs/corpus/README.md. Names start with the area they attack (`ifname-`,
`root-`, `mkfs-`, `mount-`, `pkg-`, `net-` ...); the registry-side twin of each
case lives in tests/attack/test_registry_*.py, so both layers refuse it. Each
case runs in its own subprocess (1 GiB, 20 s): exit 1, exactly the expected
file:line:col errors, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from corpus_support import assert_reports, parse_expect, run_validate

CORPUS = Path(__file__).resolve().parent / "specs"


def _cases() -> list[str]:
    return sorted(p.name[: -len(".expect")] for p in CORPUS.glob("*.expect"))


def _invocation(name: str) -> tuple[Path, list[str], str]:
    if (CORPUS / name).is_dir():
        return CORPUS / name, ["-f", "."], "?"
    return CORPUS, ["-f", f"{name}.yaml"], f"{name}.yaml"


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess[str]]:
    def run(name: str) -> subprocess.CompletedProcess[str]:
        cwd, args, _ = _invocation(name)
        return run_validate(args, cwd)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        return dict(zip(_cases(), pool.map(run, _cases()), strict=True))


def test_every_case_has_its_input() -> None:
    for name in _cases():
        assert (CORPUS / f"{name}.yaml").is_file() or (CORPUS / name).is_dir(), name


@pytest.mark.parametrize("name", _cases())
def test_spec_attack_is_refused(
    name: str, results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    expected = parse_expect((CORPUS / f"{name}.expect").read_text(encoding="utf-8"),
                            _invocation(name)[2])  # fmt: skip
    assert expected, f"{name}.expect is empty"
    assert_reports(results[name], expected)
