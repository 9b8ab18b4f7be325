"""The apt/dpkg backend, acting under the context's root.

On a scratch root (root != "/"):
- every apt command runs with a generated APT_CONFIG
  (registry.drivers.pkg.aptparse.render_apt_config, written to <state_dir>/apt/) and
  dpkg-query/dpkg with --admindir/--root; an empty dpkg database is created
  under the root when missing (`ensure_dpkg_root`);
- dpkg — the one that runs maintainer scripts — is the jail wrapper of
  registry.drivers.pkg.jail (<state_dir>/apt/<digest>.dpkg, apt's Dir::Bin::dpkg, and
  what `dpkg --configure -a` runs): scripts run confined to the root, or the
  package is refused with the jail's reason;
- apt reads the root's sources through a per-command copy in a temporary
  directory of the execution's work dir (`_mapped_sources`): `file:` and
  `copy:` URIs and signed-by paths are mapped under the root with
  ToolContext.path (links resolved inside the root), so `file:/srv/repo`
  means <root>/srv/repo and the host's /srv/repo is never read; a URI scheme
  that would read host files some other way is refused. The files in the root
  keep the target's view (`file:/srv/repo`), so pkg.state reports them as the
  spec wrote them. What is not mapped: links *inside* a local repository's
  directory (apt follows them; dpkg then sees the archive through the jail,
  where only the root and the host's /usr and /etc exist).
On "/" the system defaults apply, exactly as before. Every command runs with
DEBIAN_FRONTEND=noninteractive through the context's runner. `available` with
repositories that are not configured yet answers from a temporary index
(`_preview_index`: apt-get update into a temporary lists directory, from the
same mapped sources; the root is not changed). Chosen by
registry.drivers.pkg.selection.select_backend for registry.drivers.pkg.transaction and
registry.handlers.pkg,
and by sandbox.content.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from contract.tooldef import JSON
from registry.core.atomicfile import read_or_none, write_atomic
from registry.core.errors import ToolError
from registry.core.tool import CommandResult, ToolContext
from registry.drivers.pkg import aptparse, jail
from registry.drivers.pkg.backend import (
    BackendName,
    Installed,
    RepoFiles,
    Repository,
    Transaction,
    TransactionError,
)

SOURCES_DIR = "/etc/apt/sources.list.d"
INTERRUPTED = "dpkg was interrupted"
SOURCES_LIST = "/etc/apt/sources.list"
LISTS_DIR = "/var/lib/apt/lists"
REPO_PREFIX = "aios-"

_ROOT_DIRS = (
    "var/lib/dpkg/info",
    "var/lib/dpkg/updates",
    "var/lib/dpkg/triggers",
    "var/lib/dpkg/alternatives",
    "var/lib/apt/lists/partial",
    "var/cache/apt/archives/partial",
    "var/log/apt",
    "etc/apt/sources.list.d",
    "etc/apt/preferences.d",
    "etc/apt/apt.conf.d",
    "etc/apt/trusted.gpg.d",
)


def ensure_dpkg_root(root: Path) -> None:
    """Create an empty dpkg database and apt's directories under `root` (idempotent).

    apt itself runs unconfined and writes there (lists, archives, logs), so
    none of these paths may pass through a symbolic link: a ToolError names
    the first one that does (a planted `var/cache -> /var/cache` would
    otherwise have apt write the host's directory).
    """
    for rel in (*_ROOT_DIRS, "var/lib/dpkg/status", "var/lib/dpkg/available"):
        path = root
        for part in rel.split("/"):
            path = path / part
            if path.is_symlink():
                raise ToolError(
                    f"{path} is a symbolic link: apt and dpkg write below it, so the scratch "
                    f"root {root} must hold /{rel} without links"
                )
    for rel in _ROOT_DIRS:
        (root / rel).mkdir(parents=True, exist_ok=True)
    for rel in ("var/lib/dpkg/status", "var/lib/dpkg/available"):
        path = root / rel
        if not path.exists():
            path.touch(mode=0o644)


def _digest(root: Path) -> str:
    return hashlib.sha256(str(root).encode()).hexdigest()[:16]


def dpkg_wrapper_path(root: Path, state_dir: Path) -> Path:
    """Write (when changed) and return the dpkg jail wrapper for scratch root `root`."""
    path = state_dir / "apt" / f"{_digest(root)}.dpkg"
    return jail.write_wrapper(path, root, shutil.which("dpkg") or "/usr/bin/dpkg",
                                 network=False)  # fmt: skip


def apt_config_path(root: Path, state_dir: Path) -> Path:
    """Write (when changed) and return the APT_CONFIG for scratch root `root`."""
    directory = state_dir / "apt"
    parts = directory / "conf.d"  # deliberately empty
    parts.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_digest(root)}.conf"
    text = aptparse.render_apt_config(root, parts, dpkg=dpkg_wrapper_path(root, state_dir))
    if not path.exists() or path.read_text() != text:
        write_atomic(path, text.encode())
    return path


class AptBackend:
    """apt-get/apt-cache/apt-mark/dpkg-query under `ctx.root` (see module docstring)."""

    name: BackendName = "apt"

    def __init__(self, ctx: ToolContext) -> None:
        self.ctx = ctx
        self.scratch = ctx.root.resolve() != Path("/")
        self.env: dict[str, str] = {"DEBIAN_FRONTEND": "noninteractive"}
        self.dpkg = "dpkg"
        if self.scratch:
            ensure_dpkg_root(ctx.root)
            self.env["APT_CONFIG"] = str(apt_config_path(ctx.root, ctx.state_dir))
            self.dpkg = str(dpkg_wrapper_path(ctx.root, ctx.state_dir))

    # -- command helpers --

    def _admindir(self) -> list[str]:
        return [f"--admindir={self.ctx.root}/var/lib/dpkg"] if self.scratch else []

    def _dpkg_root(self) -> list[str]:
        """dpkg's options for the scratch root (the ones the APT_CONFIG gives it)."""
        if not self.scratch:
            return []
        return aptparse.dpkg_options(self.ctx.root)

    def _apt_options(self) -> list[str]:
        """Options the APT_CONFIG carries on a scratch root, given on the command line on '/'."""
        if self.scratch:
            return []
        return ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]

    async def _run(self, argv: list[str], *, stdin: bytes | None = None) -> CommandResult:
        return await self.ctx.runner.run(argv, env=self.env, check=False, stdin=stdin)

    async def _apt(
        self, program: str, *args: str, sources: Sequence[str] | None = None
    ) -> CommandResult:
        """Run an apt program; on a scratch root with the root's sources mapped under it.

        `sources`: apt options naming the sources to read instead (a preview's).
        """
        if sources is not None:
            return await self._run([program, *sources, *args])
        if not self.scratch:
            return await self._run([program, *args])
        with tempfile.TemporaryDirectory(prefix="apt-sources-", dir=self.ctx.work) as tmp:
            mapped = self._mapped_sources(Path(tmp), {})
            return await self._run([program, *mapped, *args])

    async def apt_get(self, *args: str, sources: Sequence[str] | None = None) -> CommandResult:
        return await self._apt("apt-get", *self._apt_options(), *args, sources=sources)

    def _mapped_sources(self, tmp: Path, pending: dict[str, str | None]) -> list[str]:
        """The root's sources (with `pending` applied) as apt must read them, written in `tmp`.

        Every `file:`/`copy:` URI and signed-by path is mapped under the root
        (aptparse.map_sources_list / map_deb822_sources through ctx.path,
        which resolves links inside the root), so apt never reads the host's
        directory of the same name. Returns the apt options that select them.
        """
        parts = tmp / "sources.list.d"
        parts.mkdir()
        main = tmp / "sources.list"
        main.write_text(self._map(SOURCES_LIST, self._read_source(SOURCES_LIST)))
        texts = {name: self._read_source(f"{SOURCES_DIR}/{name}") for name in self._source_names()}
        for target, content in pending.items():
            name = Path(target).name
            texts.pop(name, None)
            if content is not None:
                texts[name] = content
        for name, text in sorted(texts.items()):
            (parts / name).write_text(self._map(f"{SOURCES_DIR}/{name}", text))
        return ["-o", f"Dir::Etc::sourcelist={main}", "-o", f"Dir::Etc::sourceparts={parts}"]

    def _source_names(self) -> list[str]:
        directory = self._sources_dir()
        if not directory.is_dir():
            return []
        return sorted(
            p.name
            for p in directory.iterdir()
            if p.suffix in (".list", ".sources")
            and self.ctx.path(f"{SOURCES_DIR}/{p.name}").is_file()
        )

    def _read_source(self, target: str) -> str:
        data = read_or_none(self.ctx.path(target))
        return "" if data is None else data.decode("utf-8", "replace")

    def _map(self, target: str, text: str) -> str:
        def resolve(path: str) -> str:
            return str(self.ctx.path(path))

        try:
            if target.endswith(".sources"):
                return aptparse.map_deb822_sources(text, resolve)
            return aptparse.map_sources_list(text, resolve)
        except (ValueError, ToolError) as exc:
            raise ToolError(f"{target} under the root {self.ctx.root}: {exc}") from None

    # -- reading --

    def _auto(self) -> set[str]:
        path = self.ctx.root / "var/lib/apt/extended_states"
        try:
            return aptparse.parse_extended_states(path.read_text(errors="replace"))
        except FileNotFoundError:
            return set()

    async def installed(self, names: Sequence[str] | None = None) -> list[Installed]:
        argv = ["dpkg-query", *self._admindir(), "-W", "-f", aptparse.QUERY_FORMAT]
        result = await self._run([*argv, "--", *names] if names else argv)
        # exit 1 with names the database does not know: the others are still printed
        if result.returncode not in (0, 1):
            raise ToolError(f"dpkg-query failed: {result.err}")
        return aptparse.parse_dpkg_query(result.text, self._auto())

    async def available(
        self, names: Sequence[str], repositories: Sequence[Repository] | None = None
    ) -> dict[str, list[str]]:
        if not names:
            return {}
        pending = self._pending(repositories or ())
        if not pending:
            return await self._madison(names, None)
        with tempfile.TemporaryDirectory(prefix="pkg-preview-", dir=self.ctx.work) as tmp:
            return await self._madison(names, await self._preview_index(Path(tmp), pending))

    async def _madison(
        self, names: Sequence[str], sources: list[str] | None
    ) -> dict[str, list[str]]:
        result = await self._apt("apt-cache", "madison", *names, sources=sources)
        if result.returncode != 0:
            raise ToolError(f"apt-cache madison failed: {result.err}")
        found = aptparse.parse_madison(result.text)
        return {name: found.get(name, []) for name in names}

    def _pending(self, repos: Sequence[Repository]) -> dict[str, str | None]:
        """Managed source files `repos` would change: target -> new content (None: delete)."""
        files = self.repo_files(repos).files if repos else {}
        return {
            target: content
            for target, content in files.items()
            if read_or_none(self.ctx.path(target))
            != (None if content is None else content.encode())
        }

    async def _preview_index(self, tmp: Path, pending: dict[str, str | None]) -> list[str]:
        """A temporary index of the sources as they would be with `pending` applied.

        The current lists are symlinked into `tmp/lists` (apt replaces files
        there by rename, never in place), only the new or changed source
        files are fetched (`apt-get update` with List-Cleanup off), and the
        apt options returned point apt-cache at the future sources and the
        temporary lists, with no cache files written. Nothing under the root
        changes.
        """
        lists, etc, fresh = tmp / "lists", tmp / "etc", tmp / "fresh"
        within = self.ctx.root.resolve() if self.scratch else None
        _link_lists(self.ctx.path(LISTS_DIR), lists, within=within)
        etc.mkdir()
        fresh.mkdir()
        sources = self._sources_for(etc, pending)
        for target, content in pending.items():
            if content is not None:
                name = Path(target).name
                (fresh / name).write_text(self._map(target, content) if self.scratch else content)
        common = [
            "-o", f"Dir::State::Lists={lists}",
            "-o", "Dir::Cache::pkgcache=",
            "-o", "Dir::Cache::srcpkgcache=",
        ]  # fmt: skip
        if any(fresh.iterdir()):
            (tmp / "empty.list").touch()
            result = await self.apt_get(
                "update", "-q",
                sources=[
                    *common,
                    "-o", f"Dir::Etc::sourcelist={tmp / 'empty.list'}",
                    "-o", f"Dir::Etc::sourceparts={fresh}",
                    "-o", "APT::Get::List-Cleanup=false",
                ],
            )  # fmt: skip
            if result.returncode != 0:
                raise ToolError(
                    "cannot index the desired repositories: apt-get update failed: "
                    + aptparse.failure_summary(result.err + "\n" + result.text)
                )
        return [*common, *sources]

    def _sources_for(self, etc: Path, pending: dict[str, str | None]) -> list[str]:
        """Sources with `pending` applied, in `etc`: mapped on a scratch root, copied on '/'."""
        if self.scratch:
            return self._mapped_sources(etc, pending)
        parts = etc / "sources.list.d"
        parts.mkdir()
        main = etc / "sources.list"
        main.write_bytes(read_or_none(self.ctx.path(SOURCES_LIST)) or b"")
        for path in sorted(self._sources_dir().glob("*")):
            if path.is_file() and path.suffix in (".list", ".sources"):
                (parts / path.name).write_bytes(path.read_bytes())
        for target, content in pending.items():
            name = Path(target).name
            (parts / name).unlink(missing_ok=True)
            if content is not None:
                (parts / name).write_text(content)
        return ["-o", f"Dir::Etc::sourcelist={main}", "-o", f"Dir::Etc::sourceparts={parts}"]

    async def list_installed(self) -> list[JSON]:
        fmt = "${Package}\\t${Version}\\n"
        result = await self._run(["dpkg-query", *self._admindir(), "-W", "-f", fmt])
        if result.returncode != 0:
            raise ToolError(f"dpkg-query failed: {result.err}")
        rows = (line.split("\t", 1) for line in result.text.splitlines() if "\t" in line)
        return [{"name": n, "version": v} for n, v in rows]

    async def version_of(self, name: str) -> str:
        rows = await self.installed([name])
        return next((p.version for p in rows if p.name == name and p.present), "unknown")

    # -- transactions --

    @staticmethod
    def _tx_args(tx: Transaction) -> list[str]:
        args = [f"{n}={v}" if v else n for n, v in tx.install]
        return [*args, *(f"{n}-" for n in tx.remove)]

    async def simulate(self, tx: Transaction) -> set[str]:
        if tx.empty:
            return set()
        purge = ["--purge"] if tx.purge else []
        result = await self.apt_get(
            "-s", "-q", "install", "--allow-downgrades", *purge, *self._tx_args(tx)
        )
        if result.returncode != 0:
            raise ToolError(f"apt-get -s install failed: {aptparse.failure_summary(result.err)}")
        touched = aptparse.parse_simulation(result.text)
        return touched["install"] | touched["remove"]

    async def transact(self, tx: Transaction) -> None:
        if tx.empty:
            return
        purge = ["--purge"] if tx.purge else []
        purge += ["--reinstall"] if tx.reinstall else []
        argv = ["install", "-y", "-q", "--allow-downgrades", *purge, "--", *self._tx_args(tx)]
        result = await self.apt_get(*argv)
        if result.returncode != 0 and INTERRUPTED in result.err:
            # A killed dpkg (e.g. an execution that timed out) leaves this state; apt
            # refuses everything until dpkg finishes configuring, so do that once.
            await self._run([self.dpkg, *self._dpkg_root(), "--configure", "-a"])
            result = await self.apt_get(*argv)
        if result.returncode != 0:
            output = result.err + "\n" + result.text
            refused = aptparse.confined_writes(output) if self.scratch else []
            outside = (
                f"; a maintainer script tried to change a path outside the root "
                f"{self.ctx.root} and was refused (scripts run confined to the root): "
                f"{'; '.join(refused)}"
                if refused
                else ""
            )
            raise TransactionError(
                f"apt-get install failed: {aptparse.failure_summary(output)}{outside}",
                stderr=result.err,
                packages=aptparse.failed_packages(output),
            )

    async def set_holds(self, hold: Sequence[str], unhold: Sequence[str]) -> None:
        for verb, names in (("unhold", unhold), ("hold", hold)):
            if names:
                result = await self._apt("apt-mark", verb, "--", *names)
                if result.returncode != 0:
                    raise ToolError(f"apt-mark {verb} {' '.join(names)} failed: {result.err}")

    async def set_auto(self, auto: Sequence[str], manual: Sequence[str]) -> None:
        for verb, names in (("auto", auto), ("manual", manual)):
            if names:
                result = await self._apt("apt-mark", verb, "--", *names)
                if result.returncode != 0:
                    raise ToolError(f"apt-mark {verb} failed: {result.err}")

    async def update_index(self) -> None:
        result = await self.apt_get("update", "-q")
        if result.returncode != 0:
            raise ToolError(f"apt-get update failed: {aptparse.failure_summary(result.err)}")

    async def search(self, query: str, limit: int) -> list[JSON]:
        result = await self._apt("apt-cache", "search", "--", query)
        if result.returncode != 0:
            raise ToolError(f"apt-cache search failed: {result.err}")
        hits = aptparse.parse_search(result.text)[:limit]
        candidates: dict[str, str] = {}
        if hits:
            policy = await self._apt("apt-cache", "policy", *(n for n, _ in hits))
            candidates = aptparse.parse_policy_candidates(policy.text)
        return [
            {"name": n, "version": candidates.get(n, "unknown"), "description": d} for n, d in hits
        ]

    async def upgrade_all(self) -> int:
        update = await self.apt_get("update", "-qq")
        if update.returncode != 0:
            raise ToolError(f"apt-get update failed: {update.err}")
        dry = await self.apt_get("upgrade", "--dry-run", "-qq")
        if dry.returncode != 0:
            raise ToolError(f"apt-get upgrade failed: {dry.err}")
        count = aptparse.count_upgrades(dry.text)
        if count:
            done = await self.apt_get("upgrade", "-y", "-qq")
            if done.returncode != 0:
                raise ToolError(f"apt-get upgrade failed: {done.err}")
        return count

    # -- repositories --

    def _sources_dir(self) -> Path:
        return self.ctx.path(SOURCES_DIR)

    def repositories(self) -> list[Repository]:
        found: list[Repository] = []
        directory = self._sources_dir()
        if not directory.is_dir():
            return found
        for path in sorted(directory.glob(f"{REPO_PREFIX}*.list")):
            name = path.name[len(REPO_PREFIX) : -len(".list")]
            repo = aptparse.parse_sources(name, self._read_source(f"{SOURCES_DIR}/{path.name}"))
            if repo is not None:
                found.append(repo)
        return found

    def repo_files(self, repos: Sequence[Repository]) -> RepoFiles:
        files: dict[str, str | None] = {}
        for repo in repos:
            target = f"{SOURCES_DIR}/{REPO_PREFIX}{repo.name}.list"
            files[target] = aptparse.render_sources(repo) if repo.state == "present" else None
        return RepoFiles(files)


def _link_lists(source: Path, target: Path, *, within: Path | None = None) -> None:
    """Symlink apt's list files (not its lock or partial/) from `source` into `target`.

    `within`: only list files that resolve inside this directory (the scratch
    root) are linked; one that leads out of it is left out, so a preview never
    reads a host file as an index.
    """
    target.mkdir(parents=True)
    (target / "partial").mkdir()
    if not source.is_dir():
        return
    for entry in source.iterdir():
        if entry.name not in ("lock", "partial", "auxfiles") and not entry.is_dir():
            resolved = entry.resolve()
            if within is None or resolved.is_relative_to(within):
                (target / entry.name).symlink_to(resolved)


def env_for(ctx: ToolContext) -> Mapping[str, str]:
    """The environment apt commands get for `ctx` (used by bench/ for the raw baseline)."""
    return dict(AptBackend(ctx).env)
