"""Settings for the whole test suite.

`aios` runs started by tests never hand their commands to a warm helper
(reconciler.cli.launch) unless a test asks for it explicitly: a helper
started by one test must not serve another test's code or outlive the run.
"""

from __future__ import annotations

import os

os.environ["AIOS_WARM"] = "0"
