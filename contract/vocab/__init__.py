"""contract.vocab."""
