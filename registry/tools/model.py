"""Tools of the `model` namespace (being written; see registry/tooling.py)."""

from __future__ import annotations

from registry.tooling import Tool

TOOLS: tuple[type[Tool], ...] = ()
