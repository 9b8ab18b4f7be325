"""Pure parts of the apt/dpkg backend: APT_CONFIG rendering, sources lines, output parsers.

No I/O here, so every function is unit-tested against recorded apt/dpkg
output (tests/unit/test_apt_parsing.py). Used by registry.apt.
"""

from __future__ import annotations

import re
from pathlib import Path

from debian.debian_support import Version

from registry.pkgbackend import Installed, Repository, dependency_names

# dpkg-query format: one line per package, tab separated.
QUERY_FORMAT = "${Package}\\t${Version}\\t${Status}\\t${Depends}\\t${Pre-Depends}\\n"
MANAGED_HEADER = "# Managed by aios-reconciler (pkg.repos); edits are overwritten.\n"


def _quote(value: str) -> str:
    if '"' in value or "\n" in value:
        raise ValueError(f"unsupported character in apt configuration value {value!r}")
    return f'"{value}"'


def render_apt_config(root: Path, parts_dir: Path) -> str:
    """An APT_CONFIG that points apt and dpkg at the scratch root `root`.

    apt reads APT_CONFIG first, then Dir::Etc::Parts and Dir::Etc::Main; both
    point into the registry's state dir, so neither the host's nor the
    scratch root's apt.conf.d is read (hooks there would run on the host).
    dpkg gets --root (instdir and admindir), --force-script-chrootless
    (maintainer scripts run with DPKG_ROOT set, against the host filesystem:
    only packages whose scripts honour $DPKG_ROOT are safe), its log under the
    root, and keeps existing conffiles without asking.
    """
    r = str(root).rstrip("/")
    dpkg_options = [
        f"--root={r}",
        f"--admindir={r}/var/lib/dpkg",
        "--force-script-chrootless",
        f"--log={r}/var/log/dpkg.log",
        "--force-confdef",
        "--force-confold",
    ]
    lines = [
        f"Dir {_quote(r + '/')};",
        'Dir::State "var/lib/apt/";',
        f"Dir::State::status {_quote(r + '/var/lib/dpkg/status')};",
        'Dir::Cache "var/cache/apt/";',
        'Dir::Etc "etc/apt/";',
        f"Dir::Etc::Parts {_quote(str(parts_dir))};",
        f"Dir::Etc::Main {_quote(str(parts_dir / 'apt.conf'))};",
        'Dir::Log "var/log/apt/";',
        'Dir::Bin::dpkg "/usr/bin/dpkg";',
        'APT::Sandbox::User "root";',
        'Acquire::Languages "none";',
        'Dpkg::Use-Pty "0";',
        "DPkg::Options {" + " ".join(f"{_quote(o)};" for o in dpkg_options) + "};",
    ]
    return "\n".join(lines) + "\n"


# --- dpkg database -------------------------------------------------------------


def parse_extended_states(text: str) -> set[str]:
    """Names apt marked Auto-Installed: 1 in extended_states."""
    auto: set[str] = set()
    for stanza in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Auto-Installed") == "1" and "Package" in fields:
            auto.add(fields["Package"])
    return auto


def parse_dpkg_query(text: str, auto: set[str]) -> list[Installed]:
    """`dpkg-query -W -f QUERY_FORMAT` output -> entries (not-installed ones dropped)."""
    found: dict[str, Installed] = {}
    for line in text.splitlines():
        cols = line.split("\t")
        if len(cols) < 3 or not cols[0]:
            continue
        name, version, status = cols[0], cols[1], cols[2].split()
        if len(status) != 3 or status[2] == "not-installed":
            continue
        depends = ", ".join(c for c in cols[3:5] if c)
        found[name] = Installed(
            name=name,
            version=version,
            status=status[2],
            hold=status[0] == "hold",
            auto=name in auto,
            depends=dependency_names(depends),
        )
    return [found[n] for n in sorted(found)]


# --- apt-cache -------------------------------------------------------------------


def newest_first(versions: list[str]) -> list[str]:
    return sorted(set(versions), key=Version, reverse=True)


