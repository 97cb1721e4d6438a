"""Load ``ExecutionConfig`` from YAML: ``$BASTION_EXECUTION_CONFIG``, else ``deploy/execution.yaml`` if
present, else the safe defaults (paper mode, conservative limits)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from services.execution.domain.config import ExecutionConfig
from shared.validation import readable

ENV_VAR = "BASTION_EXECUTION_CONFIG"
DEFAULT_PATH = Path("deploy/execution.yaml")


class ConfigError(ValueError):
    """The config file is missing (when named explicitly), unreadable or invalid."""


def config_path() -> Path | None:
    named = os.environ.get(ENV_VAR, "").strip()
    if named:
        return Path(named)
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load_config(path: Path | None = None) -> ExecutionConfig:
    path = path or config_path()
    if path is None:
        return ExecutionConfig()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read execution config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"execution config {path} must be a mapping")
    try:
        return ExecutionConfig.model_validate(data.get("execution", data))
    except ValidationError as exc:
        raise ConfigError(f"invalid execution config {path}: {readable(exc, whole='')}") from None


def check_startable(config: ExecutionConfig, broker_adapter: object | None) -> None:
    """``live`` needs both an explicit opt-in and a broker adapter; no adapter exists yet."""
    if config.mode != "live":
        return
    if not config.live_opt_in:
        raise ConfigError("mode live needs live_opt_in: true in the execution config")
    if broker_adapter is None:
        raise ConfigError("mode live needs a broker adapter; none is configured (use paper or dry_run)")
