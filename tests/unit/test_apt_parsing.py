"""apt/dpkg backend, pure parts: APT_CONFIG rendering and parsers of recorded output.

The outputs in tests/fixtures/apt/ were recorded from apt 2.6 / dpkg 1.21 on a
scratch root holding the aios-demo packages (see sandbox/debrepo.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from registry.drivers.pkg import aptparse
from registry.drivers.pkg.backend import Repository, dependency_names

FIXTURES = Path(__file__).parent.parent / "fixtures" / "apt"


def recorded(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_apt_config_points_everything_at_the_root() -> None:
    text = aptparse.render_apt_config(
        Path("/srv/root"), Path("/state/apt/conf.d"), dpkg=Path("/state/apt/x.dpkg")
    )
    assert 'Dir "/srv/root/";' in text
    # the jail wrapper (registry.drivers.pkg.jail)
    assert 'Dir::Bin::dpkg "/state/apt/x.dpkg";' in text
    assert 'Dir::State::status "/srv/root/var/lib/dpkg/status";' in text
    assert 'Dir::Etc::Parts "/state/apt/conf.d";' in text  # neither host's nor root's apt.conf.d
    for option in (
        "--root=/srv/root",
        "--admindir=/srv/root/var/lib/dpkg",
        "--force-script-chrootless",
        "--log=/srv/root/var/log/dpkg.log",
    ):
        assert f'"{option}";' in text
    with pytest.raises(ValueError):
        aptparse.render_apt_config(Path('/bad"root'), Path("/x"), dpkg=Path("/x/d"))


def test_dpkg_query_keeps_config_files_entries_with_their_status() -> None:
    rows = {
        p.name: p
        for p in aptparse.parse_dpkg_query(
            recorded("dpkg-query.txt"), aptparse.parse_extended_states(recorded("extended_states"))
        )
    }
    assert rows["aios-demo-extra"].hold and rows["aios-demo-extra"].present
    assert rows["aios-demo-base"].auto
    assert rows["aios-demo-tools"].depends == ("aios-demo-base",)
    assert rows["ghost"].status == "config-files" and not rows["ghost"].present


def test_dependency_names() -> None:
    assert dependency_names("a (>= 1), b | c:any, d [amd64], a") == ("a", "b", "c", "d")
    assert dependency_names("") == ()


def test_madison_policy_search_simulation() -> None:
    assert aptparse.parse_madison(recorded("madison.txt")) == {
        "aios-demo-base": ["2.0-1", "1.1-1", "1.0-1"],
        "aios-demo-tools": ["1.2-1", "1.0-1"],
    }
    assert aptparse.newest_first(["1.0-1", "1.0~rc1-1", "1:0.1-1", "1.10-1"]) == [
        "1:0.1-1",
        "1.10-1",
        "1.0-1",
        "1.0~rc1-1",
    ]
    assert aptparse.parse_policy_candidates(recorded("policy.txt")) == {
        "aios-demo-agent": "1.0-1",
        "aios-demo-base": "2.0-1",
    }
    search = aptparse.parse_search(recorded("search.txt"))
    assert ("aios-demo-broken", "postinst exits 1 (failure tests)") in search
    assert aptparse.parse_simulation(recorded("simulate.txt")) == {
        "install": {"aios-demo-agent", "aios-demo-base"},
        "remove": {"aios-demo-extra"},
    }
    assert aptparse.count_upgrades(recorded("upgrade-dry.txt")) == 1


def test_failure_summary_names_the_package_and_dpkgs_message() -> None:
    output = recorded("broken.stderr")
    summary = aptparse.failure_summary(output)
    assert summary.startswith(
        "aios-demo-broken (--configure): installed aios-demo-broken package "
        "post-installation script subprocess returned error exit status 1"
    )
    assert "Sub-process /usr/bin/dpkg returned an error code (1)" in summary
    assert aptparse.failed_packages(output) == ["aios-demo-broken"]
    assert aptparse.failure_summary("W: x\nsomething odd\n") == "W: x; something odd"


def test_sources_round_trip() -> None:
    flat = Repository(name="demo", url="http://127.0.0.1:18080/apt", trusted=True)
    text = aptparse.render_sources(flat)
    assert text.endswith("deb [trusted=yes] http://127.0.0.1:18080/apt ./\n")
    assert aptparse.parse_sources("demo", text) == flat
    dist = Repository(
        name="deb",
        url="https://deb.debian.org/debian",
        suite="bookworm",
        components=("main", "contrib"),
        signed_by="/usr/share/keyrings/debian-archive-keyring.gpg",
    )
    assert aptparse.parse_sources("deb", aptparse.render_sources(dist)) == dist
    assert aptparse.parse_sources("x", "# nothing\n") is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("url", "http://a/x ./\ndeb [trusted=yes] file:/host"),
        ("url", "http://a/#"),
        ("suite", "stable]"),
        ("components", "main\ndeb [trusted=yes] file:/host ./"),
        ("components", "main contrib"),
        ("signed_by", "/k.gpg trusted=yes"),
        ("signed_by", "/k.gpg]"),
    ],
)
def test_render_sources_refuses_what_is_not_one_apt_word(field: str, value: str) -> None:
    """The last check before a sources line is written (the schemas refuse these first)."""
    fields: dict[str, object] = {"url": "http://a/", "suite": "stable", "components": ("main",)}
    fields[field] = (value,) if field == "components" else value
    repo = Repository(name="x", **fields)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=f"repository 'x': {field} .* is not one apt word"):
        aptparse.render_sources(repo)


def under(root: str) -> Callable[[str], str]:
    return lambda path: root + path


def test_sources_are_mapped_under_the_root_for_apt() -> None:
    text = (
        "# a comment\n"
        "deb [trusted=yes signed-by=/etc/apt/keyrings/k.gpg,/usr/share/k2.gpg] "
        "file:/srv/repo ./ # trailing comment\n"
        "deb http://deb.example/debian bookworm main contrib\n"
        "deb-src file:///srv/src/ ./\n"
        "deb copy:/srv/copy ./\n"
        "deb [signed-by=0123456789ABCDEF] https://x.example/apt stable main\n"
    )
    assert aptparse.map_sources_list(text, under("/R")) == (
        "deb [trusted=yes signed-by=/R/etc/apt/keyrings/k.gpg,/R/usr/share/k2.gpg] "
        "file:/R/srv/repo ./\n"
        "deb http://deb.example/debian bookworm main contrib\n"
        "deb-src file:/R/srv/src/ ./\n"
        "deb copy:/R/srv/copy ./\n"
        "deb [signed-by=0123456789ABCDEF] https://x.example/apt stable main\n"
    )
    deb822 = (
        "Types: deb\nURIs: file:/srv/repo https://x.example/apt\nSuites: ./\n"
        "Signed-By: /etc/apt/keyrings/k.gpg\n\n"
        "Types: deb\nURIs: http://a.example/\nSuites: stable\nComponents: main\n"
        "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n"
        " -----END PGP PUBLIC KEY BLOCK-----\n"
    )
    mapped = aptparse.map_deb822_sources(deb822, under("/R"))
    assert "URIs: file:/R/srv/repo https://x.example/apt\n" in mapped
    assert "Signed-By: /R/etc/apt/keyrings/k.gpg\n" in mapped
    assert " -----BEGIN PGP PUBLIC KEY BLOCK-----\n" in mapped  # an embedded key is kept


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("deb cdrom:/media/cdrom ./", "URI 'cdrom:/media/cdrom': only "),
        ("deb mirror+file:/etc/mirrors ./", "URI 'mirror+file:/etc/mirrors': only "),
        ("deb s3://bucket/x ./", "URI 's3://bucket/x': only "),
        ("deb file://otherhost/srv ./", "URI 'file://otherhost/srv': a file: URI names no"),
        ("deb file:srv ./", "URI 'file:srv': a file: URI needs an absolute path"),
        ("deb file:/srv/repo ../../../host/", "'../../../host/': a suite or component"),
        ("deb file:/srv/repo stable ../../x", "'../../x': a suite or component"),
        ("deb [trusted=yes file:/srv/repo ./", "'[' without ']'"),
        ("deb file:/srv/repo", "not a 'deb URI SUITE [COMPONENT...]' line"),
        ("rpm file:/srv/repo ./", "not a 'deb URI SUITE [COMPONENT...]' line"),
    ],
)
def test_sources_that_cannot_be_mapped_are_refused(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^line 2: {re.escape(message)}"):
        aptparse.map_sources_list("deb http://ok.example/ ./\n" + line + "\n", under("/R"))


def test_a_root_path_that_is_not_an_apt_word_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be an apt word"):
        aptparse.map_sources_list("deb file:/srv/repo ./\n", under("/my root"))
    with pytest.raises(ValueError, match=r"^stanza 1: URI 'cdrom:/x'"):
        aptparse.map_deb822_sources("Types: deb\nURIs: cdrom:/x\nSuites: ./\n", under("/R"))
