"""The reconcile engine: queue, reconcile loop, sources."""
