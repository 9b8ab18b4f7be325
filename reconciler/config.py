"""Configuration: /etc/aios/reconciler.yaml, then the environment, then flags.

Each layer overrides the one before. Keys (YAML, camelCase): `registry`
(tool registry address), `agentId`, `stateDir`. Environment: AIOS_TOOLS_ADDR
(registry), AIOS_AGENT_ID, AIOS_STATE_DIR, AIOS_CONFIG (another config file).
Used by the CLI when it resolves a target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from reconciler.sdk.errors import PermanentError

DEFAULT_CONFIG = Path("/etc/aios/reconciler.yaml")
DEFAULT_REGISTRY = "localhost:50052"
DEFAULT_STATE_DIR = Path("/var/lib/aios/reconciler")
DEFAULT_AGENT = "aios-reconciler"


@dataclass(frozen=True)
class Settings:
    registry: str = DEFAULT_REGISTRY
    agent_id: str = DEFAULT_AGENT
    state_dir: Path = DEFAULT_STATE_DIR


def load_settings(
    *, registry: str | None = None, agent_id: str | None = None, state_dir: str | None = None
) -> Settings:
    """Defaults < config file < environment < the given flags."""
    settings = Settings()
    path = Path(os.environ.get("AIOS_CONFIG", str(DEFAULT_CONFIG)))
    if path.exists():
        settings = _from_file(path, settings)
    env = os.environ
    settings = replace(
        settings,
        registry=env.get("AIOS_TOOLS_ADDR") or settings.registry,
        agent_id=env.get("AIOS_AGENT_ID") or settings.agent_id,
        state_dir=Path(env["AIOS_STATE_DIR"]) if env.get("AIOS_STATE_DIR") else settings.state_dir,
    )
    return replace(
        settings,
        registry=registry or settings.registry,
        agent_id=agent_id or settings.agent_id,
        state_dir=Path(state_dir) if state_dir else settings.state_dir,
    )


def _from_file(path: Path, settings: Settings) -> Settings:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise PermanentError(f"{path}: cannot read configuration: {exc}") from None
    if data is None:
        return settings
    if not isinstance(data, dict):
        raise PermanentError(f"{path}: configuration must be a mapping")
    unknown = set(data) - {"registry", "agentId", "stateDir"}
    if unknown:
        raise PermanentError(f"{path}: unknown keys: {', '.join(sorted(unknown))}")
    for key in ("registry", "agentId", "stateDir"):
        if key in data and not isinstance(data[key], str):
            raise PermanentError(f"{path}: {key} must be a string")
    return replace(
        settings,
        registry=data.get("registry", settings.registry),
        agent_id=data.get("agentId", settings.agent_id),
        state_dir=Path(data["stateDir"]) if "stateDir" in data else settings.state_dir,
    )
