"""Model drivers: resumable, verified downloads (download) and model files on disk — the
GGUF header check, the sha256 cache, keeping a file aside (files).

Used by the `model.*` handlers (registry.handlers.model).
"""
