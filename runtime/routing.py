"""Which model answers an Infer: aiOS's routing (docs/aios-contract.md §4.5), as a pure function.

`route(model, level, ready)` takes the request's `model` and `intelligence_level` and the
names of the models that are `ready`, in the order the runtime knows them, and returns the
name to use or raises `RoutingError` with the gRPC status kind aiOS answers with:

1. a non-empty `model` that is ready is used;
2. otherwise the level's candidates, in their order: the first candidate some ready model's
   name contains (ignoring case) picks the first such model — operational: `tinyllama-1.1b`,
   `DeepSeek-R1-Distill-Qwen-8B`, `mistral-7b`; tactical: `DeepSeek-R1-Distill-Qwen-8B`,
   `Qwen3-14B`, `mistral-7b`, `tinyllama-1.1b`; strategic: `Qwen3-14B`,
   `DeepSeek-R1-Distill-Qwen-8B`, `mistral-7b`. `reactive` is refused (INVALID_ARGUMENT:
   handle it with heuristics). An unknown or empty level has no candidates;
3. then any ready model (the first);
4. else, with no model ready at all, FAILED_PRECONDITION for `strategic` (route it via the
   api-gateway) and UNAVAILABLE for every other level.

A requested model that is not ready falls through silently, as on aiOS: callers read
`model_used`. Levels are matched as written (aiOS's spelling is lower case).

Called by runtime.server for Infer and StreamInfer; on-demand loading of a named model
happens there, before routing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

RoutingKind = Literal["invalid_argument", "failed_precondition", "unavailable"]

CANDIDATES: dict[str, tuple[str, ...]] = {
    "operational": ("tinyllama-1.1b", "DeepSeek-R1-Distill-Qwen-8B", "mistral-7b"),
    "tactical": ("DeepSeek-R1-Distill-Qwen-8B", "Qwen3-14B", "mistral-7b", "tinyllama-1.1b"),
    "strategic": ("Qwen3-14B", "DeepSeek-R1-Distill-Qwen-8B", "mistral-7b"),
}
REACTIVE = "reactive"
STRATEGIC = "strategic"


class RoutingError(Exception):
    """No model for this request; `kind` names the gRPC status to answer with."""

    def __init__(self, kind: RoutingKind, message: str) -> None:
        super().__init__(message)
        self.kind: RoutingKind = kind
        self.message = message


def route(model: str, level: str, ready: Sequence[str]) -> str:
    """The name of the ready model that answers, or RoutingError (see the module docstring)."""
    if model and model in ready:
        return model
    if level == REACTIVE:
        raise RoutingError(
            "invalid_argument",
            "Reactive intelligence level should be handled with heuristics, not inference",
        )
    for candidate in CANDIDATES.get(level, ()):
        wanted = candidate.lower()
        for name in ready:
            if wanted in name.lower():
                return name
    if ready:
        return ready[0]
    if level == STRATEGIC:
        raise RoutingError(
            "failed_precondition",
            "No model loaded for the strategic level; route strategic requests via the api-gateway",
        )
    raise RoutingError("unavailable", "No models loaded")
