"""registry.drivers.storage."""
