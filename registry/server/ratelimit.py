"""Token-bucket rate limits of the `aios` profile (docs/aios-contract.md §2.4).

Per agent_id: capacity 20, refill 10 tokens/s; per tool name: capacity 100,
refill 50 tokens/s. Buckets start full on first use. A call takes a token from
the agent's bucket first and then from the tool's; the agent token is spent
even when the tool bucket refuses. Either refusal means `Rate limit exceeded`
(not audited). Called by registry.server.pipeline; the clock is injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

RATE_LIMITED = "Rate limit exceeded"


@dataclass
class TokenBucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float
    stamp: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class RateLimiter:
    agent_capacity: float = 20
    agent_rate: float = 10
    tool_capacity: float = 100
    tool_rate: float = 50
    clock: Callable[[], float] = time.monotonic
    _agents: dict[str, TokenBucket] = field(default_factory=dict)
    _tools: dict[str, TokenBucket] = field(default_factory=dict)

    def allow(self, agent_id: str, tool: str) -> bool:
        now = self.clock()
        agent = self._bucket(self._agents, agent_id, self.agent_capacity, self.agent_rate, now)
        if not agent.take(now):
            return False
        bucket = self._bucket(self._tools, tool, self.tool_capacity, self.tool_rate, now)
        return bucket.take(now)

    @staticmethod
    def _bucket(
        table: dict[str, TokenBucket], key: str, capacity: float, rate: float, now: float
    ) -> TokenBucket:
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = TokenBucket(capacity, rate, capacity, now)
        return bucket
