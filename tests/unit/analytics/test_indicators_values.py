"""Each indicator pinned to values worked out by hand (arithmetic in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.analytics.domain import indicators as ind

NAN = math.nan

# Wilder-style RSI worked example (the StockCharts "RSI" spreadsheet closes).
CLOSES = [44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61, 46.28,
          46.28, 46.00, 46.03, 46.41, 46.22, 45.64, 46.21, 46.25, 45.71, 46.45, 45.78, 45.35, 44.03, 44.18,
          44.22, 44.57, 43.42, 42.66, 43.13]  # fmt: skip
# The spreadsheet rounds its averages to 2-4 digits, so its printed RSI differ from exact ones by < 0.1.
PUBLISHED = [70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38, 54.71, 50.42, 39.99,
             41.46, 41.87, 45.46, 37.30, 33.08, 37.77]  # fmt: skip


def _assert_close(actual: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(actual, np.array(expected), rtol=0, atol=1e-9, equal_nan=True)


def test_rsi_matches_wilders_worked_example() -> None:
    values = ind.rsi(CLOSES, 14)
    assert np.isnan(values[:14]).all()
    # First 14 changes: gains 0.06+0.72+0.50+0.27+0.32+0.42+0.24+0.14+0.67 = 3.34, losses
    # 0.25+0.54+0.19+0.42 = 1.40 -> averages 3.34/14, 0.1 -> RSI = 100 * 0.238571 / 0.338571 = 70.4641.
    assert values[14] == pytest.approx(100 * (3.34 / 14) / (3.34 / 14 + 0.1), abs=1e-9)
    assert values[14] == pytest.approx(70.4641, abs=1e-4)
    # Next close 46.00 (change -0.28): gain avg (3.34/14 * 13 + 0) / 14, loss avg (0.1 * 13 + 0.28) / 14.
    gain, loss = 3.34 / 14 * 13 / 14, (0.1 * 13 + 0.28) / 14
    assert values[15] == pytest.approx(100 * gain / (gain + loss), abs=1e-9)
    np.testing.assert_allclose(values[14:], PUBLISHED, atol=0.1)


def test_rsi_of_a_flat_run_is_50_not_0() -> None:
    assert ind.rsi([10.0] * 20, 14)[-1] == 50.0


def test_sma_and_ema_seed_and_recurrence() -> None:
    _assert_close(ind.sma([1, 2, 3, 4, 5], 3), [NAN, NAN, 2, 3, 4])
    # EMA(3), k = 0.5: seed = (2+4+6)/3 = 4; (8-4)*0.5+4 = 6; (4-6)*0.5+6 = 5.
    _assert_close(ind.ema([2, 4, 6, 8, 4], 3), [NAN, NAN, 4, 6, 5])


def test_macd_seeds_the_fast_ema_where_the_slow_one_starts_like_ta_lib() -> None:
    # fast=2 (k=2/3) fed from index 1: seed (2+3)/2 = 2.5, then 3.5, 4.5, 6.1667; slow=3 (k=.5): 2, 3, 4, 5.5;
    # line .5, .5, .5, .6667; signal=2: seed (.5+.5)/2 = .5, .5, then (.6667-.5)*2/3+.5 = .6111.
    line, signal, hist = ind.macd([1, 2, 3, 4, 5, 7], 2, 3, 2)
    _assert_close(line, [NAN, NAN, NAN, 0.5, 0.5, (4.5 + 2.5 * 2 / 3) - 5.5])
    _assert_close(signal, [NAN, NAN, NAN, 0.5, 0.5, 0.5 + (2 / 3) * (1 / 6)])
    _assert_close(hist, [NAN, NAN, NAN, 0, 0, 1 / 6 - (2 / 3) * (1 / 6)])


def test_macd_12_26_9_warms_up_after_33_bars() -> None:
    line, signal, hist = ind.macd(np.linspace(100, 140, 60))
    for arr in (line, signal, hist):
        assert np.isnan(arr[:33]).all()
        assert not np.isnan(arr[33:]).any()


def test_atr_uses_wilder_smoothing_after_a_simple_seed() -> None:
    high, low, close = [10, 11, 12, 11, 13], [8, 9, 9, 10, 10], [9, 10, 11, 10.5, 12]
    # TR1 = 2, TR2 = 3, TR3 = 1 -> seed 2 at index 3; TR4 = max(3, 2.5, 0.5) = 3 -> (2*2 + 3)/3 = 7/3.
    _assert_close(ind.atr(high, low, close, 3), [NAN, NAN, NAN, 2, 7 / 3])


def test_bollinger_uses_population_deviation() -> None:
    upper, middle, lower = ind.bollinger([1, 2, 3], 3, 2.0)
    sd = math.sqrt(2 / 3)  # ((1-2)^2 + 0 + (3-2)^2) / 3
    _assert_close(middle, [NAN, NAN, 2])
    _assert_close(upper, [NAN, NAN, 2 + 2 * sd])
    _assert_close(lower, [NAN, NAN, 2 - 2 * sd])


def test_adx_follows_wilders_sums_and_seed() -> None:
    high, low, close = [10, 11, 12, 11.5, 12], [9, 9.5, 10, 9, 11], [9.5, 10.5, 11, 9.5, 11.8]
    # n=2. Bar 1: +DM 1, TR 1.5 (raw sums). Bar 2: S+ = 1-.5+1 = 1.5, S- = 0, STR = 1.5-.75+2 = 2.75, DX 100.
    # Bar 3: S+ = .75, S- = 1, STR = 3.875 -> DX = 100*.25/1.75 = 14.2857; ADX seed (100 + 14.2857)/2.
    # Bar 4: S+ = .875, S- = .5, STR = 4.4375 -> DX = 100*.375/1.375 = 27.2727; ADX = (57.1429 + 27.2727)/2.
    adx, plus_di, minus_di = ind.adx(high, low, close, 2)
    _assert_close(adx, [NAN, NAN, NAN, 800 / 14, (800 / 14 + 300 / 11) / 2])
    _assert_close(plus_di, [NAN, NAN, NAN, 75 / 3.875, 87.5 / 4.4375])
    _assert_close(minus_di, [NAN, NAN, NAN, 100 / 3.875, 50 / 4.4375])


def test_ehma_is_an_ema_of_twice_the_half_ema_minus_the_full_ema() -> None:
    # n=4: EMA2 1.5, 2.5, 3.5, 4.5, 5.5 (from index 1); EMA4 2.5, 3.5, 4.5 (from index 3);
    # raw 4.5, 5.5, 6.5; EMA2 of raw: seed 5 at index 4, then (6.5-5)*2/3+5 = 6.
    _assert_close(ind.ehma([1, 2, 3, 4, 5, 6], 4), [NAN, NAN, NAN, NAN, 5, 6])


def test_bad_periods_are_refused() -> None:
    with pytest.raises(ValueError, match="period"):
        ind.sma([1.0], 0)
    with pytest.raises(ValueError, match="slow"):
        ind.macd([1.0], 26, 12, 9)
