"""The ports the engine and the controllers reach the outside world through.

- `Registry`: the registry client as the engine uses it — the catalogue
  (`list_tools`), one tool call (`call`), and undoing a call (`rollback`).
  reconciler.client.RegistryClient implements it (mypy checks that where the
  CLI hands it to the engine); unit tests hand in scripted doubles.
- `CallResult`: what a call returns (its parsed output and execution id).
- `Cache`: a small persistent string cache (the engine's store offers one);
  the verifier memoizes schema checks in it, controllers canonical forms.
- `StateReader`: what a controller's observe() reads through — registry
  reads only (the engine's reconciler.engine.reader refuses write tools),
  plus the cache.
- `ChangeSource` and `Change`: the registry's change feed as the daemon
  subscribes to it (aios.changes.ChangeFeed/Watch): what changed, by domain;
  `resync` means "observe the whole domain". A registry without the feed
  (aiOS's own) raises reconciler.sdk.errors.FeedUnavailable and the daemon
  polls. RegistryClient implements it.

Protocols and one frozen dataclass: importing this module imports nothing but the contract's
ToolSpec. Imported by reconciler.sdk.controller (StateReader), the engine
(reconcile, apply, execute, reader, verify) and the client's users.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from contract.tooldef import JSON, ToolSpec

ProgressCallback = Callable[[int, int, str], None]  # done, total, message


class CallResult(Protocol):
    """One tool call's result: the parsed output JSON and the registry's execution id."""

    @property
    def output(self) -> Any: ...

    @property
    def execution_id(self) -> str: ...


class Registry(Protocol):
    """The registry client: catalogue, calls, rollback (errors: reconciler.sdk.errors)."""

    async def list_tools(self) -> Mapping[str, ToolSpec]: ...

    async def call(
        self,
        tool: str,
        args: Mapping[str, Any],
        *,
        reason: str,
        on_progress: ProgressCallback | None = None,
    ) -> CallResult: ...

    async def rollback(self, execution_id: str, reason: str) -> None: ...


class Cache(Protocol):
    """A persistent string cache: values survive across runs (the store's table)."""

    def cache_get(self, key: str) -> str | None:
        """A value cached earlier, or None."""
        ...

    def cache_put(self, key: str, value: str) -> None:
        """Cache a derived value (e.g. nft's canonical form of a desired table)."""
        ...


class StateReader(Cache, Protocol):
    """Read-only access to the registry for observe(): write tools are refused."""

    async def read(self, tool: str, args: Mapping[str, Any]) -> JSON: ...

    def has_tool(self, tool: str) -> bool: ...


@dataclass(frozen=True)
class Change:
    """One change the registry saw: its domain (network, firewall, packages, storage,
    models), the source that saw it (rtnetlink, nft-monitor, mountinfo,
    inotify:<path>, sysctl, feed), one line of detail, when (Unix ms), and
    whether the whole domain must be observed again (`resync`: on connect, after
    an overflow, after a watcher restarted)."""

    domain: str
    source: str
    detail: str
    time_ms: int
    resync: bool


class ChangeSource(Protocol):
    """The registry's change feed: a resync per domain first, then changes as they come.

    The iteration ends only with an error: FeedUnavailable (no feed, or the
    connection went: resubscribe or poll)."""

    def changes(self, domains: Sequence[str]) -> AsyncIterator[Change]: ...


__all__ = [
    "JSON",
    "Cache",
    "CallResult",
    "Change",
    "ChangeSource",
    "ProgressCallback",
    "Registry",
    "StateReader",
]
