"""pkg.state `repositories`: the apk commands (a double: apk cannot run here) and the apt plumbing.

apk: with a desired repository list that differs from the managed block,
`available` runs `apk update` and `apk policy` against a temporary
repositories file and cache (checked on the argv a recording runner double
receives, answered with recorded `apk policy` output); with the same list it
asks the configured index. apt: which source files a desired list would
change (`_pending`) and the lists directory a preview starts from. The real
apt preview runs in tests/system/test_pkg_state_preview.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_support import ScriptedRunner

from registry.core.errors import ToolError
from registry.core.tool import Runner, ToolContext
from registry.drivers.pkg import apk
from registry.drivers.pkg.apt import AptBackend, _link_lists
from registry.drivers.pkg.backend import Repository

FIXTURES = Path(__file__).parent.parent / "fixtures" / "apk"
REPO = Repository(name="edge", url="https://dl.example.org/alpine/edge", components=("main",))


class ApkRunnerDouble(ScriptedRunner):
    """Remembers every argv; answers `policy` with recorded output, `update` with `update_rc`."""

    def __init__(self, update_rc: int = 0) -> None:
        super().__init__()
        self.update_rc = update_rc
        self.seen_files: dict[str, str] = {}

    def answer(self, argv: list[str], stdin: bytes | None) -> tuple[int, bytes, bytes]:
        if "--repositories-file" in argv:
            path = argv[argv.index("--repositories-file") + 1]
            self.seen_files[path] = read_text(path)
        if "update" in argv:
            err = b"" if self.update_rc == 0 else b"ERROR: https://dl.example.org: DNS lookup error"
            return self.update_rc, b"", err
        out = (FIXTURES / "policy.txt").read_text() if "policy" in argv else ""
        return 0, out.encode(), b""


def read_text(path: str) -> str:
    return Path(path).read_text()


def apk_backend(tmp_path: Path, runner: Runner) -> apk.ApkBackend:
    root = tmp_path / "root"
    (root / "etc/apk").mkdir(parents=True)
    (root / "lib/apk/db").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    ctx = ToolContext(runner=runner, root=root, state_dir=tmp_path, work=work, execution_id="t")
    return apk.ApkBackend(ctx)


async def test_double_apk_preview_uses_a_temporary_repositories_file_and_cache(
    tmp_path: Path,
) -> None:
    runner = ApkRunnerDouble()
    b = apk_backend(tmp_path, runner)
    trusted = Repository(name="local", url="http://127.0.0.1:18080/apk", trusted=True)
    found = await b.available(["curl", "zlib"], [REPO, trusted])
    assert found == {"curl": ["8.5.0-r0", "8.4.0-r1"], "zlib": ["1.3.1-r0"]}
    update, policy = runner.calls
    root = str(b.ctx.root)
    head = ["apk", "--root", root, "--no-progress", "--allow-untrusted", "--repositories-file"]
    assert update[:6] == head and policy[:6] == head
    repos_file, cache = update[6], update[8]
    assert update[7:] == ["--cache-dir", cache, "update"]
    assert policy[6:] == [repos_file, "--cache-dir", cache, "policy", "curl", "zlib"]
    assert Path(repos_file).parent.parent == b.ctx.work  # a temporary dir in the work dir
    text = runner.seen_files[repos_file]
    assert "https://dl.example.org/alpine/edge/main\n" in text
    assert "# aios:local # aios-trusted\nhttp://127.0.0.1:18080/apk\n" in text
    assert not any(b.ctx.work.iterdir()), "temporary directory left behind"
    assert not (b.ctx.root / "etc/apk/repositories").exists(), "the root was changed"


async def test_double_apk_without_changes_asks_the_configured_index(tmp_path: Path) -> None:
    runner = ApkRunnerDouble()
    b = apk_backend(tmp_path, runner)
    (b.ctx.root / "etc/apk/repositories").write_text(b.repo_files([REPO]).files[apk.REPOSITORIES])
    await b.available(["curl"], [REPO])
    assert [c[4:] for c in runner.calls] == [["policy", "curl"]]


async def test_double_apk_update_failure_is_a_clear_error(tmp_path: Path) -> None:
    b = apk_backend(tmp_path, ApkRunnerDouble(update_rc=1))
    with pytest.raises(ToolError, match="cannot index the desired repositories: apk update"):
        await b.available(["curl"], [REPO])


def test_apt_pending_lists_only_files_that_would_change(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    ctx = ToolContext(
        runner=Runner(), root=root, state_dir=tmp_path, work=tmp_path, execution_id="t"
    )
    b = AptBackend(ctx)
    same = Repository(name="same", url="http://a.example/debian", suite="./")
    other = Repository(name="other", url="http://b.example/debian", suite="./", trusted=True)
    gone = Repository(name="gone", url="http://c.example/debian", state="absent")
    kept = Repository(name="kept", url="http://d.example/debian", state="absent")
    for repo in (same, Repository(name="gone", url="http://c.example/debian")):
        path = root / f"etc/apt/sources.list.d/aios-{repo.name}.list"
        content = b.repo_files([repo]).files[f"/etc/apt/sources.list.d/aios-{repo.name}.list"]
        assert content is not None
        path.write_text(content)
    pending = b._pending([same, other, gone, kept])
    assert sorted(pending) == [
        "/etc/apt/sources.list.d/aios-gone.list",
        "/etc/apt/sources.list.d/aios-other.list",
    ]
    assert pending["/etc/apt/sources.list.d/aios-gone.list"] is None
    assert b._pending([same]) == {} and b._pending([]) == {}


def test_apt_preview_lists_link_files_but_not_lock_or_partial(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    (lists / "lock").touch()
    (lists / "example_Packages").write_text("Package: x\n")
    (lists / "local_Packages").symlink_to(lists / "example_Packages")
    _link_lists(lists, tmp_path / "copy")
    copy = tmp_path / "copy"
    assert sorted(p.name for p in copy.iterdir()) == [
        "example_Packages",
        "local_Packages",
        "partial",
    ]
    assert (copy / "example_Packages").readlink() == lists / "example_Packages"
    assert (copy / "local_Packages").readlink() == lists / "example_Packages"
    _link_lists(tmp_path / "missing", tmp_path / "empty")
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["partial"]
    # On a scratch root a list file that leads out of the root is not read.
    (lists / "host_Packages").symlink_to(tmp_path / "outside_Packages")
    (tmp_path / "outside_Packages").write_text("Package: host-only\n")
    _link_lists(lists, tmp_path / "scoped", within=lists)
    assert sorted(p.name for p in (tmp_path / "scoped").iterdir()) == [
        "example_Packages",
        "local_Packages",
        "partial",
    ]


def test_apt_refuses_a_root_whose_apt_directories_pass_through_a_link(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "host-cache").mkdir()
    (root / "var/cache").symlink_to(tmp_path / "host-cache")
    ctx = ToolContext(
        runner=Runner(), root=root, state_dir=tmp_path, work=tmp_path, execution_id="t"
    )
    with pytest.raises(ToolError, match=f"^{root}/var/cache is a symbolic link: apt and dpkg"):
        AptBackend(ctx)
    assert not any((tmp_path / "host-cache").iterdir())
