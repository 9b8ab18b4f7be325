"""The network controller: observe, diff, plan (rules), effects (simulation)."""
