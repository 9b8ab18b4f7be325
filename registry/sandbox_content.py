"""What a sandbox provides besides its registry: package repository and model server.

PLACEHOLDER, to be filled by the package/storage/model engineer (it owns this
module): `provision(box)` builds the local apt repository of the demo packages
(registry.demo) under the sandbox and starts the model/file server inside its
netns; `teardown(box)` stops what provision started. Both are called by
registry.sandbox (`aios sandbox up` after the registry serves, `aios sandbox
down` before anything is removed). Until then they do nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from registry.sandbox import Sandbox


async def provision(box: Sandbox) -> None:
    """Build the sandbox's package repository and start its model server (not yet)."""


async def teardown(box: Sandbox) -> None:
    """Stop what `provision` started (nothing yet)."""
