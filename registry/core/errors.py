"""`ToolError`: a tool failed, with a message an operator can act on.

Raised by drivers and handlers; the pipeline (registry.server.pipeline) puts
the message into ExecuteResponse.error verbatim. Kept in its own module at
the bottom of the registry so registry.core.rootfs and the tool context can
both use it without importing each other.
"""

from __future__ import annotations


class ToolError(Exception):
    """A tool failed; the message goes to ExecuteResponse.error verbatim.

    Raise it with a message an operator can act on: what was attempted, on
    which object, and what the backend said (stderr, trimmed).
    """
