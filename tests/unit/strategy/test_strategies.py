from __future__ import annotations

import pytest

from services.strategy.domain import SignalDecision, StrategyContext
from services.strategy.domain.registry import create_strategy
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from tests.unit.strategy.helpers import bar, bars, insight, run, targets

SMA_CLOSES = [10, 10, 10, 10, 12, 14, 14, 10, 8, 8, 12, 14]


def test_sma_cross_goes_long_on_cross_up_and_flat_on_cross_down() -> None:
    s = create_strategy("sma_cross", "sma-a", {"fast": 2, "slow": 4})
    out = run(s, [(b, None) for b in bars(SMA_CLOSES)])
    assert targets(out) == [(4, "long"), (7, "flat"), (10, "long")]
    assert "crossed above" in out[0][1].reason
    assert 0 < out[0][1].strength <= 1


def test_sma_cross_goes_short_on_cross_down_when_allowed() -> None:
    s = create_strategy("sma_cross", "sma-b", {"fast": 2, "slow": 4, "allow_short": True})
    assert targets(run(s, [(b, None) for b in bars(SMA_CLOSES)])) == [(4, "long"), (7, "short"), (10, "long")]


def test_sma_cross_stays_silent_without_a_cross_or_before_warm_up() -> None:
    s = create_strategy("sma_cross", "sma-c", {"fast": 2, "slow": 4})
    assert run(s, [(b, None) for b in bars([1, 2, 3, 4, 5, 6, 7])]) == []
    assert run(s, [(b, None) for b in bars([10, 12, 8])]) == []


def test_sma_cross_does_not_repeat_a_target_it_already_holds() -> None:
    s = create_strategy("sma_cross", "sma-d", {"fast": 2, "slow": 4})
    closes = SMA_CLOSES[:8]
    b = bars(closes)
    state: dict[str, object] = {}
    for x in b[:-1]:
        _, state = s.on_bar(x, None, StrategyContext("INFY", "sma-d", target="flat", state=state))
    decision, _ = s.on_bar(b[-1], None, StrategyContext("INFY", "sma-d", target="flat", state=state))
    assert decision is None  # the cross down to flat while already flat says nothing


def _v_then_peak() -> list[float]:
    down = [100.0 - i for i in range(20)]  # 100 .. 81
    up = [80.0 + i for i in range(31)]  # 80 .. 110, trough at index 20
    fall = [109.0 - i for i in range(25)]  # peak at index 50
    return down + up + fall


def test_ehma_pivot_goes_long_after_the_trough_pivot_and_exits_after_the_peak() -> None:
    s = create_strategy("ehma_pivot", "eh-a", {"period": 8, "pivot": 2})
    out = targets(run(s, [(b, None) for b in bars(_v_then_peak())]))
    assert [t for _, t in out] == ["long", "flat"]
    (long_at, _), (flat_at, _) = out
    assert 22 <= long_at < 35  # pivot low at 20 is confirmed at 22
    assert 52 <= flat_at < 65  # pivot high at 50 is confirmed at 52


def test_ehma_pivot_needs_a_pivot_to_confirm() -> None:
    s = create_strategy("ehma_pivot", "eh-b", {"period": 8, "pivot": 2})
    rising = [100 + i for i in range(40)]  # above a rising EHMA, but no pivot low ever forms
    assert run(s, [(b, None) for b in bars(rising)]) == []


def test_ehma_pivot_reverses_to_short_when_allowed() -> None:
    s = create_strategy("ehma_pivot", "eh-c", {"period": 8, "pivot": 2, "allow_short": True})
    assert [t for _, t in targets(run(s, [(b, None) for b in bars(_v_then_peak())]))] == ["long", "short"]


CONFLUENCE_FEED = [
    ("neutral", 0.9),  # 0: neutral: nothing
    ("bullish", 0.5),  # 1: below min_confidence: nothing
    ("bullish", 0.7),  # 2: enter long
    ("bullish", 0.45),  # 3: decayed but still >= exit_confidence: hold
    ("bullish", 0.3),  # 4: decayed below exit_confidence: flat
    ("bearish", 0.8),  # 5: no shorts: nothing
    ("bullish", 0.9),  # 6: long
    ("bearish", 0.5),  # 7: flip: flat
]


