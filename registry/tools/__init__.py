"""Tool handlers, one module per namespace; each module exports TOOLS.

registry.catalogue collects them. A module's TOOLS is a tuple of Tool
subclasses (see registry.tooling); their `spec`s are the tool catalogue.
"""
