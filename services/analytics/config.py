"""Analytics configuration: the confluence rules' weights and thresholds.

``BASTION_ANALYTICS_CONFIG`` names an optional YAML file whose keys are ``ConfluenceConfig`` fields, e.g.::

    weights: {trend: 1.0, rsi_14: 1.0, macd: 1.0, bollinger: 0.5, adx_14: 1.0, atr_14: 0.0}
    bias_threshold: 0.25
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from services.analytics.domain.confluence import ConfluenceConfig

CONFIG_ENV = "BASTION_ANALYTICS_CONFIG"


class AnalyticsConfigError(ValueError):
    """A config file that cannot be read or does not validate."""


def load_config(path: Path | None = None) -> ConfluenceConfig:
    """The config from ``path`` (or ``$BASTION_ANALYTICS_CONFIG``); defaults when neither is given."""
    if path is None:
        env = os.environ.get(CONFIG_ENV, "").strip()
        if not env:
            return ConfluenceConfig()
        path = Path(env)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AnalyticsConfigError(f"cannot read analytics config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise AnalyticsConfigError(f"analytics config {path} must be a mapping")
    try:
        return ConfluenceConfig.model_validate(data)
    except ValidationError as exc:
        raise AnalyticsConfigError(f"invalid analytics config {path}: {exc}") from None
