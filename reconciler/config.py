"""Configuration: /etc/aios/reconciler.yaml, then the environment, then flags.

Each layer overrides the one before (defaults < file < environment < flags).

Keys of the file (YAML, camelCase; any other key is an error):

- `registry`: the tool registry's address (env AIOS_TOOLS_ADDR).
- `agentId` (env AIOS_AGENT_ID), `stateDir` (env AIOS_STATE_DIR).
- `specsDir`: one directory or a list of them that `aios daemon` watches
  (default /etc/aios/specs; env AIOS_SPECS_DIR, colon-separated; flag --specs).
- `api`: the daemon's API socket, `unix:///ABSOLUTE/PATH` only (default
  unix:///run/aios/reconciler.sock; env AIOS_DAEMON_API; flag --api).
- `apiGroup`: a group allowed on that socket (mode 0660 then; else 0600).
- `metrics`: HOST:PORT of the Prometheus endpoint (port 0: any free one, which
  the daemon logs), empty for none (the default; env AIOS_METRICS, where an
  empty value switches metrics off; flag --metrics).
- `drift`: a mapping — `pollInterval` (the per-domain fingerprint poll against a
  registry without a change feed, default 60s), `resyncInterval` (the safety
  resync even with a feed, 3600s), `fightingHeals` and `fightingWindow` (that
  many heals of one object within that window is Fighting, 3 and 60s) and
  `debounce` (spec file events settle this long, 50ms).

Durations are "100ms", "1.5s", "5m", "1h" or a plain number of seconds.
AIOS_CONFIG names another file; a missing file is no error. Every bad value is a
PermanentError naming where it came from, the key and (in the file) the line:
`/etc/aios/reconciler.yaml:7: drift.pollInterval: …`, `AIOS_METRICS: …`,
`--api: …`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from reconciler.sdk.errors import PermanentError

DEFAULT_CONFIG = Path("/etc/aios/reconciler.yaml")
DEFAULT_REGISTRY = "localhost:50052"
DEFAULT_STATE_DIR = Path("/var/lib/aios/reconciler")
DEFAULT_AGENT = "aios-reconciler"
DEFAULT_SPECS_DIR = Path("/etc/aios/specs")
DEFAULT_API = "unix:///run/aios/reconciler.sock"

_UNIX = "unix://"
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes with the terminating NUL
_GROUP = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")
_DURATION = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

_DAY = 86400.0
# Bounds of each drift setting, in seconds (fightingHeals: a count).
_BOUNDS: dict[str, tuple[float, float]] = {
    "pollInterval": (0.1, _DAY),
    "resyncInterval": (1.0, 7 * _DAY),
    "fightingWindow": (1.0, _DAY),
    "debounce": (0.0, 10.0),
    "fightingHeals": (2, 1000),
}


@dataclass(frozen=True)
class DriftSettings:
    """How the daemon watches for drift; every duration in seconds."""

    poll_interval: float = 60.0
    resync_interval: float = 3600.0
    fighting_heals: int = 3
    fighting_window: float = 60.0
    debounce: float = 0.05

    @property
    def debounce_ms(self) -> int:
        return round(self.debounce * 1000)


@dataclass(frozen=True)
class Settings:
    registry: str = DEFAULT_REGISTRY
    agent_id: str = DEFAULT_AGENT
    state_dir: Path = DEFAULT_STATE_DIR
    specs_dirs: tuple[Path, ...] = (DEFAULT_SPECS_DIR,)
    api: str = DEFAULT_API  # always unix:///ABSOLUTE/PATH
    api_group: str | None = None
    metrics: str = ""  # HOST:PORT, or "" for no metrics endpoint
    drift: DriftSettings = field(default_factory=DriftSettings)
    config_file: Path | None = None  # the file that was read, if one existed

    @property
    def api_path(self) -> Path:
        """The API socket's path (`api` without its unix:// scheme)."""
        return Path(self.api[len(_UNIX) :])

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """(host, port) of the metrics endpoint, None when it is off."""
        return _split_host_port(self.metrics, "metrics") if self.metrics else None


def load_settings(
    *,
    registry: str | None = None,
    agent_id: str | None = None,
    state_dir: str | Path | None = None,
    specs_dirs: Sequence[str | Path] | None = None,
    api: str | None = None,
    metrics: str | None = None,
) -> Settings:
    """Defaults < config file < environment < the given flags.

    A flag left None is not given; `metrics=""` switches metrics off, and an
    empty `specs_dirs` is not given either (the command line's repeatable --specs).
    """
    settings = Settings()
    path = Path(os.environ.get("AIOS_CONFIG", str(DEFAULT_CONFIG)))
    if path.exists():
        settings = _from_file(path, settings)
    settings = _from_env(os.environ, settings)
    return _from_flags(
        settings,
        registry=registry,
        agent_id=agent_id,
        state_dir=state_dir,
        specs_dirs=specs_dirs,
        api=api,
        metrics=metrics,
    )


