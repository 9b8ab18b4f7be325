"""The models controller: observe, diff, plan (rules), effects (simulation)."""
