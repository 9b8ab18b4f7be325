"""contract.catalogue."""