def parse_duration(value: object) -> float:
    """Seconds from "100ms", "1.5s", "5m", "1h" or a plain number (int, float or its text).

    Raises ValueError for anything else: negatives, NaN, infinities, booleans, other units.
    """
    expected = "expected a duration such as 100ms, 60s, 5m or 1h"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{expected}, got {_kind(value)}")
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{expected}, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be a finite number ≥ 0, got {_show(value)}")
    return seconds


# -- the layers -------------------------------------------------------------------------


def _from_env(env: Mapping[str, str], settings: Settings) -> Settings:
    changes: dict[str, Any] = {}
    if env.get("AIOS_TOOLS_ADDR"):
        changes["registry"] = env["AIOS_TOOLS_ADDR"]
    if env.get("AIOS_AGENT_ID"):
        changes["agent_id"] = env["AIOS_AGENT_ID"]
    if env.get("AIOS_STATE_DIR"):
        changes["state_dir"] = Path(env["AIOS_STATE_DIR"])
    if env.get("AIOS_SPECS_DIR"):
        changes["specs_dirs"] = _err(
            "AIOS_SPECS_DIR", lambda: _dirs(env["AIOS_SPECS_DIR"].split(":"))
        )
    if env.get("AIOS_DAEMON_API"):
        changes["api"] = _err("AIOS_DAEMON_API", lambda: _api(env["AIOS_DAEMON_API"]))
    if "AIOS_METRICS" in env:  # set but empty: metrics off
        changes["metrics"] = _err("AIOS_METRICS", lambda: _metrics(env["AIOS_METRICS"]))
    return replace(settings, **changes)


def _from_flags(
    settings: Settings,
    *,
    registry: str | None,
    agent_id: str | None,
    state_dir: str | Path | None,
    specs_dirs: Sequence[str | Path] | None,
    api: str | None,
    metrics: str | None,
) -> Settings:
    changes: dict[str, Any] = {}
    if registry:
        changes["registry"] = registry
    if agent_id:
        changes["agent_id"] = agent_id
    if state_dir:
        changes["state_dir"] = Path(state_dir)
    if specs_dirs:
        changes["specs_dirs"] = _err("--specs", lambda: _dirs([str(d) for d in specs_dirs]))
    if api:
        changes["api"] = _err("--api", lambda: _api(api))
    if metrics is not None:
        changes["metrics"] = _err("--metrics", lambda: _metrics(metrics))
    return replace(settings, **changes)


_TOP_KEYS = ("registry", "agentId", "stateDir", "specsDir", "api", "apiGroup", "metrics", "drift")
_DRIFT_KEYS = ("pollInterval", "resyncInterval", "fightingHeals", "fightingWindow", "debounce")


def _from_file(path: Path, settings: Settings) -> Settings:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PermanentError(f"{path}: cannot read configuration: {exc}") from None
    try:
        data = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise PermanentError(f"{path}{line}: cannot parse configuration: {problem}") from None
    except YAMLError as exc:
        raise PermanentError(f"{path}: cannot parse configuration: {exc}") from None
    settings = replace(settings, config_file=path)
    if data is None:
        return settings
    if not isinstance(data, Mapping):
        raise PermanentError(f"{path}:1: the configuration must be a mapping of keys")
    file = _File(path, data)
    for key in data:
        if key not in _TOP_KEYS:
            file.fail(key, f"unknown key (known: {', '.join(_TOP_KEYS)})", name=str(key))
    changes: dict[str, Any] = {}
    for key, attr in (("registry", "registry"), ("agentId", "agent_id")):
        if key in data:
            changes[attr] = file.check(key, _string)
    if "stateDir" in data:
        changes["state_dir"] = Path(file.check("stateDir", _string))
    if "specsDir" in data:
        changes["specs_dirs"] = _file_dirs(file, data["specsDir"])
    if "api" in data:
        changes["api"] = file.check("api", lambda v: _api(_string(v)))
    if "apiGroup" in data:
        changes["api_group"] = file.check("apiGroup", _group)
    if "metrics" in data:
        changes["metrics"] = file.check(
            "metrics", lambda v: _metrics("" if v is None else _string(v, empty=True))
        )
    if "drift" in data:
        changes["drift"] = _file_drift(file, data["drift"], settings.drift)
    return replace(settings, **changes)


class _File:
    """Checks values of one mapping of the file, failing with `path:line: key: why`."""

    def __init__(self, path: Path, data: Any, prefix: str = "") -> None:
        self.path = path
        self.data = data
        self.prefix = prefix

    def line(self, key: object = None, index: int | None = None) -> int | None:
        lc = getattr(self.data, "lc", None)
        try:
            if index is not None and lc is not None:
                return int(lc.item(index)[0]) + 1
            if key is not None and lc is not None:
                return int(lc.key(key)[0]) + 1
            if lc is not None:
                return int(lc.line) + 1
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        return None

    def fail(
        self, key: object, why: str, *, name: str | None = None, index: int | None = None
    ) -> NoReturn:
        line = self.line(key, index)
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        raise PermanentError(f"{where}: {self.prefix}{name or key}: {why}")

    def check(self, key: str, parse: Any) -> Any:
        try:
            return parse(self.data[key])
        except ValueError as exc:
            self.fail(key, str(exc))


