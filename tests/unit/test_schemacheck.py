"""Whole-string `pattern` semantics for every schema the registry and the plan gate check."""

from __future__ import annotations

from contract import schemacheck
from registry.server import pipeline


def test_a_final_dollar_is_end_of_text() -> None:
    check = schemacheck.validator({"type": "string", "pattern": "^[a-z0-9]+$"})
    assert check.is_valid("eth0")
    assert not check.is_valid("eth0\n")
    assert not check.is_valid("eth0\nip link del lo")


def test_other_patterns_keep_search_semantics() -> None:
    assert schemacheck.validator({"type": "string", "pattern": "^a"}).is_valid("abc\n")
    assert schemacheck.validator({"type": "string", "pattern": r"a\$"}).is_valid("xa$")
    assert not schemacheck.validator({"type": "string", "pattern": r"a\$"}).is_valid("xa")


def test_non_strings_are_not_pattern_checked() -> None:
    assert schemacheck.validator({"pattern": "^x$"}).is_valid(5)


def test_the_message_names_value_and_pattern() -> None:
    error = pipeline.first_error({"type": "string", "pattern": "^[a-z]+$"}, "ab\n")
    assert error == "$: 'ab\\n' does not match '^[a-z]+$'"
