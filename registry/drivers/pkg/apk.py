"""The apk (Alpine) package backend: `apk --root R` command building and output parsing.

apk cannot run on this Debian host, so this backend is tested only against
recorded apk 2.14 output (tests/fixtures/apk/, tests/unit/test_apk_double.py,
named as doubles). Semantics on apk:
- installed packages: `apk list --installed`; depends from the installed
  database (<root>/lib/apk/db/installed, `D:` lines, so:/cmd: provides mapped
  to package names through `p:` lines); auto = not in /etc/apk/world;
- hold = an exact pin `name=version` in the world (apk has no separate hold);
  hold pins the installed version, unhold re-adds the bare name;
- a transaction is `apk del` (removals) followed by `apk add` (installs with
  `name=version`): apk has no single command for both, so this is two world
  commits, and pkg.ensure's restore covers a failure between them;
- repositories live in a managed block of /etc/apk/repositories (one line
  per component, a `# aios:<name>` comment before them); `trusted` adds
  --allow-untrusted to every command;
- versions of repositories not configured yet (pkg.state `repositories`):
  `apk update` and `apk policy` with `--repositories-file` and `--cache-dir`
  pointing into a temporary directory;
- on a scratch root (root != "/") the commands that run package scripts
  (`add`, `del`, `upgrade`, `fix`; not `--simulate`) run through the jail
  wrapper of registry.drivers.pkg.jail (<state_dir>/apk/<digest>.apk): apk runs its
  scripts chrooted into the root, which does not hold against uid 0, so the
  whole apk process runs confined to the root (with the network: apk
  downloads in the same process). A `file:` repository is refused there: the
  paths apk opens for a local repository under --root are not mapped (this
  backend cannot be run on this host to prove how apk resolves them), so
  only http(s) repositories are accepted under --root.
Chosen by registry.drivers.pkg.selection.select_backend.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from contract.tooldef import JSON
from registry.core.errors import ToolError
from registry.core.managedblock import Markers, replace_block, split_block
from registry.core.tool import CommandResult, ToolContext
from registry.drivers.pkg import jail
from registry.drivers.pkg.backend import (
    BackendName,
    Installed,
    RepoFiles,
    Repository,
    Transaction,
    TransactionError,
)

WORLD = "/etc/apk/world"
REPOSITORIES = "/etc/apk/repositories"
INSTALLED_DB = "/lib/apk/db/installed"
SCRIPT_VERBS = frozenset({"add", "del", "upgrade", "fix"})  # apk verbs that run scripts
REPO_MARKERS = Markers(
    "# BEGIN aios-reconciler managed repositories", "# END aios-reconciler managed repositories"
)
_NAME_VERSION = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-\s]*-r\d+)$")
_LIST_LINE = re.compile(r"^(?P<nv>\S+) (?P<arch>\S+) \{(?P<origin>[^}]*)\} \((?P<lic>[^)]*)\)")
_STEP = re.compile(r"^\(\d+/\d+\) (Installing|Upgrading|Downgrading|Replacing|Purging) (\S+)")
_WORLD_DEP = re.compile(r"^(?P<name>[^=<>~!\s]+)(?P<op>[=<>~]+)?(?P<ver>\S+)?$")


def split_name_version(text: str) -> tuple[str, str] | None:
    """'py3-foo-1.2.3-r0' -> ('py3-foo', '1.2.3-r0')."""
    match = _NAME_VERSION.match(text)
    return (match.group("name"), match.group("version")) if match else None


def parse_list_installed(text: str) -> dict[str, str]:
    """`apk list --installed` -> name: version."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _LIST_LINE.match(line)
        split = split_name_version(match.group("nv")) if match else None
        if split:
            found[split[0]] = split[1]
    return found


