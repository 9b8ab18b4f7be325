"""The registry's base layer: what every tool handler and driver builds on.

errors (ToolError), tool (Tool, ToolContext, Runner, CommandResult, Progress), rootfs
(paths under `--root`, resolved inside the root at the moment of use), process
(external commands in their own process groups), atomicfile and managedblock (file
helpers), watch (the change feed's monitor children and inotify watches). Imports only
the contract, the standard library and watchfiles; nothing in registry.drivers,
registry.handlers or registry.server.
"""
