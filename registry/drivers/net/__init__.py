"""registry.drivers.net."""
