"""registry.drivers.pkg."""
