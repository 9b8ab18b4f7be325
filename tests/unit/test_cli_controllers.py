"""The CLI's lazy controller mapping: only the domains a spec set involves are imported."""

from __future__ import annotations

import json
import subprocess
import sys

from reconciler.cli.common import LazyControllers

PROBE = """
import json, sys
from reconciler.cli.common import LazyControllers
controllers = LazyControllers()
try:
    assert controllers["firewall"].domain == "firewall"
except KeyError:
    pass  # the firewall package exports no CONTROLLER (yet)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("controllers."))))
"""


def test_looking_up_one_domain_imports_only_that_controller_package() -> None:
    """Every domain's declaration (its package and domain.py, both light) is read;
    only the firewall's controller code is imported."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    modules = json.loads(out)
    declarations = {m for m in modules if m.count(".") == 1 or m.endswith(".domain")}
    imported = {m.split(".")[1] for m in modules if m not in declarations}
    assert imported <= {"firewall"}, imported


def test_mapping_behaviour() -> None:
    controllers = LazyControllers(("network", "firewall"))
    assert "storage" not in controllers
    assert set(controllers) <= {"network", "firewall"}
    assert len(controllers) == len(list(controllers))
    for domain, controller in controllers.items():
        assert controller.domain == domain
