"""reconciler.config: defaults < /etc/aios/reconciler.yaml < environment < flags.

Every bad value names its source (file:line, the environment variable, the flag)
and the key; unknown keys are errors.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from reconciler.config import (
    DEFAULT_API,
    DEFAULT_SPECS_DIR,
    DriftSettings,
    Settings,
    drift_duration,
    load_settings,
    parse_duration,
)
from reconciler.sdk.errors import PermanentError

ENV = (
    "AIOS_TOOLS_ADDR",
    "AIOS_AGENT_ID",
    "AIOS_STATE_DIR",
    "AIOS_SPECS_DIR",
    "AIOS_DAEMON_API",
    "AIOS_METRICS",
)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file path (not yet written) that load_settings reads; a clean environment."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "reconciler.yaml"
    monkeypatch.setenv("AIOS_CONFIG", str(path))
    return path


def fails(match: str) -> AbstractContextManager[pytest.ExceptionInfo[PermanentError]]:
    return pytest.raises(PermanentError, match=match)


# -- defaults and layering ----------------------------------------------------------------


def test_defaults_without_a_file(config: Path) -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.specs_dirs == (DEFAULT_SPECS_DIR,) == (Path("/etc/aios/specs"),)
    assert settings.api == DEFAULT_API == "unix:///run/aios/reconciler.sock"
    assert settings.api_path == Path("/run/aios/reconciler.sock")
    assert settings.api_group is None
    assert settings.metrics == "" and settings.metrics_address is None
    assert settings.drift == DriftSettings(
        poll_interval=60.0,
        resync_interval=3600.0,
        fighting_heals=3,
        fighting_window=60.0,
        debounce=0.05,
    )
    assert settings.drift.debounce_ms == 50
    assert settings.config_file is None


def test_an_empty_file_is_the_defaults(config: Path) -> None:
    config.write_text("# nothing yet\n")
    assert load_settings() == Settings(config_file=config)


def test_the_file_sets_every_key(config: Path) -> None:
    config.write_text(
        "registry: 10.0.0.1:50052\n"
        "agentId: agent-7\n"
        "stateDir: /srv/state\n"
        "specsDir: [/srv/specs, /srv/more/]\n"
        "api: unix:///srv/run/aios.sock\n"
        "apiGroup: aios\n"
        "metrics: 127.0.0.1:9464\n"
        "drift:\n"
        "  pollInterval: 5m\n"
        "  resyncInterval: 1h\n"
        "  fightingHeals: 5\n"
        "  fightingWindow: 90\n"
        "  debounce: 100ms\n"
    )
    settings = load_settings()
    assert settings == Settings(
        registry="10.0.0.1:50052",
        agent_id="agent-7",
        state_dir=Path("/srv/state"),
        specs_dirs=(Path("/srv/specs"), Path("/srv/more")),
        api="unix:///srv/run/aios.sock",
        api_group="aios",
        metrics="127.0.0.1:9464",
        drift=DriftSettings(300.0, 3600.0, 5, 90.0, 0.1),
        config_file=config,
    )
    assert settings.metrics_address == ("127.0.0.1", 9464)
    assert settings.drift.debounce_ms == 100


def test_a_partial_drift_mapping_keeps_the_other_defaults(config: Path) -> None:
    config.write_text("drift:\n  pollInterval: 1h\n")
    assert load_settings().drift == DriftSettings(poll_interval=3600.0)
    config.write_text("drift:\n")
    assert load_settings().drift == DriftSettings()


def test_specs_dir_may_be_one_string(config: Path) -> None:
    config.write_text("specsDir: /srv/specs\n")
    assert load_settings().specs_dirs == (Path("/srv/specs"),)


def test_environment_overrides_the_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text(
        "registry: file:1\nspecsDir: /file\napi: unix:///file.sock\nmetrics: 127.0.0.1:1\n"
    )
    monkeypatch.setenv("AIOS_TOOLS_ADDR", "env:2")
    monkeypatch.setenv("AIOS_SPECS_DIR", "/env/a:/env/b")
    monkeypatch.setenv("AIOS_DAEMON_API", "unix:///env.sock")
    monkeypatch.setenv("AIOS_METRICS", "[::1]:9100")
    settings = load_settings()
    assert settings.registry == "env:2"
    assert settings.specs_dirs == (Path("/env/a"), Path("/env/b"))
    assert settings.api == "unix:///env.sock"
    assert settings.metrics == "[::1]:9100"
    assert settings.metrics_address == ("::1", 9100)


def test_an_empty_aios_metrics_switches_metrics_off(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text("metrics: 127.0.0.1:9464\n")
    monkeypatch.setenv("AIOS_METRICS", "")
    assert load_settings().metrics == ""


def test_flags_override_the_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text("specsDir: /file\nmetrics: 127.0.0.1:1\n")
    monkeypatch.setenv("AIOS_SPECS_DIR", "/env")
    monkeypatch.setenv("AIOS_DAEMON_API", "unix:///env.sock")
    monkeypatch.setenv("AIOS_METRICS", "127.0.0.1:2")
    monkeypatch.setenv("AIOS_STATE_DIR", "/env/state")
    settings = load_settings(
        specs_dirs=["/flag/a", Path("/flag/b")],
        api="unix:///flag.sock",
        metrics="0.0.0.0:3",
        state_dir="/flag/state",
        registry="flag:4",
    )
    assert settings.specs_dirs == (Path("/flag/a"), Path("/flag/b"))
    assert settings.api == "unix:///flag.sock"
    assert settings.metrics == "0.0.0.0:3"
    assert settings.state_dir == Path("/flag/state")
    assert settings.registry == "flag:4"
    assert load_settings(metrics="").metrics == ""  # the flag switches it off
    assert load_settings(metrics="127.0.0.1:0").metrics_address == ("127.0.0.1", 0)
    # Flags not given leave the layers below alone (an empty --specs list too).
    assert load_settings(specs_dirs=[], api=None, metrics=None).specs_dirs == (Path("/env"),)


def test_the_existing_callers_keywords_still_work(config: Path) -> None:
    settings = load_settings(registry="r:1", state_dir=None)
    assert settings.registry == "r:1"
    assert settings.state_dir == Settings().state_dir


# -- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("100ms", 0.1),
        ("60s", 60.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1.5s", 1.5),
        ("0", 0.0),
        ("42", 42.0),
        (" 2m ", 120.0),
        (7, 7.0),
        (0.25, 0.25),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad",
    ["", "s", "5d", "-1s", "1e3", "1 h 2", "5 minutes", "nan", True, None, [], -3, float("inf")],
)
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


# -- bad values in the file, each with file:line and the key ------------------------------


@pytest.mark.parametrize(
    ("yaml", "line", "key", "why"),
    [
        ("registry: 5\n", 1, "registry", "expected a string"),
        ("agentId: ''\n", 1, "agentId", "must not be empty"),
        ("stateDir: [a]\n", 1, "stateDir", "expected a string, got a list"),
        ("specsDir: []\n", 1, "specsDir", "non-empty list"),
        ("specsDir: {a: 1}\n", 1, "specsDir", "expected a directory"),
        ("specsDir:\n  - /a\n  - 3\n", 3, r"specsDir\[1\]", "non-empty string"),
        ("specsDir: [/a, /a/]\n", 1, "specsDir", "listed twice"),
        ("api: /run/x.sock\n", 1, "api", "unix:///ABSOLUTE/PATH"),
        ("api: tcp://1.2.3.4:5\n", 1, "api", "unix:///ABSOLUTE/PATH"),
        ("api: unix://relative.sock\n", 1, "api", "must be absolute"),
        ("api: unix:///run/\n", 1, "api", "not a socket file path"),
        (f"api: unix:///{'x' * 120}\n", 1, "api", "longer than 107 bytes"),
        ("apiGroup: 'no spaces'\n", 1, "apiGroup", "not a group name"),
        ("apiGroup: 12\n", 1, "apiGroup", "expected a string"),
        ("metrics: 9464\n", 1, "metrics", "expected a string"),
        ("metrics: ':9464'\n", 1, "metrics", "HOST:PORT"),
        ("metrics: localhost\n", 1, "metrics", "HOST:PORT"),
        ("metrics: localhost:99999\n", 1, "metrics", "0-65535"),
        ("metrics: '::1:9464'\n", 1, "metrics", "brackets"),
        ("drift: 5\n", 1, "drift", "expected a mapping"),
        (
            "# one\n\ndrift:\n  debounce: 10ms\n  pollInterval: 5x\n",
            5,
            r"drift\.pollInterval",
            "expected a duration",
        ),
        ("drift:\n  pollInterval: 50ms\n", 2, r"drift\.pollInterval", "out of range: 100ms to 24h"),
        ("drift:\n  pollInterval: 25h\n", 2, r"drift\.pollInterval", "out of range"),
        ("drift:\n  resyncInterval: 8d\n", 2, r"drift\.resyncInterval", "expected a duration"),
        ("drift:\n  resyncInterval: 200h\n", 2, r"drift\.resyncInterval", "out of range"),
        ("drift:\n  fightingWindow: 0\n", 2, r"drift\.fightingWindow", "out of range"),
        ("drift:\n  debounce: 11s\n", 2, r"drift\.debounce", "out of range: 0s to 10s"),
        ("drift:\n  debounce: -1\n", 2, r"drift\.debounce", "finite number"),
        ("drift:\n  debounce: true\n", 2, r"drift\.debounce", "a boolean"),
        ("drift:\n  fightingHeals: 1\n", 2, r"drift\.fightingHeals", "out of range: 2 to 1000"),
        ("drift:\n  fightingHeals: 2.5\n", 2, r"drift\.fightingHeals", "whole number"),
        ("drift:\n  fightingHeals: '3'\n", 2, r"drift\.fightingHeals", "whole number"),
        ("registry: x\nspecsDirs: /a\n", 2, "specsDirs", "unknown key"),
        ("drift:\n  poll: 5s\n", 2, r"drift\.poll", "unknown key"),
    ],
)
def test_bad_values_name_file_line_and_key(
    config: Path, yaml: str, line: int, key: str, why: str
) -> None:
    config.write_text(yaml)
    with fails(rf"^{re.escape(str(config))}:{line}: {key}: .*{why}"):
        load_settings()


def test_not_a_mapping(config: Path) -> None:
    config.write_text("- a\n- b\n")
    with fails(rf"^{re.escape(str(config))}:1: the configuration must be a mapping"):
        load_settings()


def test_yaml_syntax_errors_and_duplicate_keys_have_lines(config: Path) -> None:
    config.write_text("registry: a\napi: [unclosed\n")
    with fails(rf"^{re.escape(str(config))}:\d+: cannot parse configuration"):
        load_settings()
    config.write_text("registry: a\nmetrics: ''\nregistry: b\n")
    with fails(rf"^{re.escape(str(config))}:3: cannot parse configuration: .*duplicate"):
        load_settings()


def test_unreadable_file(config: Path) -> None:
    config.write_bytes(b"registry: \xff\xfe\n")
    with fails(rf"^{re.escape(str(config))}: cannot read configuration"):
        load_settings()


# -- bad values from the environment and flags ----------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("AIOS_SPECS_DIR", "/a::/b", "empty directory name"),
        ("AIOS_SPECS_DIR", "/a:/a", "listed twice"),
        ("AIOS_DAEMON_API", "localhost:1", "unix:///ABSOLUTE/PATH"),
        ("AIOS_METRICS", "nohost", "HOST:PORT"),
    ],
)
def test_bad_environment_names_the_variable(
    config: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, why: str
) -> None:
    monkeypatch.setenv(name, value)
    with fails(rf"^{name}: .*{why}"):
        load_settings()


def test_bad_flags_name_the_flag(config: Path) -> None:
    with fails(r"^--api: .*unix:///ABSOLUTE/PATH"):
        load_settings(api="grpc://x")
    with fails(r"^--metrics: .*HOST:PORT"):
        load_settings(metrics="9464")
    with fails(r"^--specs: .*listed twice"):
        load_settings(specs_dirs=["/x", "/x/"])


def test_a_bad_file_is_reported_even_when_flags_would_override_it(config: Path) -> None:
    config.write_text("api: nonsense\n")
    with fails(r":1: api:"):
        load_settings(api="unix:///fine.sock")


def test_drift_duration_checks_bounds_for_flags() -> None:
    assert drift_duration("pollInterval", "1h") == 3600.0
    assert drift_duration("debounce", "0") == 0.0
    with pytest.raises(ValueError, match="out of range: 100ms to 24h"):
        drift_duration("pollInterval", "10ms")
    with pytest.raises(ValueError, match="expected a duration"):
        drift_duration("resyncInterval", "soon")
    with pytest.raises(ValueError, match="not a drift duration"):
        drift_duration("fightingHeals", "3")
