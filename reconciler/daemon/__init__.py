"""The daemon (`aios daemon`, issue 10), being built: so far its per-key retry policy."""
