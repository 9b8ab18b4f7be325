"""The storage controller: observe, diff, plan (rules), effects (simulation)."""
