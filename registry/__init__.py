"""The aiOS tool registry: an `aios.tools.ToolRegistry` gRPC server and the tools it runs.

This is the far end of the wire. The reconciler reaches it only through gRPC
(reconciler.client); the tool definitions both sides share (names, JSON Schemas, risk,
flags) are data in contract.catalogue, and the registry imports nothing but the
contract: never reconciler, controllers, specs or sandbox (pyproject.toml's import
contracts and tests/unit/test_import_graph.py enforce it). `aios registry serve`
(reconciler.cli.registry) and the sandbox (sandbox.lifecycle, in a child process) start it.

Four layers, each importing only the ones below it:

- registry.server: the gRPC service and the Execute pipeline (schema check,
  capabilities, rate limits, before-images, timeouts, audit, backups, Rollback,
  profiles, plugins, external handlers). May import handlers, drivers and core.
- registry.handlers: one Tool class per tool (registry.handlers.index lists them),
  each with its contract.catalogue spec; parses arguments and calls drivers. May
  import drivers and core.
- registry.drivers.<domain> (net, nft, pkg, storage, model, fs): what acts on the
  system — command builders, parsers, state readers, before-images. A driver package
  imports core and its own domain only; the domains are independent of each other,
  and fs (path before-images) sits below them as the one shared driver.
- registry.core: what every tool uses — ToolError, the Tool/ToolContext interface,
  paths under the scratch root (rootfs), process groups, atomic files, managed
  blocks. Imports nothing of the registry above it.
"""