def parse_info_v(text: str) -> dict[str, str]:
    """`apk info -v` -> name: version (warnings ignored)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        split = split_name_version(line.strip())
        if split:
            found[split[0]] = split[1]
    return found


def parse_world(text: str) -> dict[str, str | None]:
    """/etc/apk/world -> name: pinned exact version (None when not pinned exactly)."""
    world: dict[str, str | None] = {}
    for token in text.split():
        match = _WORLD_DEP.match(token)
        if match and not token.startswith("!"):
            world[match.group("name")] = match.group("ver") if match.group("op") == "=" else None
    return world


def parse_installed_db(text: str) -> dict[str, tuple[str, ...]]:
    """lib/apk/db/installed -> name: depended-on package names (provides resolved)."""
    stanzas: list[dict[str, list[str]]] = []
    for block in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.splitlines():
            if len(line) > 2 and line[1] == ":":
                fields.setdefault(line[0], []).append(line[2:])
        if "P" in fields:
            stanzas.append(fields)
    provider: dict[str, str] = {}
    for fields in stanzas:
        name = fields["P"][0]
        provider[name] = name
        for provided in " ".join(fields.get("p", [])).split():
            provider.setdefault(re.split(r"[=<>~]", provided, maxsplit=1)[0], name)
    out: dict[str, tuple[str, ...]] = {}
    for fields in stanzas:
        deps: list[str] = []
        for dep in " ".join(fields.get("D", [])).split():
            if dep.startswith("!"):
                continue
            target = provider.get(re.split(r"[=<>~]", dep, maxsplit=1)[0])
            if target and target not in deps:
                deps.append(target)
        out[fields["P"][0]] = tuple(deps)
    return out


def parse_policy(text: str) -> dict[str, list[str]]:
    """`apk policy a b` -> name: versions offered by repositories, in apk's (newest-first) order."""
    found: dict[str, list[str]] = {}
    name = version = ""
    for line in text.splitlines():
        if line.endswith(" policy:") and not line.startswith(" "):
            name = line[: -len(" policy:")]
            found.setdefault(name, [])
        elif line.startswith("  ") and not line.startswith("    ") and line.endswith(":"):
            version = line.strip()[:-1]
        elif line.startswith("    ") and name and version:
            source = line.strip()
            if source != INSTALLED_DB.lstrip("/") and version not in found[name]:
                found[name].append(version)
    return found


def parse_steps(text: str) -> dict[str, set[str]]:
    """`apk add/del/upgrade` progress lines -> {'install': names, 'remove': names}."""
    out: dict[str, set[str]] = {"install": set(), "remove": set()}
    for line in text.splitlines():
        match = _STEP.match(line.strip())
        if match:
            out["remove" if match.group(1) == "Purging" else "install"].add(match.group(2))
    return out


def parse_search(text: str) -> list[JSON]:
    """`apk search -v` -> [{name, version, description}]."""
    out: list[JSON] = []
    for line in text.splitlines():
        head, _sep, description = line.partition(" - ")
        split = split_name_version(head.strip())
        if split:
            out.append({"name": split[0], "version": split[1], "description": description})
    return out


def errors_of(result: CommandResult) -> str:
    lines = [
        line.strip()[len("ERROR: ") :]
        for line in (result.err + "\n" + result.text).splitlines()
        if line.strip().startswith("ERROR: ")
    ]
    return "; ".join(dict.fromkeys(lines)) or result.err or f"exit status {result.returncode}"


def parse_repositories(text: str) -> list[Repository]:
    """Managed repositories from the block of /etc/apk/repositories."""
    _before, body, _after = split_block(text, REPO_MARKERS)
    out = []
    for name, lines in _lines_by_name(body).items():
        urls = [line.strip() for line in lines[1:] if line.strip() and not line.startswith("#")]
        if urls:
            trusted = lines[0].endswith(" # aios-trusted")
            out.append(Repository(name=name, url=urls[0], trusted=trusted))
    return out


def repository_lines(repo: Repository) -> list[str]:
    base = repo.url.rstrip("/")
    if repo.suite not in ("./", "."):
        base = f"{base}/{repo.suite.strip('/')}"
    return [f"{base}/{c}" for c in repo.components] or [base]


