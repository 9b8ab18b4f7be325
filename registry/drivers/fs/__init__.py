"""registry.drivers.fs."""
