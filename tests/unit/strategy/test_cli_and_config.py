from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.strategy.cli import app
from services.strategy.config import instances_for, load_config, parse_config
from services.strategy.domain.registry import StrategyConfigError

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def test_list_shows_every_strategy_with_param_defaults() -> None:
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("sma_cross", "ehma_pivot", "confluence_consumer", "regime_adaptive"):
        assert name in result.output
    assert "fast: int = 10" in result.output
    assert "min_confidence: float = 0.6" in result.output


def test_the_shipped_config_is_valid() -> None:
    instances = load_config(ROOT / "deploy" / "strategies.yaml")
    assert len(instances) == 4
    assert len({i.strategy.instance_id for i in instances}) == 4
    result = runner.invoke(app, ["check", str(ROOT / "deploy" / "strategies.yaml")])
    assert result.exit_code == 0
    assert "ok: 4 instance(s)" in result.output


def test_check_reports_a_bad_param_without_a_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("instances:\n  - {name: sma_cross, id: a, params: {fast: -1}}\n")
    result = runner.invoke(app, ["check", str(cfg)])
    assert result.exit_code == 2
    assert "fast" in result.output
    assert "Traceback" not in result.output


def test_check_reports_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"instances": [{"name": "sma_cross", "id": "a"}, {"name": "ehma_pivot", "id": "a"}]}, "duplicate"),
        ({"instances": [{"name": "sma_cross", "id": "a", "symbols": ["RELIANCE.NS"]}]}, "RELIANCE.NS"),
        ({"instances": [{"name": "nope", "id": "a"}]}, "unknown strategy 'nope'"),
        ({"instances": []}, "instances"),
        (None, "expected a mapping with an 'instances:' list .*, got nothing"),
        ("timestamp,open,high", "expected a mapping with an 'instances:' list .*, got plain text"),
        ([{"name": "sma_cross", "id": "a"}], "expected a mapping with an 'instances:' list .*, got a list"),
        (42, "expected a mapping with an 'instances:' list .*, got a number"),
    ],
)
def test_bad_configs_are_rejected_with_the_reason(data: object, message: str) -> None:
    with pytest.raises(StrategyConfigError, match=message):
        parse_config(data)


def test_instances_run_on_their_symbols_or_all() -> None:
    instances = parse_config(
        {
            "instances": [
                {"name": "sma_cross", "id": "all"},
                {"name": "sma_cross", "id": "tcs", "symbols": ["tcs"]},
            ]
        }
    )
    assert [i.strategy.instance_id for i in instances_for(instances, "TCS")] == ["all", "tcs"]
    assert [i.strategy.instance_id for i in instances_for(instances, "INFY")] == ["all"]
