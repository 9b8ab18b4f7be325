"""apk backend against recorded apk output (a double: apk cannot run on this host).

Command building is checked on the argv the backend hands to a recording
runner; parsing on the recorded outputs in tests/fixtures/apk/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_support import ScriptedRunner

from registry.core.errors import ToolError
from registry.core.tool import Runner, ToolContext
from registry.drivers.pkg import apk
from registry.drivers.pkg.backend import Repository, Transaction, TransactionError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "apk"


def recorded(name: str) -> str:
    return (FIXTURES / name).read_text()


class RecordingRunnerDouble(ScriptedRunner):
    """Answers apk commands with recorded output and remembers every argv."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[int, str]]) -> None:
        super().__init__()
        self.answers = answers

    def answer(self, argv: list[str], stdin: bytes | None) -> tuple[int, bytes, bytes]:
        key = tuple(argv[4:])  # after: apk --root R --no-progress
        code, out = self.answers.get(key, (0, ""))
        return code, out.encode(), b""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "etc/apk").mkdir(parents=True)
    (tmp_path / "lib/apk/db").mkdir(parents=True)
    (tmp_path / "etc/apk/world").write_text(recorded("world"))
    (tmp_path / "lib/apk/db/installed").write_text(recorded("installed"))
    return tmp_path


def read_text(path: str) -> str:
    return Path(path).read_text()


def backend(root: Path, answers: dict[tuple[str, ...], tuple[int, str]]) -> apk.ApkBackend:
    runner = RecordingRunnerDouble(answers)
    ctx = ToolContext(runner=runner, root=root, state_dir=root, work=root, execution_id="t")
    return apk.ApkBackend(ctx)


def test_double_split_name_version() -> None:
    assert apk.split_name_version("py3-foo-bar-2.3.1-r2") == ("py3-foo-bar", "2.3.1-r2")
    assert apk.split_name_version("musl-1.2.4_git20230717-r4") == ("musl", "1.2.4_git20230717-r4")
    assert apk.split_name_version("no-version") is None


def test_double_parsers() -> None:
    assert apk.parse_list_installed(recorded("list-installed.txt"))["libcurl"] == "8.5.0-r0"
    assert apk.parse_info_v(recorded("info-v.txt")) == apk.parse_list_installed(
        recorded("list-installed.txt")
    )
    assert apk.parse_policy(recorded("policy.txt")) == {
        "curl": ["8.5.0-r0", "8.4.0-r1"],
        "zlib": ["1.3.1-r0"],
        "nosuch": [],
    }
    assert apk.parse_steps(recorded("add-simulate.txt")) == {
        "install": {"oniguruma", "jq", "curl"},
        "remove": set(),
    }
    assert apk.parse_steps(recorded("del-simulate.txt"))["remove"] == {"py3-foo-bar"}
    assert apk.parse_world(recorded("world")) == {
        "busybox": None,
        "curl": None,
        "py3-foo-bar": None,
        "zlib": "1.3.1-r0",
    }
    depends = apk.parse_installed_db(recorded("installed"))
    assert depends["curl"] == ("musl", "libcurl", "zlib")  # so: provides mapped to packages
    assert depends["py3-foo-bar"] == ("curl",)  # cmd:curl provided by curl; python3 unknown
    assert apk.parse_search(recorded("search.txt"))[1] == {
        "name": "curl-dev",
        "version": "8.5.0-r0",
        "description": "URL retrival utility and library (development files)",
    }


async def test_double_installed_reads_world_for_hold_and_auto(root: Path) -> None:
    b = backend(root, {("list", "--installed"): (0, recorded("list-installed.txt"))})
    rows = {p.name: p for p in await b.installed()}
    assert rows["zlib"].hold and not rows["zlib"].auto
    assert rows["libcurl"].auto and not rows["libcurl"].hold
    assert rows["curl"].depends == ("musl", "libcurl", "zlib")
    assert all(p.present for p in rows.values())