def parse_madison(text: str) -> dict[str, list[str]]:
    """`apt-cache madison` -> name: versions, newest first."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) >= 3 and cols[0] and cols[1]:
            found.setdefault(cols[0], []).append(cols[1])
    return {name: newest_first(versions) for name, versions in found.items()}


def parse_policy_candidates(text: str) -> dict[str, str]:
    """`apt-cache policy a b` -> name: candidate version ('(none)' kept)."""
    found: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1]
        elif line.strip().startswith("Candidate:") and current:
            found[current] = line.split(":", 1)[1].strip()
    return found


def parse_search(text: str) -> list[tuple[str, str]]:
    """`apt-cache search` -> (name, description)."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        name, sep, description = line.partition(" - ")
        if sep and name.strip():
            out.append((name.strip(), description.strip()))
    return out


# --- apt-get -----------------------------------------------------------------------

_SIM = re.compile(r"^(Inst|Remv|Purg|Conf) (\S+)")


def parse_simulation(text: str) -> dict[str, set[str]]:
    """`apt-get -s` -> {'install': names installed/changed, 'remove': names removed}."""
    out: dict[str, set[str]] = {"install": set(), "remove": set()}
    for line in text.splitlines():
        match = _SIM.match(line)
        if not match:
            continue
        name = match.group(2).split(":", 1)[0]
        if match.group(1) == "Inst":
            out["install"].add(name)
        elif match.group(1) in ("Remv", "Purg"):
            out["remove"].add(name)
    return out


def count_upgrades(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith("Inst "))


_DPKG_ERROR = re.compile(r"^dpkg: error processing (?:package|archive) (\S+) \(([^)]*)\):$")


def failure_summary(output: str) -> str:
    """The useful part of a failed apt-get/dpkg run: dpkg's per-package errors and E: lines."""
    lines = output.splitlines()
    parts: list[str] = []
    for i, line in enumerate(lines):
        match = _DPKG_ERROR.match(line.strip())
        if match:
            detail = lines[i + 1].strip() if i + 1 < len(lines) else ""
            parts.append(f"{match.group(1)} ({match.group(2)}): {detail}")
        elif line.startswith("E: "):
            parts.append(line[3:].strip())
    if not parts:
        tail = [line.strip() for line in lines if line.strip()][-3:]
        parts = tail
    return "; ".join(dict.fromkeys(parts))


def failed_packages(output: str) -> list[str]:
    """Packages dpkg reported errors for."""
    names = [m.group(1) for line in output.splitlines() if (m := _DPKG_ERROR.match(line.strip()))]
    return list(dict.fromkeys(n.split(":", 1)[0] for n in names))


# --- sources.list.d ----------------------------------------------------------------

_DEB_LINE = re.compile(
    r"^deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<url>\S+)\s+(?P<suite>\S+)(?P<comps>.*)$"
)


def render_sources(repo: Repository) -> str:
    """The content of /etc/apt/sources.list.d/aios-<name>.list for `repo`."""
    options = []
    if repo.trusted:
        options.append("trusted=yes")
    if repo.signed_by:
        options.append(f"signed-by={repo.signed_by}")
    opts = f"[{' '.join(options)}] " if options else ""
    comps = "".join(f" {c}" for c in repo.components)
    return f"{MANAGED_HEADER}deb {opts}{repo.url} {repo.suite}{comps}\n"


def parse_sources(name: str, text: str) -> Repository | None:
    """The repository a managed .list file describes (first deb line), or None."""
    for line in text.splitlines():
        match = _DEB_LINE.match(line.strip())
        if not match:
            continue
        opts = dict(o.split("=", 1) for o in (match.group("opts") or "").split() if "=" in o)
        return Repository(
            name=name,
            url=match.group("url"),
            suite=match.group("suite"),
            components=tuple(match.group("comps").split()),
            trusted=opts.get("trusted") == "yes",
            signed_by=opts.get("signed-by"),
        )
    return None
