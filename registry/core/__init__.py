"""registry.core."""
