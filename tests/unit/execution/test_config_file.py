"""The one config file: documented defaults, env override, clear errors, live refuses to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.execution.adapters.config_file import ConfigError, check_startable, load_config
from services.execution.domain.config import ExecutionConfig

ROOT = Path(__file__).resolve().parents[3]


def test_the_documented_file_holds_exactly_the_safe_defaults() -> None:
    config = load_config(ROOT / "deploy" / "execution.yaml")
    assert config == ExecutionConfig()
    assert config.mode == "paper"


def test_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("execution:\n  mode: dry_run\n  sizing: {policy: fixed_notional, notional: 5000}\n")
    monkeypatch.setenv("BASTION_EXECUTION_CONFIG", str(path))
    config = load_config()
    assert (config.mode, config.sizing.policy) == ("dry_run", "fixed_notional")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("execution:\n  mode: yolo\n", "mode"),
        ("execution:\n  limitz: {}\n", "limitz"),
        ("- a\n", "mapping"),
        (
            "execution:\n  costs: {slippage_bps: 10000}\n",
            "costs.slippage_bps: Input should be less than 10000",
        ),
    ],
)
def test_a_bad_file_is_a_clear_error(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_config(path)


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_live_refuses_without_opt_in_and_without_an_adapter() -> None:
    with pytest.raises(ConfigError, match="live_opt_in"):
        check_startable(ExecutionConfig(mode="live"), broker_adapter=object())
    with pytest.raises(ConfigError, match="broker adapter"):
        check_startable(ExecutionConfig(mode="live", live_opt_in=True), broker_adapter=None)
    check_startable(ExecutionConfig(mode="paper"), broker_adapter=None)