class ApkBackend:
    """`apk --root R …` (see module docstring)."""

    name: BackendName = "apk"

    def __init__(self, ctx: ToolContext) -> None:
        self.ctx = ctx
        self.scratch = ctx.root.resolve() != Path("/")

    def _program(self, args: Sequence[str]) -> str:
        """`apk`, or on a scratch root the jail wrapper when the verb runs package scripts."""
        verb = next((a for a in args if not a.startswith("-")), "")
        if not self.scratch or verb not in SCRIPT_VERBS or "--simulate" in args:
            return "apk"
        digest = hashlib.sha256(str(self.ctx.root).encode()).hexdigest()[:16]
        path = self.ctx.state_dir / "apk" / f"{digest}.apk"
        program = shutil.which("apk") or "/sbin/apk"
        return str(jail.write_wrapper(path, self.ctx.root, program, network=True))

    def _read(self, target: str) -> str:
        try:
            return self.ctx.path(target).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def argv(self, *args: str, repositories: str | None = None) -> list[str]:
        """apk argv; `repositories`: the repositories file text trust is judged by."""
        text = self._read(REPOSITORIES) if repositories is None else repositories
        trusted = ["--allow-untrusted"] if "# aios-trusted" in text else []
        program = self._program(args)
        return [program, "--root", str(self.ctx.root), "--no-progress", *trusted, *args]

    def _trusted(self) -> bool:
        return "# aios-trusted" in self._read(REPOSITORIES)

    async def _run(self, *args: str, repositories: str | None = None) -> CommandResult:
        return await self.ctx.runner.run(self.argv(*args, repositories=repositories), check=False)

    async def installed(self, names: Sequence[str] | None = None) -> list[Installed]:
        result = await self._run("list", "--installed")
        if result.returncode != 0:
            raise ToolError(f"apk list failed: {errors_of(result)}")
        versions = parse_list_installed(result.text)
        world = parse_world(self._read(WORLD))
        depends = parse_installed_db(self._read(INSTALLED_DB))
        wanted = set(names) if names else set(versions)
        return [
            Installed(
                name=name,
                version=versions[name],
                status="installed",
                hold=world.get(name) == versions[name],
                auto=name not in world,
                depends=depends.get(name, ()),
            )
            for name in sorted(wanted & set(versions))
        ]

    async def available(
        self, names: Sequence[str], repositories: Sequence[Repository] | None = None
    ) -> dict[str, list[str]]:
        if not names:
            return {}
        future = self.repo_files(repositories).files[REPOSITORIES] if repositories else None
        if future is None or future == self._read(REPOSITORIES):
            result = await self._run("policy", *names)
        else:
            result = await self._preview_policy(names, future)
        if result.returncode != 0:
            raise ToolError(f"apk policy failed: {errors_of(result)}")
        found = parse_policy(result.text)
        return {name: found.get(name, []) for name in names}

    async def _preview_policy(self, names: Sequence[str], future: str) -> CommandResult:
        """`apk policy` against a temporary repositories file and index cache.

        `apk update` fetches the indexes of the future repositories file into
        a temporary cache directory; the root's own cache and files are not
        changed. (A double tests the commands: apk cannot run on this host.)
        """
        with tempfile.TemporaryDirectory(prefix="pkg-preview-", dir=self.ctx.work) as tmp:
            repos, cache = Path(tmp) / "repositories", Path(tmp) / "cache"
            repos.write_text(future)
            cache.mkdir()
            options = ["--repositories-file", str(repos), "--cache-dir", str(cache)]
            update = await self._run(*options, "update", repositories=future)
            if update.returncode != 0:
                raise ToolError(
                    f"cannot index the desired repositories: apk update failed: {errors_of(update)}"
                )
            return await self._run(*options, "policy", *names, repositories=future)

    async def list_installed(self) -> list[JSON]:
        result = await self._run("info", "-v")
        if result.returncode != 0:
            raise ToolError(f"apk info failed: {errors_of(result)}")
        return [{"name": n, "version": v} for n, v in sorted(parse_info_v(result.text).items())]

    async def version_of(self, name: str) -> str:
        rows = await self.installed([name])
        return rows[0].version if rows else "unknown"

    @staticmethod
    def _adds(tx: Transaction) -> list[str]:
        return [f"{n}={v}" if v else n for n, v in tx.install]

    async def simulate(self, tx: Transaction) -> set[str]:
        touched: set[str] = set()
        for verb, args in (("del", list(tx.remove)), ("add", self._adds(tx))):
            if args:
                result = await self._run(verb, "--simulate", *args)
                if result.returncode != 0:
                    raise ToolError(f"apk {verb} --simulate failed: {errors_of(result)}")
                steps = parse_steps(result.text)
                touched |= steps["install"] | steps["remove"]
        return touched

    async def transact(self, tx: Transaction) -> None:
        if tx.remove:
            result = await self._run("del", *(["--purge"] if tx.purge else []), *tx.remove)
            if result.returncode != 0:
                raise TransactionError(f"apk del failed: {errors_of(result)}", stderr=result.err)
        if tx.install:
            result = await self._run("add", *self._adds(tx))
            if result.returncode != 0:
                raise TransactionError(f"apk add failed: {errors_of(result)}", stderr=result.err)

    async def set_holds(self, hold: Sequence[str], unhold: Sequence[str]) -> None:
        world = parse_world(self._read(WORLD))
        releases = [n for n in unhold if world.get(n)]
        pins = [f"{p.name}={p.version}" for p in await self.installed(hold)]
        for args in (releases, pins):
            if args:
                result = await self._run("add", *args)
                if result.returncode != 0:
                    raise ToolError(f"apk add (hold) failed: {errors_of(result)}")

    async def set_auto(self, auto: Sequence[str], manual: Sequence[str]) -> None:
        """No-op: apk's 'auto' is absence from the world, changed only by add/del."""

    async def update_index(self) -> None:
        result = await self._run("update")
        if result.returncode != 0:
            raise ToolError(f"apk update failed: {errors_of(result)}")

    async def search(self, query: str, limit: int) -> list[JSON]:
        result = await self._run("search", "-v", "--", query)
        if result.returncode != 0:
            raise ToolError(f"apk search failed: {errors_of(result)}")
        return parse_search(result.text)[:limit]

    async def upgrade_all(self) -> int:
        await self.update_index()
        dry = await self._run("upgrade", "--simulate")
        if dry.returncode != 0:
            raise ToolError(f"apk upgrade failed: {errors_of(dry)}")
        count = len(parse_steps(dry.text)["install"])
        if count:
            done = await self._run("upgrade")
            if done.returncode != 0:
                raise ToolError(f"apk upgrade failed: {errors_of(done)}")
        return count

    def repositories(self) -> list[Repository]:
        return parse_repositories(self._read(REPOSITORIES))

    def repo_files(self, repos: Sequence[Repository]) -> RepoFiles:
        text = self._read(REPOSITORIES)
        _before, body, _after = split_block(text, REPO_MARKERS)
        lines_of = _lines_by_name(body)
        for repo in repos:
            if repo.state == "present" and self.scratch and repo.url.startswith("file:"):
                raise ToolError(
                    f"repository {repo.name!r}: a file: URL is not supported by the apk "
                    f"backend under --root {self.ctx.root} (apk would open a path outside "
                    "the root); use an http(s) repository"
                )
            if repo.state == "present":
                marker = " # aios-trusted" if repo.trusted else ""
                lines_of[repo.name] = [f"# aios:{repo.name}{marker}", *repository_lines(repo)]
            else:
                lines_of.pop(repo.name, None)
        new_body = [line for name in sorted(lines_of) for line in lines_of[name]]
        return RepoFiles({REPOSITORIES: replace_block(text, REPO_MARKERS, new_body)})


def _lines_by_name(body: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = ""
    for raw in body:
        line = raw.rstrip("\n")
        if line.startswith("# aios:"):
            current = line[len("# aios:") :].split(" ", 1)[0]
            out[current] = [line]
        elif current:
            out[current].append(line)
    return out
