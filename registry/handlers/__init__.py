"""Tool handlers, one module per namespace; each module exports TOOLS.

registry.handlers.index collects them. A module's TOOLS is a tuple of Tool
subclasses (see registry.core.tool); their `spec`s are the tool catalogue.
"""
