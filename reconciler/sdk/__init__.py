"""The controller SDK: what a domain controller is written against.

- `controller`: the abstract `Controller` base class (observe, diff, plan, simulate,
  destructive, forced, export, transactions) and what the engine hands it:
  `Desired` (a domain's resources, its inventory, what is pruned), `Diff`,
  `Call`.
- `ports`: the protocols of the registry client (what observe reads and the
  engine executes through) and of the persistent cache.
- `plan`: `Frozen`, and changes, no-ops, steps and plans as frozen pydantic
  data, with canonical JSON and digests.
- `diffing`: the collector a controller's diff builds its changes with.
- `removals`: which undeclared objects aios created a diff removes (one rule,
  one documented precedence, for every domain).
- `retry`: the one retry policy for registry calls (TemporaryError `delay`,
  exponential backoff, an injected sleep).
- `errors`: the error tree (temporary or permanent, with `retryable` and
  `delay`) shared by controllers, engine, client and CLI.

Imports specs and contract only. Controllers import this and never the
engine; the engine implements what it promises.
"""
