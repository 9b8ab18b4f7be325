"""registry.drivers.model."""
