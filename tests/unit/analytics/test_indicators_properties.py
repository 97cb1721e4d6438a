"""Batch == streaming, bit for bit, for every indicator, over random walks with gaps, flat runs, spikes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.domain import indicators as ind
from services.analytics.domain.indicators.state import StateFormatError, dump_state, load_state
from tests.unit.analytics.support import walk


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def _columns(rows: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2]


series = st.builds(walk, st.integers(0, 10_000), st.integers(0, 160))


def _assert_batch_equals_streaming(rows: list[tuple[float, float, float]]) -> list[ind.Values]:
    """``compute_all`` over the rows equals ``IndicatorSet.update`` bar by bar; returns the streamed rows."""
    high, low, close = _columns(rows)
    state = ind.IndicatorSet()
    streamed = [state.update(h, lo, c) for h, lo, c in rows]
    batch = ind.compute_all(high, low, close)
    for name in ind.INDICATOR_NAMES:
        assert _nan_to_none(batch[name]) == [row[name] for row in streamed], name
    assert ind.rows_of(batch) == streamed
    return streamed


@settings(max_examples=60, deadline=None)
@given(series)
def test_every_indicator_batch_equals_streaming_bit_for_bit(rows: list[tuple[float, float, float]]) -> None:
    _assert_batch_equals_streaming(rows)


@pytest.mark.parametrize("seed", [3, 11])
def test_batch_equals_streaming_over_a_long_history(seed: int) -> None:
    """Running sums must not drift apart over years of minute bars: the property test's walks are short."""
    streamed = _assert_batch_equals_streaming(walk(seed, 20_000))
    for name in ind.INDICATOR_NAMES:
        assert streamed[-1][name] is not None, name  # warmed up, so the tail really compares numbers


@settings(max_examples=40, deadline=None)
@given(series, st.integers(2, 30))
def test_single_indicators_agree_for_any_period(rows: list[tuple[float, float, float]], n: int) -> None:
    high, low, close = _columns(rows)
    pairs: list[tuple[np.ndarray, Any, str]] = [
        (ind.sma(close, n), ind.Sma(n), "c"),
        (ind.ema(close, n), ind.Ema(n), "c"),
        (ind.rsi(close, n), ind.Rsi(n), "c"),
        (ind.atr(high, low, close, n), ind.Atr(n), "hlc"),
        (ind.ehma(close, n + 2), ind.Ehma(n + 2), "c"),
    ]
    for batch, state, kind in pairs:
        live = [state.update(c) if kind == "c" else state.update(h, lo, c) for h, lo, c in rows]
        assert _nan_to_none(batch) == live, type(state).__name__
    adx_batch = ind.adx(high, low, close, n)
    adx_state = ind.Adx(n)
    live_adx = [adx_state.update(h, lo, c) for h, lo, c in rows]
    assert _nan_to_none(adx_batch[0]) == [v[0] if v else None for v in live_adx]
    bb_state = ind.Bollinger(n, 1.5)
    live_bb = [bb_state.update(c) for c in close.tolist()]
    assert _nan_to_none(ind.bollinger(close, n, 1.5)[0]) == [v[0] if v else None for v in live_bb]
    fast = max(2, n // 3)
    macd_state = ind.Macd(fast, n + 1, 3)
    live_macd = [macd_state.update(c) for c in close.tolist()]
    assert _nan_to_none(ind.macd(close, fast, n + 1, 3)[2]) == [v[2] if v else None for v in live_macd]


@settings(max_examples=40, deadline=None)
@given(series)
def test_rsi_stays_within_0_and_100_and_warms_up_after_n_bars(rows: list[tuple[float, float, float]]) -> None:
    values = ind.rsi(_columns(rows)[2], 14)
    assert np.isnan(values[:14]).all()
    warm = values[14:]
    assert ((warm >= 0) & (warm <= 100)).all()


@settings(max_examples=40, deadline=None)
@given(series, st.integers(0, 160))
def test_a_checkpointed_state_continues_bit_for_bit(rows: list[tuple[float, float, float]], cut: int) -> None:
    whole, part = ind.IndicatorSet(), ind.IndicatorSet()
    expected = [whole.update(*row) for row in rows]
    head = [part.update(*row) for row in rows[:cut]]
    restored = load_state(dump_state(part))
    assert head + [restored.update(*row) for row in rows[cut:]] == expected


def test_a_checkpoint_of_another_version_is_refused() -> None:
    text = dump_state(ind.IndicatorSet()).replace('"version":1', '"version":0')
    with pytest.raises(StateFormatError, match="version"):
        load_state(text)
