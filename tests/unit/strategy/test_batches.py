"""A strategy decides the same whatever the batches it is given: one bar at a time (a live worker), the whole
history at once (``bastion backtest``) or any split between (a worker after a backlog). And ``sma_cross``,
written over arrays, decides exactly as its rule read bar by bar."""

from __future__ import annotations

import itertools
import json
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.strategy.domain import BaseStrategy, SignalDecision, StrategyContext, StrategyState
from services.strategy.domain.base import BarBatch, StrategyParams, window_sums
from services.strategy.domain.registry import create_strategy
from shared.contracts.analytics import Bias, InsightEvent
from shared.contracts.signals import Target
from tests.unit.strategy.helpers import bar, insight

PRICES = st.integers(5_000, 15_000).map(lambda k: k / 100)  # on a tick: sums that round


def loop_sum(window: list[float]) -> float:
    total = window[0]
    for value in window[1:]:
        total += value
    return total


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(10**8), 10**8).map(lambda k: k / 100), min_size=1, max_size=80),
    st.integers(1, 40),
    st.integers(0, 80),
)
def test_window_sums_are_the_left_to_right_sums_of_each_window(
    values: list[float], size: int, lead: int
) -> None:
    first = size - 1 + lead
    got = window_sums(np.asarray(values), size, first)
    want = [loop_sum(values[j - size + 1 : j + 1]) for j in range(first, len(values))]
    assert got.tolist() == want  # exact floats, whichever of the two loop orders ran


def reference_sma_cross(
    params: dict[str, Any], closes: list[float], ctx: StrategyContext
) -> tuple[SignalDecision | None, StrategyState]:
    """The rule as its docstring states it, bar by bar (the implementation before it took batches)."""
    fast_n, slow_n, short = params["fast"], params["slow"], params.get("allow_short", False)
    window = [*ctx.state.get("closes", ()), closes[-1]][-slow_n:]
    prev_above = ctx.state.get("above")
    if len(window) < slow_n:
        return None, {"closes": window, "above": None}
    fast, slow = loop_sum(window[-fast_n:]) / fast_n, loop_sum(window) / slow_n
    above = fast > slow
    state = {"closes": window, "above": above}
    if prev_above is None or above == prev_above:
        return None, state
    target: Target = "long" if above else ("short" if short else "flat")
    if target == ctx.target:
        return None, state
    word = "above" if above else "below"
    reason = f"fast SMA{fast_n} {fast:.4f} crossed {word} slow SMA{slow_n} {slow:.4f}"
    strength = round(min(max(min(abs(fast - slow) / slow * 10, 1.0), 0.0), 1.0), 6)
    return SignalDecision(target, strength, reason), state


def in_batches(
    strategy: BaseStrategy[Any],
    closes: list[float],
    cuts: list[int],
    with_insights: bool = False,
) -> tuple[list[tuple[int, SignalDecision]], StrategyState]:
    """Run ``closes`` through ``on_bars`` split at ``cuts``, the state through JSON between batches as a
    worker stores it; the decisions by index in the whole run, and the final state."""
    events = [bar(i, c) for i, c in enumerate(closes)]
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(events)}), len(events)]
    target: Target = "flat"
    state: StrategyState = {}
    out: list[tuple[int, SignalDecision]] = []
    for lo, hi in itertools.pairwise(bounds):
        batch = events[lo:hi]
        insights: list[InsightEvent] | None = None
        if with_insights:
            biases: tuple[Bias, ...] = ("bullish", "bearish", "neutral")
            insights = [insight(b, bias=biases[int(b.close) % 3], regime="trending_up") for b in batch]
        ctx = StrategyContext("INFY", strategy.instance_id, target, state)
        decisions, state = strategy.on_bars(BarBatch.of(batch), insights, ctx)
        state = json.loads(json.dumps(state))
        for index, decision in decisions:
            out.append((lo + index, decision))
            target = decision.target
    return out, state


SMA_PARAMS = st.tuples(st.integers(1, 8), st.integers(1, 12), st.booleans()).map(
    lambda t: {"fast": t[0], "slow": t[0] + t[1], "allow_short": t[2]}
)


@settings(max_examples=150, deadline=None)
@given(SMA_PARAMS, st.lists(PRICES, min_size=1, max_size=90), st.lists(st.integers(0, 90), max_size=8))
def test_sma_cross_over_batches_is_its_rule_bar_by_bar(
    params: dict[str, Any], closes: list[float], cuts: list[int]
) -> None:
    strategy = create_strategy("sma_cross", "s1", params)
    target: Target = "flat"
    state: StrategyState = {}
    want: list[tuple[int, SignalDecision]] = []
    for i in range(len(closes)):
        ctx = StrategyContext("INFY", "s1", target, state)
        decision, state = reference_sma_cross(params, closes[: i + 1], ctx)
        if decision is not None:
            want.append((i, decision))
            target = decision.target
    whole = in_batches(strategy, closes, [])
    assert whole == (want, json.loads(json.dumps(state)))
    assert in_batches(strategy, closes, cuts) == whole
    assert in_batches(strategy, closes, list(range(len(closes)))) == whole  # one bar at a time


CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("sma_cross", {"fast": 2, "slow": 5, "allow_short": True}),
    ("ehma_pivot", {"period": 6, "pivot": 1, "allow_short": True}),
    ("confluence_consumer", {"allow_short": True}),
    ("regime_adaptive", {"allow_short": True}),
]


@pytest.mark.parametrize(("name", "params"), CONFIGS, ids=[c[0] for c in CONFIGS])
@settings(max_examples=40, deadline=None)
@given(closes=st.lists(PRICES, min_size=1, max_size=60), cuts=st.lists(st.integers(0, 60), max_size=6))
def test_every_strategy_decides_the_same_whatever_the_batches(
    name: str, params: dict[str, Any], closes: list[float], cuts: list[int]
) -> None:
    strategy = create_strategy(name, f"{name}-1", params)
    whole = in_batches(strategy, closes, [], strategy.requires_insights)
    assert in_batches(strategy, closes, cuts, strategy.requires_insights) == whole


def test_on_bar_is_on_bars_with_one_bar() -> None:
    strategy = create_strategy("sma_cross", "s1", {"fast": 1, "slow": 2})
    ctx = StrategyContext("INFY", "s1", "flat", {"closes": [100.0, 99.0], "above": False})
    decision, state = strategy.on_bar(bar(2, 101.0), None, ctx)
    assert decision is not None
    assert decision.target == "long"
    assert state == {"closes": [99.0, 101.0], "above": True}


def test_a_strategy_must_implement_on_bar_or_on_bars() -> None:
    class Params(StrategyParams):
        pass

    with pytest.raises(TypeError, match="must implement on_bar or on_bars"):

        class Neither(BaseStrategy[Params]):
            name: ClassVar[str] = "neither"
            params_model = Params
