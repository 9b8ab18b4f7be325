"""Version order and version constraints of the two package backends.

apt: Debian version comparison (python-debian's `Version`, i.e. dpkg's
algorithm: epoch, upstream, revision; '~' sorts before everything).
apk: apk-tools' order (digits{.digits}{letter}{_suffix{N}}{~hash}{-rN};
pre-release suffixes _alpha < _beta < _pre < _rc sort before the plain
version, _cvs < _svn < _git < _hg < _p after it; a number with a leading zero
compares as a string), implemented here after apk-tools' src/version.c and
tested against cases of its test/version.data.

A constraint is a comma-separated list of clauses, all of which must hold:
`1.2-1` / `=1.2-1` / `==1.2-1` (exact: equal in the backend's order), `>=`,
`<=`, `>` or `>>` (strictly greater), `<` or `<<` (strictly less), and `~V`
("V or a version starting with V at a component boundary": apk's fuzzy
match; on apt `~1.2` matches 1.2, 1.2-1, 1.2.3-1 and 1.2~rc1, not 1.20).
Pure; used by the packages controller's diff and planner (effects.py needs
no comparison: `available` lists are already newest first).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cmp_to_key

from debian.debian_support import Version

_CLAUSE = re.compile(r"^(==|=|>=|<=|>>|<<|>|<|~)?\s*(\S+)$")
_OPS = {"==": "=", ">>": ">", "<<": "<"}


@dataclass(frozen=True)
class Constraint:
    """A parsed version constraint; `text` is how the spec wrote it."""

    text: str
    clauses: tuple[tuple[str, str], ...]  # (op, version), op in = >= <= > < ~

    @property
    def exact(self) -> str | None:
        """The version of a single `=` clause, else None."""
        if len(self.clauses) == 1 and self.clauses[0][0] == "=":
            return self.clauses[0][1]
        return None


def parse_constraint(text: str) -> Constraint:
    clauses = []
    for part in text.split(","):
        match = _CLAUSE.match(part.strip())
        if not match:
            raise ValueError(f"not a version constraint: {text!r}")
        op = match.group(1) or "="
        clauses.append((_OPS.get(op, op), match.group(2)))
    return Constraint(text, tuple(clauses))


def compare(backend: str, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, with or after `b` in `backend`'s order."""
    if backend == "apk":
        return apk_compare(a, b)
    try:
        left, right = Version(a), Version(b)
    except ValueError:
        return (a > b) - (a < b)
    return (left > right) - (left < right)


def satisfies(backend: str, version: str, constraint: Constraint) -> bool:
    return all(_holds(backend, version, op, bound) for op, bound in constraint.clauses)


def _holds(backend: str, version: str, op: str, bound: str) -> bool:
    if op == "~":
        if backend == "apk":
            return apk_compare(version, bound, fuzzy=True) == 0
        return version == bound or (version.startswith(bound) and version[len(bound)] in ".-+~")
    order = compare(backend, version, bound)
    return {
        "=": order == 0,
        ">=": order >= 0,
        "<=": order <= 0,
        ">": order > 0,
        "<": order < 0,
    }[op]


def newest_first(backend: str, versions: Iterable[str]) -> tuple[str, ...]:
    """Distinct versions, newest first in `backend`'s order (ties by spelling)."""

    def order(a: str, b: str) -> int:
        return compare(backend, a, b)

    return tuple(sorted(sorted(set(versions)), key=cmp_to_key(order), reverse=True))


def resolve(backend: str, constraint: Constraint, available: Iterable[str]) -> str | None:
    """The newest of `available` that satisfies `constraint`, or None."""
    for version in newest_first(backend, available):
        if satisfies(backend, version, constraint):
            return version
    return None


# --- apk ------------------------------------------------------------------------