def _confluence_feed() -> list[tuple[OHLCVBar, InsightEvent | None]]:
    out: list[tuple[OHLCVBar, InsightEvent | None]] = []
    for i, (bias, conf) in enumerate(CONFLUENCE_FEED):
        b = bar(i, 100.0)
        out.append((b, insight(b, bias=bias, confidence=conf)))  # type: ignore[arg-type]
    return out


def test_confluence_consumer_enters_on_confident_bias_and_exits_on_decay_or_flip() -> None:
    s = create_strategy("confluence_consumer", "cc-a", {"min_confidence": 0.6, "exit_confidence": 0.4})
    out = run(s, _confluence_feed())
    assert targets(out) == [(2, "long"), (4, "flat"), (6, "long"), (7, "flat")]
    assert out[0][1].strength == pytest.approx(0.7)
    assert "decayed" in out[1][1].reason
    assert "flipped" in out[3][1].reason


def test_confluence_consumer_reverses_on_confident_flip_when_shorts_allowed() -> None:
    s = create_strategy("confluence_consumer", "cc-b", {"allow_short": True})
    out = run(s, _confluence_feed())
    assert targets(out) == [(2, "long"), (4, "flat"), (5, "short"), (6, "long"), (7, "flat")]


REGIME_FEED = [
    ("ranging", 50.0),  # 0: nothing
    ("ranging", 25.0),  # 1: oversold: long
    ("ranging", 40.0),  # 2: hold
    ("ranging", 55.0),  # 3: back above exit level: flat
    ("ranging", 75.0),  # 4: overbought: short if allowed
    ("volatile", 50.0),  # 5: flat
    ("trending_up", 80.0),  # 6: long, whatever the RSI
    ("volatile", 50.0),  # 7: flat
    ("trending_down", 20.0),  # 8: short if allowed
    ("ranging", None),  # 9: RSI warming up: hold
]


def _regime_feed() -> list[tuple[OHLCVBar, InsightEvent | None]]:
    out: list[tuple[OHLCVBar, InsightEvent | None]] = []
    for i, (regime, rsi) in enumerate(REGIME_FEED):
        b = bar(i, 100.0)
        out.append((b, insight(b, regime=regime, rsi=rsi, confidence=0.6)))  # type: ignore[arg-type]
    return out


def test_regime_adaptive_trades_trend_range_and_stands_aside_when_volatile() -> None:
    s = create_strategy("regime_adaptive", "ra-a", {})
    out = run(s, _regime_feed())
    assert targets(out) == [(1, "long"), (3, "flat"), (6, "long"), (7, "flat")]
    assert out[0][1].reason.startswith("ranging: RSI 25.0")


def test_regime_adaptive_shorts_overbought_ranges_and_down_trends_when_allowed() -> None:
    s = create_strategy("regime_adaptive", "ra-b", {"allow_short": True})
    out = run(s, _regime_feed())
    assert targets(out) == [
        (1, "long"),
        (3, "flat"),
        (4, "short"),
        (5, "flat"),
        (6, "long"),
        (7, "flat"),
        (8, "short"),
    ]


@pytest.mark.parametrize("name", ["confluence_consumer", "regime_adaptive"])
def test_insight_strategies_say_they_need_insights_and_ignore_a_missing_one(name: str) -> None:
    s = create_strategy(name, "x", {})
    assert s.requires_insights
    decision, _ = s.on_bar(bar(0, 100.0), None, StrategyContext("INFY", "x"))
    assert decision is None


@pytest.mark.parametrize("name", ["sma_cross", "ehma_pivot"])
def test_price_strategies_do_not_need_insights(name: str) -> None:
    assert not create_strategy(name, "x", {}).requires_insights


def test_context_state_is_read_only() -> None:
    ctx = StrategyContext("INFY", "x", state={"a": 1})
    with pytest.raises(TypeError):
        ctx.state["a"] = 2  # type: ignore[index]


def test_a_decision_strength_outside_zero_to_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="strength"):
        SignalDecision(target="long", strength=1.5, reason="x")
