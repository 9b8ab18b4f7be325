"""registry.drivers."""
