"""The registry's server layer: the gRPC service and everything around one Execute.

grpc (the aios.tools.ToolRegistry service and health) -> pipeline (lookup, schema
check, capabilities, rate limit, run, output check, audit) -> execution (namespace
locks, contexts, before-images, timeouts, the job table); rollback (Rollback through
the tool's restore), backups, audit (HMAC-chained log), capabilities, ratelimit,
profiles (`full` / `aios`), toolset (built-ins, plugins, registered tools), plugins and
external (tools served elsewhere). Imports registry.handlers, registry.drivers and
registry.core; nothing imports it but reconciler.cli.registry (`aios registry serve`)
and tests.
"""