(INITIAL, DIGIT, LETTER, SUFFIX, SUFFIX_NO, COMMIT_HASH, REVISION_NO, END, INVALID) = range(9)
# Suffix ranks: pre-releases below NONE (the plain version), post-releases above.
_SUFFIXES = {
    "alpha": 1,
    "beta": 2,
    "pre": 3,
    "rc": 4,
    "cvs": 6,
    "svn": 7,
    "git": 8,
    "hg": 9,
    "p": 10,
}
_NONE = 5


@dataclass
class _Token:
    kind: int
    text: str = ""
    number: int = 0
    suffix: int = 0


class _ApkReader:
    """Splits an apk version into tokens, one `step` at a time (apk-tools' token_next)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _run(self, allowed: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start : self.pos]

    def _digits(self, kind: int) -> _Token:
        run = self._run("0123456789")
        return _Token(kind, run, int(run)) if run else _Token(INVALID)

    def first(self) -> _Token:
        return self._digits(INITIAL)

    def step(self, prev: _Token) -> _Token:
        if self.pos >= len(self.text):
            return _Token(END)
        char = self.text[self.pos]
        if "a" <= char <= "z":
            if prev.kind > DIGIT:
                return _Token(INVALID)
            self.pos += 1
            return _Token(LETTER, char)
        if char == "." or char.isdigit():
            return self._number(prev, char)
        if char == "_":
            return self._suffix(prev)
        if char == "~":
            if prev.kind >= COMMIT_HASH:
                return _Token(INVALID)
            self.pos += 1
            run = self._run("0123456789abcdefABCDEF")
            return _Token(COMMIT_HASH, run) if run else _Token(INVALID)
        if char == "-" and prev.kind < REVISION_NO and self.text[self.pos : self.pos + 2] == "-r":
            self.pos += 2
            return self._digits(REVISION_NO)
        return _Token(INVALID)

    def _number(self, prev: _Token, char: str) -> _Token:
        if char == ".":
            if prev.kind > DIGIT:
                return _Token(INVALID)
            self.pos += 1
        if prev.kind in (INITIAL, DIGIT):
            return self._digits(DIGIT)
        if prev.kind == SUFFIX:
            return self._digits(SUFFIX_NO)
        return _Token(INVALID)

    def _suffix(self, prev: _Token) -> _Token:
        if prev.kind > SUFFIX_NO:
            return _Token(INVALID)
        self.pos += 1
        word = self._run("abcdefghijklmnopqrstuvwxyz")
        rank = _SUFFIXES.get(word)
        return _Token(SUFFIX, word, suffix=rank) if rank else _Token(INVALID)


def _sign(a: int | str | bytes, b: int | str | bytes) -> int:
    return int(a > b) - int(a < b)  # type: ignore[operator]


def _token_cmp(a: _Token, b: _Token) -> int:
    if a.kind == DIGIT and (a.text.startswith("0") or b.text.startswith("0")):
        return _sign(a.text.encode(), b.text.encode())
    if a.kind in (INITIAL, DIGIT, SUFFIX_NO, REVISION_NO):
        return _sign(a.number, b.number)
    if a.kind == LETTER:
        return _sign(a.text, b.text)
    if a.kind == SUFFIX:
        return _sign(a.suffix, b.suffix)
    return _sign(a.text.encode(), b.text.encode())


def apk_compare(a: str, b: str, *, fuzzy: bool = False) -> int:
    """apk's order of versions `a` and `b`; `fuzzy`: `b` matches as a prefix (apk's `~`)."""
    ra, rb = _ApkReader(a), _ApkReader(b)
    ta, tb = ra.first(), rb.first()
    while ta.kind == tb.kind and ta.kind < END:
        order = _token_cmp(ta, tb)
        if order:
            return order
        ta, tb = ra.step(ta), rb.step(tb)
    if ta.kind == tb.kind or (tb.kind == END and fuzzy):
        return 0
    # Equal so far: the longer version is newer, unless it goes on with a pre-release suffix.
    if ta.kind == SUFFIX and ta.suffix < _NONE:
        return -1
    if tb.kind == SUFFIX and tb.suffix < _NONE:
        return 1
    return -1 if ta.kind > tb.kind else 1 if tb.kind > ta.kind else 0
