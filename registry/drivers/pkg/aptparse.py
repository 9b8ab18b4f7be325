"""Pure parts of the apt/dpkg backend: APT_CONFIG, sources lines and their mapping, parsers.

No I/O here, so every function is unit-tested against recorded apt/dpkg
output (tests/unit/test_apt_parsing.py). Used by registry.drivers.pkg.apt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from debian.deb822 import Deb822
from debian.debian_support import Version

from registry.drivers.pkg.backend import Installed, Repository, dependency_names

# dpkg-query format: one line per package, tab separated.
QUERY_FORMAT = "${Package}\\t${Version}\\t${Status}\\t${Depends}\\t${Pre-Depends}\\n"
MANAGED_HEADER = "# Managed by aios-reconciler (pkg.repos); edits are overwritten.\n"


def _quote(value: str) -> str:
    if '"' in value or "\n" in value:
        raise ValueError(f"unsupported character in apt configuration value {value!r}")
    return f'"{value}"'


def dpkg_options(root: Path) -> list[str]:
    """dpkg's options for scratch root `root` (the APT_CONFIG's DPkg::Options)."""
    r = str(root).rstrip("/")
    return [
        f"--root={r}",
        f"--admindir={r}/var/lib/dpkg",
        "--force-script-chrootless",
        f"--log={r}/var/log/dpkg.log",
    ]


def render_apt_config(root: Path, parts_dir: Path, *, dpkg: Path) -> str:
    """An APT_CONFIG that points apt and dpkg at the scratch root `root`.

    apt reads APT_CONFIG first, then Dir::Etc::Parts and Dir::Etc::Main; both
    point into the registry's state dir, so neither the host's nor the
    scratch root's apt.conf.d is read (hooks there would run on the host).
    apt runs dpkg as `dpkg` (Dir::Bin::dpkg): the jail wrapper of
    registry.drivers.pkg.jail, so every maintainer script runs confined to the root.
    dpkg gets --root (instdir and admindir), --force-script-chrootless
    (scripts run with DPKG_ROOT set, inside the jail, whose only writable
    tree is the root), its log under the root, and keeps existing conffiles
    without asking. The sources apt reads are passed per command (the root's
    own, with `file:` paths mapped under the root: `map_sources_list`).
    """
    r = str(root).rstrip("/")
    options = [*dpkg_options(root), "--force-confdef", "--force-confold"]
    lines = [
        f"Dir {_quote(r + '/')};",
        'Dir::State "var/lib/apt/";',
        f"Dir::State::status {_quote(r + '/var/lib/dpkg/status')};",
        'Dir::Cache "var/cache/apt/";',
        'Dir::Etc "etc/apt/";',
        f"Dir::Etc::Parts {_quote(str(parts_dir))};",
        f"Dir::Etc::Main {_quote(str(parts_dir / 'apt.conf'))};",
        'Dir::Log "var/log/apt/";',
        f"Dir::Bin::dpkg {_quote(str(dpkg))};",
        'APT::Sandbox::User "root";',
        'Acquire::Languages "none";',
        'Dpkg::Use-Pty "0";',
        "DPkg::Options {" + " ".join(f"{_quote(o)};" for o in options) + "};",
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


def confined_writes(output: str) -> list[str]:
    """Lines where a maintainer script's write was refused by the jail (registry.drivers.pkg.jail).

    Inside the jail everything but the scratch root (and private /tmp, /run)
    is read-only, so a script that ignores DPKG_ROOT fails with EROFS.
    """
    found = [line.strip() for line in output.splitlines() if "Read-only file system" in line]
    return list(dict.fromkeys(found))


def failed_packages(output: str) -> list[str]:
    """Packages dpkg reported errors for."""
    names = [m.group(1) for line in output.splitlines() if (m := _DPKG_ERROR.match(line.strip()))]
    return list(dict.fromkeys(n.split(":", 1)[0] for n in names))


# --- sources.list.d ----------------------------------------------------------------

_DEB_LINE = re.compile(
    r"^deb\s+(?:\[(?P<opts>[^\]]*)\]\s+)?(?P<url>\S+)\s+(?P<suite>\S+)(?P<comps>.*)$"
)
# What a word of a sources line may hold: no whitespace, and none of the characters
# apt's line reader gives a meaning (`#` comment, `"` and `[ ]` grouping, `\`).
_SOURCE_WORD = re.compile(r"[^\s#\"\[\]\\]+")
# A mapped local path: also no '%' (apt decodes %xx in URIs) and no control characters.
_LOCAL_PATH = re.compile(r"/[^\s#\"\[\]\\%\x00-\x1f\x7f]*")
LOCAL_SCHEMES = ("file", "copy")
REMOTE_SCHEMES = frozenset(
    {"http", "https", "ftp", "tor+http", "tor+https", "mirror+http", "mirror+https"}
)


def render_sources(repo: Repository) -> str:
    """The content of /etc/apt/sources.list.d/aios-<name>.list for `repo`.

    Every value must be one word without apt's special characters (the tool
    schema already refuses them; this is the last check before the line is
    written): otherwise ValueError.
    """
    options = []
    if repo.trusted:
        options.append("trusted=yes")
    if repo.signed_by:
        options.append(f"signed-by={repo.signed_by}")
    for label, value in (
        ("url", repo.url),
        ("suite", repo.suite),
        ("signed_by", repo.signed_by or "x"),
        *(("components", c) for c in repo.components),
    ):
        if not _SOURCE_WORD.fullmatch(value):
            raise ValueError(f"repository {repo.name!r}: {label} {value!r} is not one apt word")
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


# --- sources as apt reads them on a scratch root ------------------------------------
#
# A scratch root's sources name paths as the target machine sees them (`file:/srv/repo`,
# `signed-by=/etc/apt/keyrings/k.gpg`); apt, run by the registry, would read those on
# the registry's host. registry.drivers.pkg.apt hands apt a copy in which every such path is
# `resolve`d under the root (ToolContext.path: links resolved inside the root). Remote
# URIs stay as they are; a scheme that reads local files in a way that cannot be
# mapped (cdrom:, mirror+file:, an unknown transport) is refused.


def map_uri(uri: str, resolve: Callable[[str], str]) -> str:
    """`uri` with a local path mapped through `resolve` (ValueError when it cannot be)."""
    scheme, sep, rest = uri.partition(":")
    scheme = scheme.lower()
    if sep and scheme in REMOTE_SCHEMES:
        return uri
    if not sep or scheme not in LOCAL_SCHEMES:
        raise ValueError(
            f"URI {uri!r}: only {', '.join(sorted(REMOTE_SCHEMES))} and file:/copy: URIs are "
            "supported under --root (others would read the registry host's files)"
        )
    if rest.startswith("//"):
        host, _slash, tail = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise ValueError(f"URI {uri!r}: a {scheme}: URI names no host")
        rest = "/" + tail
    if not rest.startswith("/"):
        raise ValueError(f"URI {uri!r}: a {scheme}: URI needs an absolute path")
    return f"{scheme}:{_mapped(rest, resolve, uri)}"


def _mapped(path: str, resolve: Callable[[str], str], what: str) -> str:
    trailing = "/" if path.endswith("/") and path != "/" else ""
    mapped = resolve(path.rstrip("/") or "/") + trailing
    if not _LOCAL_PATH.fullmatch(mapped):
        raise ValueError(f"{what!r}: the path under the root, {mapped!r}, cannot be an apt word")
    return mapped


def _below(uri: str, words: list[str]) -> None:
    """Refuse a suite or component that climbs out of a local repository (`..`)."""
    if uri.partition(":")[0].lower() not in LOCAL_SCHEMES:
        return
    for word in words:
        if ".." in word.split("/"):
            raise ValueError(f"{word!r}: a suite or component of a local repository has no '..'")


def _map_keys(value: str, resolve: Callable[[str], str]) -> str:
    """A signed-by list (paths and fingerprints, ',' or ' ' separated) with paths mapped."""
    words = re.split(r"([,\s]+)", value)
    return "".join(_mapped(w, resolve, w) if w.startswith("/") else w for w in words)


def map_sources_list(text: str, resolve: Callable[[str], str]) -> str:
    """A one-line-style sources file (`deb [opts] uri suite comps`) as apt must read it.

    Comments and blank lines are dropped; any other line must be a `deb` or
    `deb-src` line: ValueError naming the line otherwise.
    """
    out: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _space, rest = line.partition(" ")
        rest = rest.strip()
        options = ""
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                raise ValueError(f"line {number}: '[' without ']'")
            options, rest = rest[1:close].strip(), rest[close + 1 :].strip()
        words = rest.split()
        if kind not in ("deb", "deb-src") or len(words) < 2:
            raise ValueError(f"line {number}: not a 'deb URI SUITE [COMPONENT...]' line")
        try:
            _below(words[0], words[1:])
            mapped_opts = [
                f"{o.split('=', 1)[0]}={_map_keys(o.split('=', 1)[1], resolve)}"
                if o.split("=", 1)[0].rstrip("+-") == "signed-by" and "=" in o
                else o
                for o in options.split()
            ]
            uri = map_uri(words[0], resolve)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
        head = f"{kind} [{' '.join(mapped_opts)}]" if mapped_opts else kind
        out.append(" ".join([head, uri, *words[1:]]))
    return "".join(f"{line}\n" for line in out)


def map_deb822_sources(text: str, resolve: Callable[[str], str]) -> str:
    """A deb822 `.sources` file with its URIs and Signed-By paths mapped (ValueError)."""
    out: list[str] = []
    for number, stanza in enumerate(Deb822.iter_paragraphs(text.splitlines(True)), 1):
        try:
            if "URIs" in stanza:
                for uri in stanza["URIs"].split():
                    _below(uri, [*stanza.get("Suites", "").split(),
                                 *stanza.get("Components", "").split()])  # fmt: skip
                stanza["URIs"] = " ".join(map_uri(u, resolve) for u in stanza["URIs"].split())
            keys = stanza.get("Signed-By", "")
            if keys and "\n" not in keys.strip() and "BEGIN PGP" not in keys:
                stanza["Signed-By"] = _map_keys(keys.strip(), resolve)
        except ValueError as exc:
            raise ValueError(f"stanza {number}: {exc}") from None
        out.append(stanza.dump())
    return "\n".join(out)
