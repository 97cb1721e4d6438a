from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import pytest

from services.strategy.domain import BaseStrategy, StrategyContext, StrategyParams, StrategyResult, registry
from services.strategy.domain.registry import StrategyConfigError, create_strategy, describe_params
from services.strategy.domain.strategies.sma_cross import SmaCrossParams
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from tests.support.plugins import install_plugins


class AlwaysLong(BaseStrategy[StrategyParams]):
    name: ClassVar[str] = "always_long"
    params_model = StrategyParams

    def on_bar(self, bar: OHLCVBar, insight: InsightEvent | None, ctx: StrategyContext) -> StrategyResult:
        return self.change_to(ctx, "long", 1.0, "always"), {}


def test_builtins_are_registered_with_defaults() -> None:
    assert {"sma_cross", "ehma_pivot", "confluence_consumer", "regime_adaptive"} <= set(registry.available())
    s = create_strategy("sma_cross", "sma-1", None)
    assert s.instance_id == "sma-1"
    assert s.params == SmaCrossParams(fast=10, slow=30, allow_short=False)


@pytest.mark.parametrize(
    ("name", "params", "named"),
    [
        ("sma_cross", {"fast": 0}, "fast"),
        ("sma_cross", {"slow": "soon"}, "slow"),
        ("sma_cross", {"fast": 30, "slow": 10}, "fast (30) must be smaller than slow (10)"),
        ("sma_cross", {"speed": 3}, "speed"),
        ("confluence_consumer", {"min_confidence": 1.5}, "min_confidence"),
        ("confluence_consumer", {"min_confidence": 0.3, "exit_confidence": 0.5}, "exit_confidence"),
        ("regime_adaptive", {"oversold": 60}, "oversold"),
        ("ehma_pivot", {"pivot": 0}, "pivot"),
    ],
)
def test_bad_params_give_an_error_naming_the_param(name: str, params: dict[str, Any], named: str) -> None:
    with pytest.raises(StrategyConfigError, match=f"bad params for strategy '{name}'") as info:
        create_strategy(name, "i", params)
    assert named in str(info.value)


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(StrategyConfigError, match=r"unknown strategy 'nope'; known: .*sma_cross"):
        create_strategy("nope", "i", {})


def test_instance_id_must_be_given() -> None:
    with pytest.raises(StrategyConfigError, match="instance id"):
        create_strategy("sma_cross", "", {})


def test_third_party_strategies_load_from_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugins(tmp_path, monkeypatch, ("always_long", f"{__name__}:AlwaysLong"))
    s = create_strategy("always_long", "al-1", {})
    assert isinstance(s, AlwaysLong)
    assert "always_long" in registry.available()


def test_a_plugin_cannot_replace_a_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugins(tmp_path, monkeypatch, ("sma_cross", f"{__name__}:AlwaysLong"))
    assert "sma_cross" in {ep.name for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert registry.available()["sma_cross"].__name__ == "SmaCross"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("builtins:object", "not a BaseStrategy subclass"),
        ("bastion_no_such_plugin_module:Strategy", "failed to load: No module named"),
    ],
)
def test_a_broken_plugin_is_reported_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, message: str
) -> None:
    install_plugins(tmp_path, monkeypatch, ("bad", target))
    with pytest.raises(StrategyConfigError, match=f"strategy plugin 'bad'.*{message}"):
        registry.available()


def test_params_are_described_with_defaults() -> None:
    params = {p.name: p for p in describe_params(registry.strategy_class("sma_cross"))}
    assert (params["fast"].default, params["slow"].default, params["allow_short"].default) == (10, 30, False)
    assert params["fast"].type == "int"
    assert params["fast"].description
