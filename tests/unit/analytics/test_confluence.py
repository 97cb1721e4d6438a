"""The confluence engine: votes, bias, confidence, regime, no execution fields, determinism."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.analytics.domain.confluence import ConfluenceConfig, evaluate
from services.analytics.domain.indicators import INDICATOR_NAMES, IndicatorSet, compute_all, rows_of
from services.analytics.domain.insight import BarRow, build_insight
from shared.contracts.analytics import ConfluenceInsight, InsightComponent
from tests.unit.analytics.support import bars

T = datetime(2024, 1, 2, tzinfo=UTC)
CFG = ConfluenceConfig()
BULL = {
    "sma_20": 100.0,
    "ema_20": 102.0,
    "rsi_14": 62.0,
    "macd": 1.5,
    "macd_signal": 1.0,
    "macd_hist": 0.5,
    "atr_14": 1.0,
    "bb_upper": 106.0,
    "bb_middle": 100.0,
    "bb_lower": 94.0,
    "adx_14": 30.0,
    "plus_di_14": 28.0,
    "minus_di_14": 12.0,
}
EXECUTION_WORDS = ("quantity", "qty", "price", "target", "order", "side", "stop", "size", "limit")


def test_insight_models_carry_no_execution_field() -> None:
    fields = set(ConfluenceInsight.model_fields) | set(InsightComponent.model_fields)
    assert not [f for f in fields if any(word in f for word in EXECUTION_WORDS)]


def test_aligned_bullish_indicators_give_a_confident_bullish_trending_insight() -> None:
    ins = evaluate("INFY", "1m", T, 104.0, BULL, CFG)
    assert ins.bias == "bullish"
    assert ins.regime == "trending_up"
    # trend +1, rsi +0.6, macd +1, bollinger 0 (x0.5), adx +1, atr 0 (x0) -> 3.6 / 4.5 = 0.8
    assert ins.score == pytest.approx(0.8)
    assert ins.confidence == pytest.approx(0.8)
    assert {c.indicator for c in ins.components} == {
        "trend",
        "rsi_14",
        "macd",
        "bollinger",
        "adx_14",
        "atr_14",
    }


def test_mirrored_indicators_give_a_bearish_trending_down_insight() -> None:
    bear = dict(BULL, ema_20=98.0, sma_20=100.0, rsi_14=38.0, macd=-1.5, macd_hist=-0.5)
    bear.update(plus_di_14=12.0, minus_di_14=28.0)
    ins = evaluate("INFY", "1m", T, 96.0, bear, CFG)
    assert (ins.bias, ins.regime, ins.score) == ("bearish", "trending_down", pytest.approx(-0.8))


def test_warming_up_bar_is_neutral_ranging_with_zero_confidence() -> None:
    ins = evaluate("INFY", "1m", T, 100.0, dict.fromkeys(INDICATOR_NAMES), CFG)
    assert (ins.bias, ins.regime, ins.confidence) == ("neutral", "ranging", 0.0)
    assert all(c.reason == "warming up" and c.value is None for c in ins.components)


def test_wide_atr_makes_the_regime_volatile_and_weights_are_configurable() -> None:
    assert evaluate("INFY", "1m", T, 104.0, dict(BULL, atr_14=6.0), CFG).regime == "volatile"
    only_rsi = ConfluenceConfig(weights={"rsi_14": 1.0})
    assert evaluate("INFY", "1m", T, 104.0, BULL, only_rsi).score == pytest.approx(0.6)


def test_overbought_rsi_votes_bearish() -> None:
    ins = evaluate("INFY", "1m", T, 104.0, dict(BULL, rsi_14=80.0), ConfluenceConfig(weights={"rsi_14": 1}))
    assert ins.score == pytest.approx(-0.5)
    assert "overbought" in ins.components[1].reason


def test_live_and_batch_insights_are_byte_identical() -> None:
    series = [BarRow.of(b) for b in bars("INFY", 150, seed=7)]
    state = IndicatorSet()
    live = [build_insight(b, state.update(b.high, b.low, b.close), CFG).to_json() for b in series]
    batch_values = rows_of(
        compute_all([b.high for b in series], [b.low for b in series], [b.close for b in series])
    )
    batch = [build_insight(b, v, CFG).to_json() for b, v in zip(series, batch_values, strict=True)]
    assert live == batch
    again = [build_insight(b, v, CFG).to_json() for b, v in zip(series, batch_values, strict=True)]
    assert again == batch


def test_insight_event_ids_follow_the_bar_and_causation_is_the_bar() -> None:
    bar = BarRow.of(bars("INFY", 1)[0])
    event = build_insight(bar, {}, CFG)
    assert event.causation_id == bar.event_id == event.bar_event_id
    assert event.event_id == build_insight(bar, {}, CFG).event_id
    assert event.occurred_at == bar.timestamp
    assert event.subject() == "analytics.v1.insight.INFY"