async def test_double_commands(root: Path) -> None:
    answers = {
        ("policy", "curl", "zlib", "nosuch"): (0, recorded("policy.txt")),
        ("del", "--simulate", "py3-foo-bar"): (0, recorded("del-simulate.txt")),
        ("add", "--simulate", "curl=8.4.0-r1", "jq"): (0, recorded("add-simulate.txt")),
        ("upgrade", "--simulate"): (0, recorded("upgrade-simulate.txt")),
        ("list", "--installed"): (0, recorded("list-installed.txt")),
    }
    b = backend(root, answers)
    runner = b.ctx.runner
    assert isinstance(runner, RecordingRunnerDouble)
    assert (await b.available(["curl", "zlib", "nosuch"]))["curl"] == ["8.5.0-r0", "8.4.0-r1"]
    tx = Transaction(install=(("curl", "8.4.0-r1"), ("jq", None)), remove=("py3-foo-bar",))
    assert await b.simulate(tx) == {"py3-foo-bar", "oniguruma", "jq", "curl"}
    runner.calls.clear()
    await b.transact(Transaction(install=tx.install, remove=tx.remove, purge=True))
    # On a scratch root the commands that run package scripts go through the jail wrapper
    # (registry.drivers.pkg.jail), never plain apk: apk's own chroot does not hold against uid 0.
    jail = runner.calls[0][0]
    assert jail.startswith(f"{root}/apk/") and jail.endswith(".apk")
    assert f"run {root} net " in read_text(jail)
    assert runner.calls == [
        [jail, "--root", str(root), "--no-progress", "del", "--purge", "py3-foo-bar"],
        [jail, "--root", str(root), "--no-progress", "add", "curl=8.4.0-r1", "jq"],
    ]
    runner.calls.clear()
    await b.set_holds(["curl"], ["zlib"])
    assert [c[4:] for c in runner.calls] == [
        ["list", "--installed"],
        ["add", "zlib"],
        ["add", "curl=8.5.0-r0"],
    ]
    assert [c[0] for c in runner.calls] == ["apk", jail, jail]
    runner.calls.clear()
    assert await b.upgrade_all() == 2
    assert [c[4:] for c in runner.calls] == [["update"], ["upgrade", "--simulate"], ["upgrade"]]
    assert [c[0] for c in runner.calls] == ["apk", "apk", jail]  # reads and dry runs: plain


async def test_double_postinst_failure_names_the_script(root: Path) -> None:
    b = backend(root, {("add", "broken"): (1, recorded("add-postinst-error.txt"))})
    with pytest.raises(TransactionError) as failure:
        await b.transact(Transaction(install=(("broken", None),)))
    assert "broken-1.0-r0.post-install: script exited with error 1" in str(failure.value)


async def test_double_failure_of_a_read_is_a_tool_error(root: Path) -> None:
    b = backend(root, {("list", "--installed"): (1, "")})
    with pytest.raises(ToolError, match="apk list failed"):
        await b.installed()


def test_double_repositories_managed_block(root: Path) -> None:
    path = root / "etc/apk/repositories"
    path.write_text("https://dl-cdn.alpinelinux.org/alpine/v3.19/main\n")
    b = backend(root, {})
    local = Repository(name="local", url="http://127.0.0.1:18080/apk", trusted=True)
    files = b.repo_files([local]).files
    text = files[apk.REPOSITORIES]
    assert text is not None
    assert text.startswith("https://dl-cdn.alpinelinux.org/alpine/v3.19/main\n# BEGIN")
    path.write_text(text)
    assert [(r.name, r.url, r.trusted) for r in b.repositories()] == [
        ("local", "http://127.0.0.1:18080/apk", True)
    ]
    assert "--allow-untrusted" in b.argv("update")
    gone = b.repo_files([Repository(name="local", url="x", state="absent")]).files
    assert gone[apk.REPOSITORIES] == "https://dl-cdn.alpinelinux.org/alpine/v3.19/main\n"
    with pytest.raises(ToolError, match=r"^repository 'disk': a file: URL is not supported by"):
        b.repo_files([Repository(name="disk", url="file:/srv/apk", trusted=True)])


def test_backend_is_chosen_by_what_the_target_has(root: Path, tmp_path: Path) -> None:
    from registry.drivers.pkg.apt import AptBackend
    from registry.drivers.pkg.selection import select_backend

    def pick(r: Path) -> str:
        ctx = ToolContext(
            runner=Runner(), root=r, state_dir=tmp_path, work=tmp_path, execution_id="t"
        )
        return type(select_backend(ctx)).__name__

    assert pick(root) == "ApkBackend"  # <root>/lib/apk/db exists
    debian = tmp_path / "debian"
    (debian / "var/lib/dpkg").mkdir(parents=True)
    assert pick(debian) == AptBackend.__name__
