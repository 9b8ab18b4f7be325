"""Read-only registry access for observe(): the engine's StateReader.

Wraps the registry client and refuses every tool the catalogue marks as a
writer (derived from its capabilities), so planning can never make a write
call, whatever a controller or a model asks for. Records the reads it made.
With a `retry` (the engine's), a read that fails with a TemporaryError is
sent again after max(delay, backoff), a bounded number of times: a read
changes nothing, so running it twice is safe.
Also gives controllers a small persistent cache (the store's), e.g. for nft's
canonical form of desired tables.
Used by the engine (plan, apply, verify) and by `aios get` and `aios export`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract.tooldef import ToolSpec
from reconciler.sdk.errors import PlanRejected, ToolFailed, ToolNotFound
from reconciler.sdk.ports import Cache, Registry
from reconciler.sdk.retry import NO_RETRY, Retry


class ReadOnlyReader:
    """A StateReader (reconciler.sdk.ports) over the registry client."""

    def __init__(
        self,
        client: Registry,
        catalogue: Mapping[str, ToolSpec],
        *,
        reason: str,
        cache: Cache | None = None,
        retry: Retry = NO_RETRY,
    ) -> None:
        self._client = client
        self._retry = retry
        self._catalogue = catalogue
        self._reason = reason
        self._cache = cache
        self._memory: dict[str, str] = {}
        self.calls: list[str] = []

    def cache_get(self, key: str) -> str | None:
        if key in self._memory:
            return self._memory[key]
        return self._cache.cache_get(key) if self._cache is not None else None

    def cache_put(self, key: str, value: str) -> None:
        self._memory[key] = value
        if self._cache is not None:
            self._cache.cache_put(key, value)

    def has_tool(self, tool: str) -> bool:
        return tool in self._catalogue

    async def read(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        spec = self._catalogue.get(tool)
        if spec is None:
            raise ToolNotFound(f"the registry has no tool {tool}; observe needs it")
        if spec.writes:
            raise PlanRejected([f"observe may only read: {tool} is a write tool"])
        self.calls.append(tool)
        result = await self._retry.run(lambda: self._client.call(tool, args, reason=self._reason))
        output = result.output
        if not isinstance(output, dict):
            raise ToolFailed(f"{tool} returned {type(output).__name__}, not a JSON object")
        return output
