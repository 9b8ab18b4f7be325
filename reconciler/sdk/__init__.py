"""reconciler.sdk."""