def _file_dirs(file: _File, value: Any) -> tuple[Path, ...]:
    if isinstance(value, str):
        dirs: tuple[Path, ...] = file.check("specsDir", lambda v: _dirs([v]))
        return dirs
    if not isinstance(value, Sequence) or not value:
        file.fail("specsDir", "expected a directory or a non-empty list of directories")
    items = _File(file.path, value, "specsDir")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item:
            items.fail(None, "expected a non-empty string", name=f"[{index}]", index=index)
    try:
        return _dirs(list(value))
    except ValueError as exc:
        file.fail("specsDir", str(exc))


def _file_drift(file: _File, value: Any, drift: DriftSettings) -> DriftSettings:
    if value is None:
        return drift
    if not isinstance(value, Mapping):
        file.fail("drift", f"expected a mapping of {', '.join(_DRIFT_KEYS)}")
    sub = _File(file.path, value, "drift.")
    for key in value:
        if key not in _DRIFT_KEYS:
            sub.fail(key, f"unknown key (known: {', '.join(_DRIFT_KEYS)})", name=str(key))
    changes: dict[str, Any] = {}
    for key, attr in (
        ("pollInterval", "poll_interval"),
        ("resyncInterval", "resync_interval"),
        ("fightingWindow", "fighting_window"),
        ("debounce", "debounce"),
    ):
        if key in value:
            changes[attr] = sub.check(key, lambda v, k=key: _bounded_duration(k, v))
    if "fightingHeals" in value:
        changes["fighting_heals"] = sub.check("fightingHeals", _heals)
    return replace(drift, **changes)


# -- values -----------------------------------------------------------------------------


def _err(where: str, parse: Any) -> Any:
    try:
        return parse()
    except ValueError as exc:
        raise PermanentError(f"{where}: {exc}") from None


def _string(value: object, *, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_kind(value)}")
    if not empty and not value:
        raise ValueError("must not be empty")
    return str(value)


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, Sequence):
        return "a list"
    return type(value).__name__


def _dirs(values: Sequence[str]) -> tuple[Path, ...]:
    if not values:
        raise ValueError("no directory given")
    seen: list[Path] = []
    for value in values:
        if not value:
            raise ValueError(f"an empty directory name in {':'.join(values)!r}")
        if "\0" in value:
            raise ValueError(f"a directory name holds a NUL byte: {value!r}")
        path = Path(os.path.normpath(value))
        if path in seen:
            raise ValueError(f"{value} is listed twice")
        seen.append(path)
    return tuple(seen)


def _api(value: str) -> str:
    if not value.startswith(_UNIX):
        raise ValueError(f"must be unix:///ABSOLUTE/PATH (a unix socket), got {value!r}")
    path = value[len(_UNIX) :]
    if not path.startswith("/"):
        raise ValueError(f"the socket path must be absolute (unix:///PATH), got {value!r}")
    if path.endswith("/") or "\0" in path:
        raise ValueError(f"not a socket file path: {value!r}")
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise ValueError(f"the socket path is longer than {_SUN_PATH_MAX} bytes: {path}")
    return _UNIX + os.path.normpath(path)


def _group(value: object) -> str | None:
    if value is None:
        return None
    name = _string(value)
    if not (_GROUP.fullmatch(name) or name.isdigit()):
        raise ValueError(f"not a group name: {name!r}")
    return name


def _metrics(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    host, port = _split_host_port(value, "metrics")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split_host_port(value: str, what: str) -> tuple[str, int]:
    example = f"expected HOST:PORT (e.g. 127.0.0.1:9464) or empty for no {what}, got {value!r}"
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(example)
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ValueError(example)
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 host goes in brackets ([::1]:9464), got {value!r}")
    if any(c.isspace() for c in host):
        raise ValueError(example)
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"the port must be 0-65535 (0: any free port), got {port}")
    return host, port


def drift_duration(key: str, value: object) -> float:
    """A duration for the drift block's `key` (camelCase, e.g. "pollInterval") in
    seconds, bounds checked: for flags that override the file. Raises ValueError."""
    if key not in _BOUNDS or key == "fightingHeals":
        raise ValueError(f"not a drift duration: {key}")
    return _bounded_duration(key, value)


def _bounded_duration(key: str, value: object) -> float:
    seconds = parse_duration(value)
    low, high = _BOUNDS[key]
    if not low <= seconds <= high:
        raise ValueError(f"{_show(value)} is out of range: {_human(low)} to {_human(high)}")
    return seconds


def _heals(value: object) -> int:
    low, high = _BOUNDS["fightingHeals"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number of heals, got {_kind(value)}")
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range: {int(low)} to {int(high)}")
    return int(value)


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _human(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 0.001)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds}s"
