"""Attack corpus, registry side, packages (issue 8 escape 6): real dpkg/apt on a scratch root.

Three groups, each case asserting the precise refusal and that nothing outside
the scratch root changed:

- `test_pkg_script_*`: a package whose preinst, postinst, prerm or postrm
  ignores DPKG_ROOT and writes, appends to, deletes or chmods a host
  sentinel — one that the jail shows read-only (/etc/aios-attack-*/) and one
  it does not show at all (a directory beside the root) — or tries a link
  planted in the root, a remount, nsenter, a new (user) namespace, a signal
  to a host process, a sysctl write or a device node. dpkg runs the scripts in
  registry.drivers.pkg.jail's jail: the script fails, pkg.ensure names the package and
  the script and rolls back, and the sentinels are unchanged byte-, mode- and
  owner-wise (the host's dpkg status too).
- `test_pkg_file_repository_*`: a `file:` repository naming a directory
  that exists on the host, outside the root, with a package only it offers;
  the same path under the root holds a different repository. The host's is
  never read (its package is never offered or installed), for pkg.repos,
  pkg.state previews, unmanaged .list/.sources files in the root, `copy:`,
  and links planted in the root (absolute and climbing relative ones); a
  scheme that would read host files otherwise (cdrom:) is a precise error.
- `test_pkg_schema_*`: values that would reach a sources line or an apt
  command line (a component with a newline injecting a second `deb` line, a
  space, a suite with `]` or `..`, `[trusted=yes]`, `#`, quotes or a host in
  a URL, a signedBy with a space, options as names or versions, the trailing
  newline that a bare `$` lets through) sent to a running registry over gRPC:
  `Invalid input: <json path>: ...` and nothing written.

Runs as root (dpkg, namespaces); every dpkg/apt call uses a scratch root under
tmp_path. The spec-side twins are tests/attack/specs/pkg-*.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from registry_support import running_registry

from contract._gen import tools_pb2, tools_pb2_grpc
from contract.catalogue import pkg as pkg_defs
from registry.core.errors import ToolError
from sandbox import debrepo
from sandbox.demo import DemoPackage
from tests.system.targets import ScratchTarget, make_target

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (dpkg, namespaces)"),
    pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg"),
]

PHASE = {  # how dpkg names a failed script
    "preinst": "new {name} package pre-installation script",
    "postinst": "installed {name} package post-installation script",
    "prerm": "installed {name} package pre-removal script",
    "postrm": "installed {name} package post-removal script",
}
EXIT = 3  # every hostile script exits 3 when its attack is refused


# --- the host sentinels ------------------------------------------------------------


def snapshot(directory: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry under `directory` (and itself): bytes digest, mode, owner, mtime."""
    out: dict[str, tuple[Any, ...]] = {}
    for path in [directory, *sorted(directory.rglob("*"))]:
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path)] = (digest, stat.filemode(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns)
    return out


@dataclass
class Host:
    """Sentinel directories outside the scratch root; `unchanged()` compares with the start."""

    hidden: Path  # beside the root: the jail does not show it at all
    visible: Path  # under /etc: the jail shows it read-only
    before: dict[str, tuple[Any, ...]]

    def state(self) -> dict[str, tuple[Any, ...]]:
        dpkg = Path("/var/lib/dpkg/status")
        status = hashlib.sha256(dpkg.read_bytes()).hexdigest() if dpkg.exists() else ""
        return {**snapshot(self.hidden), **snapshot(self.visible), "dpkg": (status,)}

    def assert_unchanged(self) -> None:
        assert self.state() == self.before, "a host file outside the scratch root changed"


def _fill(directory: Path) -> None:
    directory.mkdir(mode=0o750)
    (directory / "keep").write_text("host data\n")
    (directory / "keep").chmod(0o640)
    (directory / "victim").write_text("delete me\n")
    (directory / "victim").chmod(0o600)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    hidden = tmp_path / "host"
    visible = Path(f"/etc/aios-attack-{uuid.uuid4().hex[:10]}")
    _fill(hidden)
    try:
        _fill(visible)
        h = Host(hidden, visible, {})
        h.before = h.state()
        yield h
    finally:
        shutil.rmtree(visible, ignore_errors=True)


# --- hostile maintainer scripts ----------------------------------------------------

ATTACKS = {
    "write": 'echo pwned > "$T/new"',
    "append": 'echo pwned >> "$T/keep"',
    "delete": 'rm "$T/victim"',
    "chmod": 'chmod 4777 "$T/keep"',
    # a link planted in the root, then written through
    "link-abs": 'ln -sfn "$T" "$DPKG_ROOT/escape" && echo pwned > "$DPKG_ROOT/escape/new"',
    "link-rel": 'ln -sfn "../../../../../../../../../../..$T" "$DPKG_ROOT/escape" '
    '&& echo pwned > "$DPKG_ROOT/escape/new"',
    # undo the confinement
    "remount": 'mount -o remount,rw "$(dirname "$T")" && echo pwned > "$T/new"',
    "nsenter": 'nsenter --target 1 --mount -- sh -c "echo pwned > $T/new"',
    "unshare": 'unshare --mount -- sh -c "mount -o remount,rw /etc; echo pwned > $T/new"',
    "userns": "unshare --user --map-root-user --mount -- "
    'sh -c "mount -o remount,bind,rw /etc && echo pwned > $T/new"',
    # reach the host's processes, kernel settings and devices
    "signal": 'kill -0 "$HOSTPID"',  # the test's own pid: invisible from the jail
    "sysctl": 'echo "$MAXFILES" > /proc/sys/fs/file-max',  # the current value, were it to land
    "mknod": 'mknod "$DPKG_ROOT/disk" b 7 0 && head -c1 "$DPKG_ROOT/disk" >/dev/null',
}

EROFS = ("write", "append", "delete", "chmod", "link-abs", "link-rel")  # read-only there
CASES = [
    *((s, a, "visible") for s in PHASE for a in ("write", "append", "delete", "chmod")),
    *(("postinst", a, "hidden") for a in ("write", "append", "delete", "chmod")),
    *(("postinst", a, "visible") for a in ("link-abs", "link-rel", "remount", "nsenter")),
    *(("postinst", a, "visible") for a in ("unshare", "userns", "signal", "sysctl", "mknod")),
    ("prerm", "link-abs", "visible"),
]


def hostile_name(script: str, attack: str, where: str) -> str:
    return f"aios-attack-{script}-{attack}-{where}"


def hostile_script(script: str, attack: str, target: Path) -> str:
    return (
        f"#!/bin/sh\n# {script} that ignores DPKG_ROOT and attacks {target}\n"
        f"T={target}\nHOSTPID={os.getpid()}\n"
        f"MAXFILES={Path('/proc/sys/fs/file-max').read_text().strip()}\n"
        f"{ATTACKS[attack]} || {{ echo 'aios-attack: {attack} refused' >&2; exit {EXIT}; }}\n"
        "exit 0\n"
    )


def install_repo(root: Path, host: Host, *, only: str) -> None:
    """Build the hostile package `only` (aimed at `host`) into <root>/srv/attack."""
    repo = root / "srv/attack"
    repo.mkdir(parents=True)
    script, attack, where = only.split(":")
    target = host.visible if where == "visible" else host.hidden
    pkg = DemoPackage(hostile_name(script, attack, where), "1.0-1", (), f"{script} {attack}")
    debrepo.build_deb(
        pkg,
        repo,
        scripts={script: hostile_script(script, attack, target)},
        files={f"usr/share/aios-attack/{pkg.name}": "payload\n"},
    )
    debrepo.write_index(repo)


ATTACK_REPO = {"name": "attack", "url": "file:/srv/attack", "suite": "./", "trusted": True}


def read(path: Path) -> str:
    return path.read_text()


def exists(path: Path) -> bool:
    return path.exists()


def dpkg_status(root: Path) -> dict[str, tuple[str, str]]:
    """name -> (version, dpkg status) of every package dpkg knows, read with dpkg-query."""
    out = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f",
         "${Package}\t${Version}\t${Status}\n"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = (line.split("\t") for line in out.splitlines())
    return {n: (v, st) for n, v, st in rows if not st.endswith(" not-installed")}


@pytest.mark.parametrize(("script", "attack", "where"), CASES)
async def test_pkg_script_cannot_change_the_host(
    tmp_path: Path, host: Host, script: str, attack: str, where: str
) -> None:
    target = make_target(tmp_path)
    name = hostile_name(script, attack, where)
    install_repo(target.root, host, only=f"{script}:{attack}:{where}")
    await target.call("pkg.repos", {"repositories": [ATTACK_REPO]})
    before = dpkg_status(target.root)
    if script in ("prerm", "postrm"):  # the script runs on removal: install first
        done = await target.call("pkg.ensure", {"install": [{"name": name}]})
        assert done.output["installed"] == [{"name": name, "version": "1.0-1"}]
        host.assert_unchanged()
        before = dpkg_status(target.root)
        request: dict[str, Any] = {"remove": [name]}
    else:
        request = {"install": [{"name": name}]}
    with pytest.raises(ToolError) as refused:
        await target.call("pkg.ensure", request)
    message = str(refused.value)
    phase = PHASE[script].format(name=name)
    assert f"{phase} subprocess returned error exit status {EXIT}" in message, message
    if script == "postrm":
        # Putting the package back runs the same postrm again (dpkg reinstalls a package a
        # failed postrm left half-installed): the restore fails and the error says so.
        assert "restoring the previous state failed too" in message, message
        assert "the restore left" in message or "post-removal script" in message, message
    else:
        assert "the transaction was rolled back" in message, message
    if where == "visible" and attack in EROFS:
        assert (
            f"a maintainer script tried to change a path outside the root {target.root} "
            "and was refused" in message
        ), message
        assert "Read-only file system" in message, message
    host.assert_unchanged()
    assert not (host.visible / "new").exists() and not (host.hidden / "new").exists()
    if script != "postrm":
        assert dpkg_status(target.root) == before, "the transaction was not rolled back"


async def test_pkg_script_honouring_dpkg_root_still_works(tmp_path: Path, host: Host) -> None:
    """The jail is not a refusal of scripts: one that writes under $DPKG_ROOT succeeds."""
    target = make_target(tmp_path)
    repo = target.root / "srv/attack"
    repo.mkdir(parents=True)
    polite = (
        '#!/bin/sh\nset -e\nmkdir -p "$DPKG_ROOT/etc/polite"\n'
        'echo "configured $1" > "$DPKG_ROOT/etc/polite/state"\n'
        'echo scratch > /tmp/x && test "$(cat /tmp/x)" = scratch\n'
    )
    debrepo.build_deb(DemoPackage("aios-polite", "1.0-1"), repo, scripts={"postinst": polite})
    debrepo.write_index(repo)
    await target.call("pkg.repos", {"repositories": [ATTACK_REPO]})
    done = await target.call("pkg.ensure", {"install": [{"name": "aios-polite"}]})
    assert done.output["installed"] == [{"name": "aios-polite", "version": "1.0-1"}]
    assert read(target.root / "etc/polite/state") == "configured configure\n"
    assert not exists(Path("/etc/polite"))
    host.assert_unchanged()


async def test_pkg_script_cannot_copy_host_secrets_into_the_root(
    tmp_path: Path, host: Host
) -> None:
    """The jail covers /etc/shadow, gshadow, sudoers, ssh host keys: a copy made into ROOT
    (which fs.read would hand out) is empty, though the host's files are not."""
    assert Path("/etc/shadow").stat().st_size > 0, "no shadow file to steal"  # noqa: ASYNC240
    target = make_target(tmp_path)
    repo = target.root / "srv/attack"
    repo.mkdir(parents=True)
    thief = (
        '#!/bin/sh\nset -e\nmkdir -p "$DPKG_ROOT/loot"\n'
        'cat /etc/shadow > "$DPKG_ROOT/loot/shadow"\n'
        'cat /etc/gshadow > "$DPKG_ROOT/loot/gshadow" 2>/dev/null || true\n'
        'ls -A /etc/ssh > "$DPKG_ROOT/loot/ssh" 2>/dev/null || true\n'
        'cat /etc/passwd > "$DPKG_ROOT/loot/passwd"\n'
    )
    debrepo.build_deb(DemoPackage("aios-thief", "1.0-1"), repo, scripts={"postinst": thief})
    debrepo.write_index(repo)
    await target.call("pkg.repos", {"repositories": [ATTACK_REPO]})
    done = await target.call("pkg.ensure", {"install": [{"name": "aios-thief"}]})
    assert done.output["installed"] == [{"name": "aios-thief", "version": "1.0-1"}]
    loot = target.root / "loot"
    assert (loot / "shadow").read_bytes() == b""
    assert (loot / "ssh").read_bytes() == b""
    assert not (loot / "gshadow").exists() or (loot / "gshadow").read_bytes() == b""
    # Control: the script ran and could read what is not secret.
    assert (loot / "passwd").read_text().startswith("root:")
    host.assert_unchanged()


# --- file: repositories resolve under the root ----------------------------------------


@dataclass
class Repos:
    target: ScratchTarget
    hostrepo: Path  # on the host, outside the root: offers aios-host-only
    twin: Path  # <root>/<hostrepo>: offers aios-root-only


NAMES = ["aios-host-only", "aios-root-only"]
ROOT_ONLY = {"aios-host-only": [], "aios-root-only": ["1.0-1"]}


def _repo(directory: Path, name: str) -> None:
    directory.mkdir(parents=True)
    debrepo.build_deb(DemoPackage(name, "1.0-1", (), name), directory)
    debrepo.write_index(directory)


@pytest.fixture
def repos(tmp_path: Path, host: Host) -> Iterator[Repos]:
    target = make_target(tmp_path)
    hostrepo = tmp_path / "hostrepo"
    _repo(hostrepo, "aios-host-only")
    twin = target.root / str(hostrepo).lstrip("/")
    _repo(twin, "aios-root-only")
    before = snapshot(hostrepo)
    yield Repos(target, hostrepo, twin)
    assert snapshot(hostrepo) == before
    host.assert_unchanged()


def file_repo(url: str, **extra: Any) -> dict[str, Any]:
    return {"name": "local", "url": url, "suite": "./", "trusted": True, **extra}


async def test_pkg_file_repository_is_read_under_the_root(repos: Repos) -> None:
    t = repos.target
    url = f"file:{repos.hostrepo}"
    written = await t.call("pkg.repos", {"repositories": [file_repo(url)]})
    assert written.output["written"] == ["local"]
    # the root keeps the target's view of the source
    sources = (t.root / "etc/apt/sources.list.d/aios-local.list").read_text()
    assert sources.endswith(f"deb [trusted=yes] {url} ./\n")
    state = await t.call("pkg.state", {"names": NAMES})
    assert state.output["available"] == ROOT_ONLY
    assert state.output["repositories"][0]["url"] == url  # reads back as written: no drift
    with pytest.raises(ToolError, match="Unable to locate package aios-host-only"):
        await t.call("pkg.ensure", {"install": [{"name": "aios-host-only"}]})
    done = await t.call("pkg.ensure", {"install": [{"name": "aios-root-only"}]})
    assert done.output["installed"] == [{"name": "aios-root-only", "version": "1.0-1"}]


async def test_pkg_file_repository_preview_reads_under_the_root(repos: Repos) -> None:
    desired = [file_repo(f"file://{repos.hostrepo}")]  # file:// + absolute path, same thing
    preview = await repos.target.call("pkg.state", {"names": NAMES, "repositories": desired})
    assert preview.output["available"] == ROOT_ONLY
    assert not (repos.target.root / "etc/apt/sources.list.d/aios-local.list").exists()


async def test_pkg_file_repository_missing_under_the_root_is_an_error(repos: Repos) -> None:
    shutil.rmtree(repos.twin)
    url = f"file:{repos.hostrepo}"
    with pytest.raises(ToolError) as failed:
        await repos.target.call("pkg.state", {"names": NAMES, "repositories": [file_repo(url)]})
    message = str(failed.value)
    assert message.startswith("cannot index the desired repositories: apt-get update failed: ")
    assert f"file:{repos.twin}" in message, message  # apt looked under the root, only there
    with pytest.raises(ToolError, match=r"^apt-get update failed: "):
        await repos.target.call("pkg.repos", {"repositories": [file_repo(url)]})
    state = await repos.target.call("pkg.state", {"names": NAMES})
    assert state.output["available"] == {n: [] for n in NAMES}


@pytest.mark.parametrize("kind", ["absolute", "relative"])
async def test_pkg_file_repository_through_a_link_stays_in_the_root(
    repos: Repos, kind: str
) -> None:
    link = repos.target.root / "srv/link"
    link.parent.mkdir(parents=True, exist_ok=True)
    up = "../" * (len(link.parts) + 3)  # climbs past the root: stops at the root
    link.symlink_to(repos.hostrepo if kind == "absolute" else f"{up}{str(repos.hostrepo)[1:]}")
    await repos.target.call("pkg.repos", {"repositories": [file_repo("file:/srv/link")]})
    state = await repos.target.call("pkg.state", {"names": NAMES})
    assert state.output["available"] == ROOT_ONLY


@pytest.mark.parametrize("form", ["list", "sources", "copy", "linked-dir"])
async def test_pkg_unmanaged_sources_are_mapped_too(repos: Repos, form: str) -> None:
    parts = repos.target.root / "etc/apt/sources.list.d"
    parts.mkdir(parents=True, exist_ok=True)
    if form == "list":
        (parts / "other.list").write_text(f"deb [trusted=yes] file:{repos.hostrepo} ./\n")
    elif form == "copy":
        (parts / "other.list").write_text(f"deb [trusted=yes] copy:{repos.hostrepo} ./\n")
    elif form == "sources":
        (parts / "other.sources").write_text(
            f"Types: deb\nURIs: file:{repos.hostrepo}\nSuites: ./\nTrusted: yes\n"
        )
    else:  # sources.list.d itself a link to a host directory with a host-only source
        hostparts = repos.hostrepo.parent / "hostparts"
        hostparts.mkdir()
        (hostparts / "host.list").write_text(f"deb [trusted=yes] file:{repos.hostrepo} ./\n")
        shutil.rmtree(parts)
        parts.symlink_to(hostparts)
    if form == "linked-dir":  # apt writes below etc/apt: a link there is refused outright
        link = f"{repos.target.root}/etc/apt/sources.list.d is a symbolic link"
        with pytest.raises(ToolError, match=f"^{link}: apt and dpkg write below it"):
            await repos.target.call("pkg.state", {"names": NAMES})
        return
    await repos.target.call("pkg.ensure", {"update_index": True})
    state = await repos.target.call("pkg.state", {"names": NAMES})
    assert state.output["available"] == ROOT_ONLY


async def test_pkg_sources_scheme_reading_host_files_is_refused(repos: Repos) -> None:
    parts = repos.target.root / "etc/apt/sources.list.d"
    parts.mkdir(parents=True, exist_ok=True)
    (parts / "cd.list").write_text("deb cdrom:[Debian]/ bookworm main\n")
    with pytest.raises(ToolError) as refused:
        await repos.target.call("pkg.state", {"names": NAMES})
    assert str(refused.value).startswith(
        f"/etc/apt/sources.list.d/cd.list under the root {repos.target.root}: line 1: "
        "URI 'cdrom:[Debian]/': only "
    ), str(refused.value)


# --- the schemas refuse what would reach a sources line or a command line -------------

REPO = {"name": "evil", "url": "http://deb.example/debian", "suite": "stable"}
URL = pkg_defs.REPO_URL["pattern"]
SUITE = pkg_defs.REPOSITORY["properties"]["suite"]["pattern"]
COMPONENT = pkg_defs.REPOSITORY["properties"]["components"]["items"]["pattern"]
SIGNED_BY = pkg_defs.REPOSITORY["properties"]["signed_by"]["anyOf"][0]["pattern"]
NAME = pkg_defs.PKG_NAME["pattern"]
VERSION = pkg_defs.PKG_VERSION["pattern"]
PIN = pkg_defs.NAME_PIN_INPUT["properties"]["name"]["pattern"]
QUERY = pkg_defs.PKG_SEARCH.input_schema["properties"]["query"]["pattern"]


def repos_call(field: str, value: Any, tool: str = "pkg.repos") -> tuple[str, dict[str, Any]]:
    repo: dict[str, Any] = {**REPO, field: [value] if field == "components" else value}
    return tool, {"repositories": [repo]}


def _at(field: str) -> str:
    return f"$.repositories[0].{field}" + ("[0]" if field == "components" else "")


def case(
    case_id: str, tool: str, args: dict[str, Any], path: str, value: Any, pattern: str
) -> tuple[str, str, dict[str, Any], str, Any, str]:
    return (case_id, tool, args, path, value, pattern)


REPO_FIELD_CASES = [  # (case id, repository field, bad value, pattern)
    ("component-newline-deb", "components", "main\ndeb [trusted=yes] file:/host ./", COMPONENT),
    ("component-space", "components", "main contrib", COMPONENT),
    ("component-trailing-newline", "components", "main\n", COMPONENT),
    ("component-dotdot", "components", "..", COMPONENT),
    ("component-bracket", "components", "main]", COMPONENT),
    ("suite-bracket", "suite", "stable]", SUITE),
    ("suite-dotdot", "suite", "../../host/", SUITE),
    ("suite-absolute", "suite", "/srv/host/", SUITE),
    ("suite-trailing-newline", "suite", "./\n", SUITE),
    ("suite-hash", "suite", "stable#", SUITE),
    ("url-space-option", "url", "file:/srv/repo [trusted=yes]", URL),
    ("url-bracket-option", "url", "http://deb.example/[trusted=yes]", URL),
    ("url-hash", "url", "http://deb.example/debian#", URL),
    ("url-double-quote", "url", 'http://deb.example/"x', URL),
    ("url-single-quote-space", "url", "http://deb.example/' x", URL),
    ("url-trailing-newline", "url", "http://deb.example/debian\n", URL),
    ("url-newline-deb", "url", "http://a/ ./\ndeb [trusted=yes] file:/host", URL),
    ("url-file-dotdot", "url", "file:/srv/../../etc", URL),
    ("url-file-dot", "url", "file:/srv/./repo", URL),
    ("url-file-host", "url", "file://evil.example/srv", URL),
    ("url-file-relative", "url", "file:srv/repo", URL),
    ("url-backslash", "url", "file:/srv/repo\\x", URL),
    ("url-nul", "url", "file:/srv/re\x00po", URL),
    ("url-query", "url", "http://deb.example/?x=1", URL),
    ("url-cdrom", "url", "cdrom:/media/cdrom", URL),
    ("signedby-space-trusted", "signed_by", "/k.gpg trusted=yes", SIGNED_BY),
    ("signedby-bracket", "signed_by", "/k.gpg] deb", SIGNED_BY),
    ("signedby-dotdot", "signed_by", "/etc/../../k.gpg", SIGNED_BY),
    ("signedby-trailing-newline", "signed_by", "/k.gpg\n", SIGNED_BY),
    ("signedby-comma-list", "signed_by", "/k.gpg,/host.gpg", SIGNED_BY),
]
OPTION = "-oAPT::Get::AllowUnauthenticated=1"
SCHEMA_CASES = [
    *(case(c, *repos_call(f, v), _at(f), v, p) for c, f, v, p in REPO_FIELD_CASES),
    case(
        "state-url-hash",
        *repos_call("url", "file:/srv/repo#", "pkg.state"),
        "$.repositories[0].url",
        "file:/srv/repo#",
        URL,
    ),
    case(
        "state-suite-dotdot",
        *repos_call("suite", "../", "pkg.state"),
        "$.repositories[0].suite",
        "../",
        SUITE,
    ),
    case("state-name-newline", "pkg.state", {"names": ["curl\n"]}, "$.names[0]", "curl\n", NAME),
    case(
        "ensure-name-option",
        "pkg.ensure",
        {"install": [{"name": OPTION}]},
        "$.install[0].name",
        OPTION,
        NAME,
    ),
    case(
        "ensure-name-newline",
        "pkg.ensure",
        {"install": [{"name": "curl\n"}]},
        "$.install[0].name",
        "curl\n",
        NAME,
    ),
    case(
        "ensure-version-option",
        "pkg.ensure",
        {"install": [{"name": "c", "version": "-1"}]},
        "$.install[0].version",
        "-1",
        VERSION,
    ),
    case(
        "ensure-version-space",
        "pkg.ensure",
        {"install": [{"name": "c", "version": "1.0 -o"}]},
        "$.install[0].version",
        "1.0 -o",
        VERSION,
    ),
    case(
        "ensure-version-newline",
        "pkg.ensure",
        {"install": [{"name": "c", "version": "1.0\n"}]},
        "$.install[0].version",
        "1.0\n",
        VERSION,
    ),
    case(
        "ensure-remove-option",
        "pkg.ensure",
        {"remove": ["--purge"]},
        "$.remove[0]",
        "--purge",
        NAME,
    ),
    case("ensure-hold-newline", "pkg.ensure", {"hold": ["curl\n"]}, "$.hold[0]", "curl\n", NAME),
    case("install-pin-newline", "pkg.install", {"name": "curl=1.0\n"}, "$.name", "curl=1.0\n", PIN),
    case("install-pin-option", "pkg.install", {"name": "curl=1 -o"}, "$.name", "curl=1 -o", PIN),
    case("remove-option", "pkg.remove", {"name": "-y"}, "$.name", "-y", NAME),
    case("search-newline", "pkg.search", {"query": "x\n-o"}, "$.query", "x\n-o", QUERY),
]


async def execute(address: str, tool: str, args: dict[str, Any]) -> Any:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = tools_pb2_grpc.ToolRegistryStub(channel)
        request = tools_pb2.ExecuteRequest(
            tool_name=tool,
            agent_id="aios-reconciler",
            task_id="attack",
            input_json=json.dumps(args).encode(),
            reason="attack corpus",
        )
        return await stub.Execute(request, timeout=60)


@pytest.fixture(scope="module")
def schema_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Every schema case sent to one running registry: case -> (error, root listing)."""
    import asyncio

    base = tmp_path_factory.mktemp("pkgschema")
    root = base / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)

    async def run_all() -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        async with running_registry(base, root=root) as (_server, address):
            for case, tool, args, *_rest in SCHEMA_CASES:
                response = await execute(address, tool, args)
                listing = "\n".join(sorted(str(p.relative_to(root)) for p in root.rglob("*")))
                out[case] = ("" if response.success else response.error, listing)
        return out

    return asyncio.run(run_all())


@pytest.mark.parametrize(
    ("case", "tool", "args", "path", "value", "pattern"),
    SCHEMA_CASES,
    ids=[c[0] for c in SCHEMA_CASES],
)
def test_pkg_schema_refuses(
    schema_results: dict[str, tuple[str, str]],
    case: str,
    tool: str,
    args: dict[str, Any],
    path: str,
    value: Any,
    pattern: str,
) -> None:
    error, listing = schema_results[case]
    assert error == f"Invalid input: {path}: {value!r} does not match {pattern!r}", (tool, args)
    assert listing == "var\nvar/lib\nvar/lib/dpkg", "the refused call wrote under the root"


def test_pkg_spec_and_registry_rules_are_the_same() -> None:
    """The validator and the registry apply the same allow-lists (neither imports the other)."""
    from specs import packages as spec

    for rule in ("REPO_URL_RE", "SUITE_RE", "COMPONENT_RE", "SIGNED_BY_RE"):
        assert getattr(spec, rule) == getattr(pkg_defs, rule), rule
    assert pkg_defs.REPO_URL["pattern"] == rf"^(?:{spec.REPO_URL_RE})$(?!\n)"
