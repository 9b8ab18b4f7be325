"""Sandboxes: a tool registry in its own network and mount namespace over a scratch root.

lifecycle (up/down/start; the public API, re-exporting the records of box), box (where a
sandbox lives, meta.json), content (the demo package repository and model server a
sandbox provides), demo (the demo packages and deterministic GGUF models), debrepo (the
flat apt repository built from them), fileserver (the static HTTP server run inside the
namespace). The sandbox sits on the registry (it starts one and uses registry.core and
registry.drivers.pkg); it never imports the reconciler or the controllers — the CLI
(reconciler.cli) imports it.
"""
