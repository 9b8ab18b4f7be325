"""Model drivers: resumable, verified downloads (download); model files on disk — the
GGUF header check, the sha256 cache and sidecar, keeping a file aside (files); and the
AI runtime — an async gRPC client of aios.runtime.AIRuntime and the registry's record of
what it loaded there (runtime); the change feed's models watcher (monitor: the model
directory, inotify).

Used by the `model.*` handlers (registry.handlers.model, registry.handlers.model_runtime).
"""
