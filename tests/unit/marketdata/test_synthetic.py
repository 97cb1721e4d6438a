"""The synthetic generator: deterministic per (seed, symbol), valid OHLC, regimes, realistic volume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from services.marketdata.domain.bars import SYNTHETIC, to_bars
from services.marketdata.domain.sessions import NSE
from services.marketdata.domain.synthetic import (
    DEFAULT_START,
    REGIMES,
    bars_before,
    generate,
    next_bar,
    symbol_seed,
)
from shared.intervals import interval_seconds

symbols = st.from_regex(r"[A-Z][A-Z0-9&_\-]{0,11}", fullmatch=True)


def test_same_seed_gives_identical_bars_and_ids() -> None:
    first, second = generate("INFY", 300, 7), generate("INFY", 300, 7)
    pd.testing.assert_frame_equal(first, second)
    ids = [b.event_id for b in to_bars(first, "INFY", "1m", SYNTHETIC)]
    assert ids == [b.event_id for b in to_bars(second, "INFY", "1m", SYNTHETIC)]


def test_a_different_seed_or_symbol_gives_different_bars() -> None:
    base = generate("INFY", 50, 7)["close"].to_numpy()
    assert not np.array_equal(base, generate("INFY", 50, 8)["close"].to_numpy())
    assert not np.array_equal(base, generate("TCS", 50, 7)["close"].to_numpy())


def test_the_symbol_seed_is_a_stable_digest_not_python_hash() -> None:
    assert symbol_seed(7, "INFY") == symbol_seed(7, "INFY")
    # pinned: the same in every process and on every machine
    assert symbol_seed(7, "INFY") == 0x4BB396B8D91A0946
    assert symbol_seed(7, "INFY") != symbol_seed(7, "TCS")


def test_default_start_is_fixed_and_times_step_by_the_interval() -> None:
    frame = generate("TCS", 5, 1, interval_seconds=interval_seconds("5m"))
    assert frame["timestamp"].iloc[0] == pd.Timestamp(DEFAULT_START)
    assert (frame["timestamp"].diff().dropna() == pd.Timedelta(minutes=5)).all()


def test_a_long_run_visits_every_regime_and_volume_is_higher_when_volatile() -> None:
    frame = generate("RELIANCE", 3000, 7)
    assert set(frame["regime"]) == set(REGIMES)
    by_regime = frame.groupby("regime")["volume"].median()
    assert by_regime["volatile"] > by_regime["range"]
    returns = np.log(frame["close"]).diff()
    vol = returns.groupby(frame["regime"]).std()
    assert vol["volatile"] > 1.5 * vol["range"]


@settings(max_examples=60, deadline=None)
@given(
    symbol=symbols,
    seed=st.integers(min_value=0, max_value=2**32),
    bars=st.integers(min_value=1, max_value=400),
    interval=st.sampled_from(["1m", "5m", "1h", "1d"]),
)
def test_generated_bars_always_have_valid_ohlc_and_volume(
    symbol: str, seed: int, bars: int, interval: str
) -> None:
    frame = generate(symbol, bars, seed, interval_seconds=interval_seconds(interval))
    o, h, lo, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert len(frame) == bars
    assert (lo > 0).all()
    assert (h >= np.maximum(o, c)).all()
    assert (lo <= np.minimum(o, c)).all()
    assert (v >= 0).all()
    assert (v == np.round(v)).all()
    assert frame["timestamp"].is_monotonic_increasing
    to_bars(frame, symbol, interval, SYNTHETIC)  # the contract's own validators accept every bar


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000), last=st.floats(min_value=1, max_value=50_000))
def test_the_next_live_bar_is_valid_deterministic_and_starts_near_the_last_close(
    seed: int, last: float
) -> None:
    at = datetime(2026, 2, 1, 4, 0, tzinfo=UTC)
    bar = next_bar("INFY", seed, at, last)
    pd.testing.assert_frame_equal(bar, next_bar("INFY", seed, at, last))
    assert bar["timestamp"].iloc[0] == pd.Timestamp(at)
    assert abs(bar["open"].iloc[0] - last) <= max(0.05 * last, 0.1)
    assert not bar.equals(next_bar("INFY", seed, at + timedelta(minutes=1), last))


def test_a_later_start_continues_the_path_instead_of_restarting_it() -> None:
    whole = generate("INFY", 1_000, 7, session=NSE)
    later = whole["timestamp"].iloc[600].to_pydatetime()
    skip = bars_before(later, 60, NSE)
    assert skip == 600
    tail = generate("INFY", 400, 7, start=later, session=NSE, skip=skip)
    pd.testing.assert_frame_equal(tail.reset_index(drop=True), whole.iloc[600:].reset_index(drop=True))
    first = generate("INFY", 600, 7, session=NSE)  # an earlier, shorter run: its closes are the path's too
    np.testing.assert_array_equal(first["close"].to_numpy(), whole["close"].to_numpy()[:600])
    jump = abs(np.log(tail["open"].iloc[0] / first["close"].iloc[-1]))
    assert jump < 0.01, jump  # the restart at the base price jumped by tens of percent


def test_bars_before_counts_session_and_calendar_bar_times() -> None:
    monday_open = DEFAULT_START
    assert bars_before(monday_open, 60, NSE) == 0
    assert bars_before(monday_open - timedelta(days=3), 60, NSE) == 0  # before the anchor: none
    assert bars_before(monday_open + timedelta(days=1), 60, NSE) == 375  # Monday's whole session
    assert bars_before(monday_open + timedelta(days=7), 60, NSE) == 5 * 375  # the weekend has none
    assert bars_before(monday_open + timedelta(days=7), 86_400, NSE) == 5
    assert bars_before(monday_open + timedelta(minutes=90, seconds=1), 60, None) == 91
