"""Tool handlers, one module per namespace; each module exports TOOLS.

A module's TOOLS is a tuple of Tool subclasses (see registry.core.tool), each with
`spec` set to its definition in contract.catalogue; registry.handlers.index collects
them by tool name and checks them against that catalogue. Handlers parse arguments
and call registry.drivers and registry.core, never registry.server (which imports
them).
"""
