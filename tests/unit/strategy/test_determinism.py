from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.strategy.domain.registry import create_strategy
from services.strategy.domain.signals import build_signal
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from tests.unit.strategy.helpers import bar, insight, run

BIASES = st.sampled_from(["bullish", "bearish", "neutral"])
REGIMES = st.sampled_from(["trending_up", "trending_down", "ranging", "volatile"])
STEP = st.tuples(
    st.floats(min_value=50, max_value=150, allow_nan=False),
    BIASES,
    st.floats(min_value=0, max_value=1),
    REGIMES,
    st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
)
CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("sma_cross", {"fast": 2, "slow": 5, "allow_short": True}),
    ("ehma_pivot", {"period": 6, "pivot": 1, "allow_short": True}),
    ("confluence_consumer", {"allow_short": True}),
    ("regime_adaptive", {"allow_short": True}),
]


def _feed(steps: list[tuple[Any, ...]]) -> list[tuple[OHLCVBar, InsightEvent]]:
    out = []
    for i, (close, bias, conf, regime, rsi) in enumerate(steps):
        b = bar(i, close)
        out.append((b, insight(b, bias=bias, confidence=conf, regime=regime, rsi=rsi)))
    return out


def _signal_bytes(
    name: str, params: dict[str, Any], feed: list[tuple[OHLCVBar, InsightEvent]]
) -> list[bytes]:
    s = create_strategy(name, f"{name}-1", params)
    return [build_signal(s, feed[i][0], feed[i][1], d).to_json() for i, d in run(s, feed)]


@settings(max_examples=40, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=60))
def test_same_bars_and_insights_give_byte_identical_signals(steps: list[tuple[Any, ...]]) -> None:
    feed = _feed(steps)
    for name, params in CONFIGS:
        assert _signal_bytes(name, params, feed) == _signal_bytes(name, params, feed)


@settings(max_examples=40, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=60))
def test_state_survives_a_json_round_trip_without_changing_decisions(steps: list[tuple[Any, ...]]) -> None:
    feed = _feed(steps)
    for name, params in CONFIGS:
        s = create_strategy(name, "rt", params)
        assert run(s, feed, roundtrip_state=True) == run(s, feed, roundtrip_state=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(STEP, min_size=2, max_size=60))
def test_signals_alternate_targets_and_keep_strength_in_range(steps: list[tuple[Any, ...]]) -> None:
    feed = _feed(steps)
    for name, params in CONFIGS:
        out = run(create_strategy(name, "alt", params), feed)
        targets = ["flat"] + [d.target for _, d in out]
        assert all(a != b for a, b in itertools.pairwise(targets))
        assert all(0 <= d.strength <= 1 for _, d in out)


def test_the_signal_carries_its_causes() -> None:
    b = bar(0, 100.0)
    ins = insight(b, bias="bullish", confidence=0.9)
    s = create_strategy("confluence_consumer", "cc-1", {})
    ((_, decision),) = run(s, [(b, ins)])
    sig = build_signal(s, b, ins, decision)
    assert (sig.bar_event_id, sig.insight_event_id, sig.causation_id) == (
        b.event_id,
        ins.event_id,
        ins.event_id,
    )
    assert (sig.strategy, sig.strategy_id, sig.target, sig.producer) == (
        "confluence_consumer",
        "cc-1",
        "long",
        "strategy",
    )
    assert sig.correlation_id == b.correlation_id
    assert sig.occurred_at == b.timestamp
    no_insight = build_signal(s, b, None, decision)
    assert no_insight.causation_id == b.event_id
    assert no_insight.event_id == sig.event_id
