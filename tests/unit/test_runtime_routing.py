"""runtime.routing.route: every row of aiOS's Infer routing (docs/aios-contract.md §4.5)."""

from __future__ import annotations

import pytest

from runtime.routing import CANDIDATES, RoutingError, route

TINY = "tinyllama-1.1b-chat.Q4_K_M"
MISTRAL = "mistral-7b-instruct.Q4_K_M"
DEEPSEEK = "DeepSeek-R1-Distill-Qwen-8B-Q4"
QWEN = "qwen3-14b-q4"
OTHER = "smollm2-135m-instruct"


@pytest.mark.parametrize(
    ("model", "level", "ready", "expected"),
    [
        # 1. a named model that is ready wins over the level
        (MISTRAL, "operational", [TINY, MISTRAL], MISTRAL),
        (OTHER, "strategic", [QWEN, OTHER], OTHER),
        (TINY, "reactive", [TINY], TINY),  # the name is looked at before the level
        # a named model that is not ready falls through silently
        ("not-loaded", "operational", [MISTRAL, TINY], TINY),
        ("not-loaded", "", [OTHER], OTHER),
        # 2. candidates in the level's order, not in load order
        ("", "operational", [MISTRAL, TINY], TINY),
        ("", "operational", [MISTRAL, DEEPSEEK], DEEPSEEK),
        ("", "operational", [OTHER, MISTRAL], MISTRAL),
        ("", "tactical", [TINY, MISTRAL], MISTRAL),
        ("", "tactical", [TINY, MISTRAL, QWEN], QWEN),
        ("", "tactical", [QWEN, DEEPSEEK], DEEPSEEK),
        ("", "tactical", [OTHER, TINY], TINY),
        ("", "strategic", [MISTRAL, DEEPSEEK, QWEN], QWEN),
        ("", "strategic", [TINY, MISTRAL, DEEPSEEK], DEEPSEEK),
        ("", "strategic", [TINY, MISTRAL], MISTRAL),
        # substrings ignore case
        ("", "operational", [OTHER, "TinyLlama-1.1B-Chat"], "TinyLlama-1.1B-Chat"),
        ("", "strategic", ["deepseek-r1-distill-qwen-8b", OTHER], "deepseek-r1-distill-qwen-8b"),
        # the first ready model with the candidate, when two carry it
        ("", "operational", ["a-tinyllama-1.1b", "b-tinyllama-1.1b"], "a-tinyllama-1.1b"),
        # 3. no candidate ready: any ready model (the first), strategic included
        ("", "operational", [OTHER, "phi-3-mini"], OTHER),
        ("", "strategic", [OTHER, TINY], OTHER),
        # an unknown or empty level has no candidates; levels match as aiOS spells them
        ("", "creative", [OTHER, TINY], OTHER),
        ("", "", [OTHER, TINY], OTHER),
        ("", "Operational", [OTHER, TINY], OTHER),
    ],
)
def test_routes(model: str, level: str, ready: list[str], expected: str) -> None:
    assert route(model, level, ready) == expected


@pytest.mark.parametrize(
    ("model", "level", "ready", "kind", "words"),
    [
        ("", "reactive", [TINY, MISTRAL], "invalid_argument", "heuristics"),
        ("not-loaded", "reactive", [TINY], "invalid_argument", "heuristics"),
        ("", "strategic", [], "failed_precondition", "api-gateway"),
        (QWEN, "strategic", [], "failed_precondition", "api-gateway"),
        ("", "operational", [], "unavailable", "No models loaded"),
        ("", "tactical", [], "unavailable", "No models loaded"),
        ("", "", [], "unavailable", "No models loaded"),
        (TINY, "unknown-level", [], "unavailable", "No models loaded"),
    ],
)
def test_refusals(model: str, level: str, ready: list[str], kind: str, words: str) -> None:
    with pytest.raises(RoutingError) as caught:
        route(model, level, ready)
    assert caught.value.kind == kind
    assert words in caught.value.message
    assert str(caught.value) == caught.value.message


def test_candidate_lists_are_aioss() -> None:
    assert CANDIDATES == {
        "operational": ("tinyllama-1.1b", "DeepSeek-R1-Distill-Qwen-8B", "mistral-7b"),
        "tactical": ("DeepSeek-R1-Distill-Qwen-8B", "Qwen3-14B", "mistral-7b", "tinyllama-1.1b"),
        "strategic": ("Qwen3-14B", "DeepSeek-R1-Distill-Qwen-8B", "mistral-7b"),
    }


def test_two_names_of_one_file_route_each_level() -> None:
    """The issue's case: one GGUF loaded as a tinyllama-1.1b and a mistral-7b name."""
    ready = ["smollm2-as-mistral-7b", "smollm2-as-tinyllama-1.1b"]
    assert route("", "operational", ready) == "smollm2-as-tinyllama-1.1b"
    assert route("", "tactical", ready) == "smollm2-as-mistral-7b"
    assert route("", "strategic", ready) == "smollm2-as-mistral-7b"
    assert route("", "", ready) == "smollm2-as-mistral-7b"
    with pytest.raises(RoutingError, match="heuristics"):
        route("", "reactive", ready)
