"""The packages controller: observe, diff, plan (rules), effects (simulation)."""
