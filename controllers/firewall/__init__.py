"""The firewall controller: observe, diff, plan (rules), effects (simulation)."""
