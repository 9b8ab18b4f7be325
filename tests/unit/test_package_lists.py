"""Every list of the project's packages names the same packages.

reconciler.cli.launch.PACKAGES is the list the warm helper's code signature
covers (and scripts/install.sh and bench/bench_peers.py byte-compile); the
wheel, mypy and import-linter take theirs from pyproject.toml. A package
missing from one of them is code a stale warm helper keeps running, code mypy
never checks, or imports no contract sees.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from reconciler.cli.launch import PACKAGES, ROOT

PYPROJECT = tomllib.loads((Path(ROOT) / "pyproject.toml").read_text())


def top_level_packages() -> set[str]:
    return {p.parent.name for p in Path(ROOT).glob("*/__init__.py")} - {"tests", "bench"}


def test_launch_list_is_every_top_level_package() -> None:
    assert set(PACKAGES) == top_level_packages()
    assert len(PACKAGES) == len(set(PACKAGES))


def test_pyproject_lists_equal_the_launch_list() -> None:
    wheel = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    mypy = PYPROJECT["tool"]["mypy"]["packages"]
    roots = PYPROJECT["tool"]["importlinter"]["root_packages"]
    for name, listed in (("wheel", wheel), ("mypy", mypy), ("import-linter", roots)):
        assert sorted(listed) == sorted(PACKAGES), name


def test_install_and_bench_compile_the_launch_list() -> None:
    install = (Path(ROOT) / "scripts" / "install.sh").read_text()
    assert "from reconciler.cli.launch import PACKAGES" in install
    bench = (Path(ROOT) / "bench" / "bench_peers.py").read_text()
    assert "from reconciler.cli.launch import PACKAGES" in bench
    assert "compileall" in install and "compileall" in bench
