"""apt/dpkg backend, pure parts: APT_CONFIG rendering and parsers of recorded output.

The outputs in tests/fixtures/apt/ were recorded from apt 2.6 / dpkg 1.21 on a
scratch root holding the aios-demo packages (see registry/debrepo.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import aptparse
from registry.pkgbackend import Repository, dependency_names

FIXTURES = Path(__file__).parent.parent / "fixtures" / "apt"


def recorded(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_apt_config_points_everything_at_the_root() -> None:
    text = aptparse.render_apt_config(Path("/srv/root"), Path("/state/apt/conf.d"))
    assert 'Dir "/srv/root/";' in text
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
        aptparse.render_apt_config(Path('/bad"root'), Path("/x"))


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
