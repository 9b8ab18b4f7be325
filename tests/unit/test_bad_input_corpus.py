"""Bad input: every case of tests/specs/corpus (and a few generated at test time)
makes `aios validate` exit 1 with the expected file:line:col and message.

Each case runs in its own subprocess under a 1 GiB address-space limit and a
20 s timeout, the way an operator would meet it; a traceback or exit 70 (an
internal error) fails the case. See tests/specs/corpus/README.md for the
`.expect` format.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest
from corpus_support import (
    TIMEOUT,
    Expected,
    assert_reports,
    cases,
    expected_for,
    run_all,
    run_validate,
)

CORPUS = Path(__file__).resolve().parents[1] / "specs" / "corpus"


def test_corpus_is_big_enough() -> None:
    assert len(cases(CORPUS)) >= 40
    for name in cases(CORPUS):
        assert (CORPUS / f"{name}.yaml").is_file() or (CORPUS / name).is_dir(), name


@pytest.fixture(scope="module")
def corpus_results() -> dict[str, subprocess.CompletedProcess[str]]:
    return run_all(CORPUS)


@pytest.mark.parametrize("name", cases(CORPUS))
def test_corpus_case(
    name: str, corpus_results: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    expected = expected_for(CORPUS, name)
    assert expected, f"{name}.expect is empty"
    assert_reports(corpus_results[name], expected)


# --- cases generated at test time (never committed) -------------------------

_HEAD = b"apiVersion: aios.dev/v1\nkind: Network\nmetadata:\n"
GENERATED: dict[str, tuple[bytes, list[tuple[int, int, str]]]] = {
    # A PNG signature: its first NUL byte is at line 3, column 1.
    "binary-garbage": (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + hashlib.shake_256(b"garbage").digest(4096),
        [(3, 1, "yaml: binary data (NUL byte)")],
    ),
    "nul-byte": (_HEAD + b"  name: lan\x00\nspec: {}\n", [(4, 12, "yaml: binary data (NUL byte)")]),
    "invalid-utf8": (
        _HEAD + b"  name: l\xe9n\nspec: {}\n",
        [(4, 10, "yaml: invalid UTF-8 (byte 0xe9)")],
    ),
    "control-character": (
        _HEAD + b"  name: a\x07b\nspec: {}\n",
        [(4, 10, "yaml: control character U+0007 is not allowed")],
    ),
    "utf8-then-bad-byte": (
        _HEAD + "  name: lan\n  labels: {note: \u00e9t\u00e9}\n".encode() + b"spec: {x: \xff}\n",
        [(6, 11, "yaml: invalid UTF-8 (byte 0xff)")],
    ),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_case(name: str, tmp_path: Path) -> None:
    data, errors = GENERATED[name]
    (tmp_path / f"{name}.yaml").write_bytes(data)
    expected = [Expected(f"{name}.yaml", line, col, text) for line, col, text in errors]
    assert_reports(run_validate(["-f", f"{name}.yaml"], tmp_path), expected)


def test_50_megabyte_file_is_refused_by_size_before_parsing(tmp_path: Path) -> None:
    chunk = b"# padding: a comment line that would parse if anyone read it\n" * 16384
    with (tmp_path / "huge.yaml").open("wb") as fh:
        while fh.tell() < 50_000_000:
            fh.write(chunk)
    started = time.monotonic()
    result = run_validate(["-f", "huge.yaml"], tmp_path)
    elapsed = time.monotonic() - started
    assert_reports(result, [Expected("huge.yaml", None, None, "limited to 4 MiB")])
    assert elapsed < TIMEOUT / 2


def test_missing_path_is_a_user_error(tmp_path: Path) -> None:
    result = run_validate(["-f", "nope.yaml"], tmp_path)
    assert_reports(result, [Expected("nope.yaml", None, None, "no such file or directory")])


def test_json_output_lists_structured_errors() -> None:
    result = run_validate(["-f", "bad-cidr.yaml", "-o", "json"], CORPUS)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] is False
    [error] = report["errors"]
    assert error["message"].startswith("invalid address '10.0.0.300/24'")
    assert {k: v for k, v in error.items() if k != "message"} == {
        "path": "bad-cidr.yaml",
        "line": 9,
        "column": 32,
        "resource": "Network/lan",
        "field": "spec.links[0].addresses[1]",
    }
