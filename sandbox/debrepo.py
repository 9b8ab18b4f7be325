"""Build a flat local apt repository of the `aios-demo-*` packages (sandbox.demo).

Each DemoPackage becomes a small .deb (dpkg-deb --build --root-owner-group,
gzip) that installs /usr/share/aios-demo/<name>/VERSION containing its
version, so dpkg-query and the filesystem both show what is installed. The
deliberately broken package has a postinst that only exits 1; no other demo
package has maintainer scripts. `dpkg-scanpackages -m . /dev/null` writes the
Packages index: use it as `deb [trusted=yes] <url> ./`.

`build_deb` and `write_index` build any other package the same way — with
maintainer scripts (preinst, postinst, prerm, postrm) and files — for tests
of what such scripts can reach (tests/attack/test_registry_pkg.py: on a
scratch root they run confined by registry.drivers.pkg.jail).

Built repositories are cached by a hash of the package list (and of this
builder's format) under the cache directory (default
/var/cache/aios-reconciler/debrepo, env AIOS_CACHE_DIR), so `aios sandbox up`
stays fast. Called by sandbox.content, the system tests and bench/.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from sandbox.demo import DEMO_PACKAGES, DemoPackage

FORMAT = "aios-demo-deb/1"  # bump when the .deb layout below changes
MAINTAINER = "aios-reconciler <aios-reconciler@example.invalid>"
DONE = ".complete"


def cache_root() -> Path:
    return Path(os.environ.get("AIOS_CACHE_DIR", "/var/cache/aios-reconciler"))


def control(pkg: DemoPackage) -> str:
    lines = [
        f"Package: {pkg.name}",
        f"Version: {pkg.version}",
        "Architecture: all",
        f"Maintainer: {MAINTAINER}",
        "Section: misc",
        "Priority: optional",
    ]
    if pkg.depends:
        lines.append(f"Depends: {', '.join(pkg.depends)}")
    lines.append(f"Description: {pkg.description or pkg.name}")
    return "\n".join(lines) + "\n"


def deb_name(pkg: DemoPackage) -> str:
    return f"{pkg.name}_{pkg.version}_all.deb"


SCRIPTS = ("preinst", "postinst", "prerm", "postrm")


def build_deb(
    pkg: DemoPackage,
    out: Path,
    *,
    scripts: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Build `pkg` as `out`/<name>_<version>_all.deb and return its path.

    `scripts`: maintainer script name (SCRIPTS) -> its text (mode 0755);
    `files`: path inside the package (relative, e.g. 'usr/share/x') -> text.
    """
    with tempfile.TemporaryDirectory(prefix="aios-deb-") as staging:
        tree = Path(staging) / f"{pkg.name}-{pkg.version}"
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "DEBIAN/control").write_text(control(pkg))
        for name, text in (scripts or {}).items():
            if name not in SCRIPTS:
                raise ValueError(f"not a maintainer script: {name!r}")
            script = tree / "DEBIAN" / name
            script.write_text(text)
            script.chmod(0o755)
        for rel, text in (files or {}).items():
            path = tree / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        target = out / deb_name(pkg)
        subprocess.run(
            ["dpkg-deb", "-Zgzip", "--build", "--root-owner-group", str(tree), str(target)],
            check=True,
            capture_output=True,
        )
    return target


def write_index(out: Path) -> None:
    """Write `out`/Packages for the .debs in `out` (a flat repository)."""
    index = subprocess.run(
        ["dpkg-scanpackages", "-m", ".", "/dev/null"],
        cwd=out,
        check=True,
        capture_output=True,
    )
    (out / "Packages").write_bytes(index.stdout)


def _build_one(pkg: DemoPackage, out: Path) -> None:
    scripts = (
        {"postinst": "#!/bin/sh\n# aios demo: a maintainer script that fails\nexit 1\n"}
        if pkg.postinst_fails
        else {}
    )
    files = {f"usr/share/aios-demo/{pkg.name}/VERSION": pkg.version + "\n"}
    build_deb(pkg, out, scripts=scripts, files=files)


def fingerprint(packages: Sequence[DemoPackage]) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    for pkg in packages:
        digest.update(repr(pkg).encode())
    return digest.hexdigest()[:20]


def build(packages: Sequence[DemoPackage], out: Path) -> Path:
    """Build the .debs and Packages index of `packages` into directory `out` (no cache)."""
    out.mkdir(parents=True, exist_ok=True)
    for pkg in packages:
        _build_one(pkg, out)
    write_index(out)
    return out


def cached(packages: Sequence[DemoPackage] = DEMO_PACKAGES, cache: Path | None = None) -> Path:
    """The repository for `packages` in the cache, built on first use."""
    base = (cache or cache_root()) / "debrepo"
    target = base / fingerprint(packages)
    if (target / DONE).exists():
        return target
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    try:
        build(packages, tmp)
        (tmp / DONE).touch()
        try:
            tmp.rename(target)
        except OSError:  # another builder won the race
            if not (target / DONE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def install_into(
    directory: Path, packages: Sequence[DemoPackage] = DEMO_PACKAGES, cache: Path | None = None
) -> Path:
    """Populate `directory` with the repository (hard links from the cache, else copies)."""
    source = cached(packages, cache)
    directory.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name == DONE:
            continue
        dest = directory / item.name
        if dest.exists():
            dest.unlink()
        try:
            os.link(item, dest)
        except OSError:
            shutil.copy2(item, dest)
    return directory
