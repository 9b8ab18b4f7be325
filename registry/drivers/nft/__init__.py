"""registry.drivers.nft."""
