"""Error types shared by the engine, the controllers, the client and the CLI.

Every error says whether retrying can help (`retryable`). A TemporaryError
also says after how long (`delay`) and whether the registry refused the call
before running it (`before_run`: a rate limit, a connection that never
opened), so sending it again cannot run it twice. The engine retries with
reconciler.sdk.retry: an observe's reads on any TemporaryError, a write only
when `before_run`, each after max(delay, backoff), a bounded number of times;
the last error then says how often it was retried (`retried`). The planner
does not blame a resource for a retryable error and reports it as Degraded
rather than Stalled (a plan's failures carry `retryable`); the CLI maps the
classes to exit codes. gRPC exceptions are translated into these at the
boundary (reconciler.client) and never leak further.

    SpecError (specs.errors)       invalid specs (ValueError); carries every issue found
    AiosError                      base; `retryable` is False unless stated
    ├── TemporaryError             retry after `delay` seconds (backoff applies)
    │   ├── RegistryUnavailable    transport failure, deadline, UNAVAILABLE
    │   ├── RateLimited            the registry's token bucket said no (before_run)
    │   └── FeedUnavailable        no change feed (UNIMPLEMENTED: aiOS's registry), or
    │                              its stream was lost: the daemon polls, resubscribes
    └── PermanentError             retrying the same input cannot succeed
        ├── ToolNotFound           the registry has no such tool
        ├── ToolRejected           the registry refused the call (schema, capability)
        ├── ToolFailed             the tool ran and failed
        ├── PlanRejected           the verifier refused a plan; carries findings
        ├── DestructiveRefused     a destructive step without `force: true`
        └── StalePlan              a saved plan no longer matches what it was made for
    StateStoreError (AiosError)    the state directory cannot be read or written; its
                                   `retryable` says which (busy, full: yes; corrupt: no)
"""

from __future__ import annotations

from collections.abc import Sequence

from specs.errors import SpecError


class AiosError(Exception):
    """Base of every error this project raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TemporaryError(AiosError):
    """A failure that may pass: retry after `delay` seconds.

    `before_run`: the registry refused the call before running the tool (or
    it never reached the registry), so it can be sent again even when the
    tool is not idempotent. False when it may have run (a deadline passed
    while it ran, the connection dropped mid-call). `retried`: how many
    times the call was retried before this error was given up on.
    """

    retryable = True
    refused_before_run = False  # the class's default for `before_run`

    def __init__(self, message: str, *, delay: float = 1.0, before_run: bool | None = None) -> None:
        super().__init__(message)
        self.delay = delay
        self.before_run = self.refused_before_run if before_run is None else before_run
        self.retried = 0

    def gave_up(self, retries: int) -> None:
        """Record that `retries` retries did not help; the message says so."""
        self.retried = retries
        if retries:
            self.message = f"{self.message} (retried {retries} times)"
            self.args = (self.message,)


class RegistryUnavailable(TemporaryError):
    """The tool registry could not be reached or did not answer in time."""


class RateLimited(TemporaryError):
    """The registry's rate limiter refused the call (before running it)."""

    refused_before_run = True


class FeedUnavailable(TemporaryError):
    """The registry's change feed cannot be watched: the registry has none
    (UNIMPLEMENTED, aiOS's own registry) or the stream was lost (the message says
    which). The daemon falls back to polling and tries the feed again later."""

    def __init__(self, message: str, *, unimplemented: bool = False, delay: float = 1.0) -> None:
        super().__init__(message, delay=delay)
        self.unimplemented = unimplemented


class PermanentError(AiosError):
    """A failure that repeats until its input changes."""


class ToolNotFound(PermanentError):
    """The registry does not know the tool (NOT_FOUND, or INTERNAL on aiOS)."""


class ToolRejected(PermanentError):
    """The registry refused to run the call: bad input, missing capability."""


class ToolFailed(PermanentError):
    """The tool ran and reported failure."""

    def __init__(self, message: str, *, execution_id: str = "") -> None:
        super().__init__(message)
        self.execution_id = execution_id


class PlanRejected(PermanentError):
    """The verifier refused a plan; `findings` says why, one line each."""

    def __init__(self, findings: Sequence[str]) -> None:
        self.findings = tuple(findings)
        super().__init__("; ".join(self.findings) or "plan rejected")


class DestructiveRefused(PlanRejected):
    """A plan contains a destructive step whose item lacks `force: true`."""


class Interrupted(TemporaryError):
    """The work stopped between two calls because the process is shutting down;
    what ran stays (said in the status), the rest runs on the next reconcile."""


class StalePlan(PermanentError):
    """A saved plan was made for other specs, state, tools or aios version."""


class StateStoreError(AiosError):
    """The reconciler's state directory cannot be used: corrupt, busy, full, read-only...

    The message names the file and says what to do. `retryable` is set per case:
    a busy database, a held writer lock or a full file system may pass (retry
    after `delay` seconds); a corrupt, emptied or misplaced one repeats until an
    operator acts. Raised by reconciler.engine.store; the CLI prints it (exit 1).
    """

    def __init__(self, message: str, *, retryable: bool = False, delay: float = 2.0) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.delay = delay


__all__ = [
    "AiosError",
    "DestructiveRefused",
    "FeedUnavailable",
    "Interrupted",
    "PermanentError",
    "PlanRejected",
    "RateLimited",
    "RegistryUnavailable",
    "SpecError",
    "StalePlan",
    "StateStoreError",
    "TemporaryError",
    "ToolFailed",
    "ToolNotFound",
    "ToolRejected",
]
