"""Sandboxes: a tool registry and an AI runtime in their own network and mount namespace.

lifecycle (up/down/start; the public API, re-exporting the records of box; it starts the
registry over a scratch root and `aios runtime serve` in the registry's namespaces), box
(where a sandbox lives, meta.json), content (the demo package repository and model server a
sandbox provides), demo (the demo packages, deterministic GGUF models and the one real
model, SmolLM2, with its pinned sha256), debrepo (the flat apt repository built from them),
fileserver (the static HTTP server run inside the namespace). The sandbox sits on the
registry (it starts one and uses registry.core and registry.drivers.pkg; the runtime it
starts as a command, never imported); it never imports the reconciler or the controllers
— the CLI (reconciler.cli) imports it.
"""
