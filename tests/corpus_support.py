"""Shared runner pieces of the two spec corpora (tests/specs/corpus, tests/attack/specs).

`Expected` is one line of a `.expect` file, `parse_expect` reads a whole file,
`run_validate` runs `aios validate` in a subprocess under a 1 GiB address-space
limit and a 20 s timeout, and `assert_reports` checks exit 1, no traceback and
exactly the expected error lines. `cases`, `invocation` and `run_all` list a
corpus directory's cases, say how each is run (a file, or a tree with `-f .`)
and run them all, a few processes at a time; `expected_for` reads a case's
`.expect`. Used by tests/unit/test_bad_input_corpus.py
and tests/attack/test_spec_attacks.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ADDRESS_SPACE = 1 << 30
TIMEOUT = 20.0


@dataclass(frozen=True)
class Expected:
    path: str
    line: int | None  # None: a file-level error without a position
    col: int | None
    substring: str

    def matches(self, error_line: str) -> bool:
        where = self.path if self.line is None else f"{self.path}:{self.line}:{self.col}"
        if not error_line.startswith(where + ": "):
            return False
        rest = error_line[len(where) + 2 :]
        for piece in self.substring.split(" ... "):  # " ... " skips any text
            found = rest.find(piece)
            if found < 0:
                return False
            rest = rest[found + len(piece) :]
        return True

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}:{self.col}"
        return f"{where}: ...{self.substring}..."


_EXPECT_LINE = re.compile(r"^(?:(?P<file>[^:]+):)?(?P<line>\d+):(?P<col>\d+): (?P<text>.+)$")


def parse_expect(text: str, default_path: str) -> list[Expected]:
    out = []
    for raw in text.splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        match = _EXPECT_LINE.match(raw)
        assert match, f"bad .expect line: {raw!r}"
        out.append(
            Expected(
                path=match["file"] or default_path,
                line=int(match["line"]),
                col=int(match["col"]),
                substring=match["text"],
            )
        )
    return out


def run_validate(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # The limit is set by prlimit(1), not a preexec_fn: Python code running between
    # fork and exec in this (multithreaded: earlier tests ran gRPC servers) process
    # can trip gRPC's fork handlers, which abort the child before it even starts.
    return subprocess.run(
        ["prlimit", f"--as={ADDRESS_SPACE}", "--",
         sys.executable, "-m", "reconciler.cli.main", "validate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )  # fmt: skip


def assert_reports(result: subprocess.CompletedProcess[str], expected: list[Expected]) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode != 70, f"internal error:\n{output}"
    assert result.returncode == 1, f"exit {result.returncode}:\n{output}"
    lines = result.stderr.splitlines()
    missing = [str(e) for e in expected if not any(e.matches(line) for line in lines)]
    assert not missing, "missing:\n  " + "\n  ".join(missing) + "\ngot:\n  " + "\n  ".join(lines)
    assert len(lines) == len(expected), "unexpected extra errors:\n  " + "\n  ".join(lines)


def cases(corpus: Path) -> list[str]:
    """The case names of a corpus directory: every `NAME.expect`."""
    return sorted(p.name[: -len(".expect")] for p in corpus.glob("*.expect"))


def invocation(corpus: Path, name: str) -> tuple[Path, list[str], str]:
    """cwd, arguments and default error path of a case (a tree runs inside itself)."""
    if (corpus / name).is_dir():
        return corpus / name, ["-f", "."], "?"
    return corpus, ["-f", f"{name}.yaml"], f"{name}.yaml"


def run_all(corpus: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case's `aios validate` run, each its own process, a few at a time."""

    def run(name: str) -> subprocess.CompletedProcess[str]:
        cwd, args, _ = invocation(corpus, name)
        return run_validate(args, cwd)

    names = cases(corpus)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        return dict(zip(names, pool.map(run, names), strict=True))


def expected_for(corpus: Path, name: str) -> list[Expected]:
    """A case's expected errors, from `NAME.expect`."""
    text = (corpus / f"{name}.expect").read_text(encoding="utf-8")
    return parse_expect(text, invocation(corpus, name)[2])
