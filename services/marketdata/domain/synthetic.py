"""Deterministic synthetic bars with regimes, for demos, tests and benchmarks.

Each symbol gets its own ``numpy.random.Generator`` seeded from SHA-256 of ``"<seed>|<symbol>"`` (never
Python's ``hash()``, which changes per process), so the same seed gives the same bars for a symbol whatever
other symbols are generated beside it. The path is a sequence of regime segments (20-120 bars):

- ``trend``: steady drift up or down, moderate volatility;
- ``range``: mean reversion towards the segment's starting level, low volatility;
- ``volatile``: no drift, three times the volatility, heavier volume.

The path is anchored at ``DEFAULT_START``: ``skip`` draws the bars before a later start too and drops them,
so bars simulated from a later start continue the path of a run from the anchor (same closes at the same
bar count) instead of restarting at the symbol's base price (``bars_before`` counts them).

Prices are rounded to a 0.05 tick (monotone rounding keeps ``high >= max(open, close)`` and
``low <= min(open, close)``); volume is an integer that rises with the size of the move.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from services.marketdata.domain.sessions import Session, session_count, session_times

#: Default first bar: Monday 2026-01-05 09:15 IST. Fixed so that runs are reproducible.
DEFAULT_START = datetime(2026, 1, 5, 3, 45, tzinfo=UTC)
TICK = 0.05
REGIMES = ("trend", "range", "volatile")


@dataclass(frozen=True)
class Regime:
    name: str
    drift: float
    vol: float
    revert: float


def symbol_seed(seed: int, symbol: str) -> int:
    """A 64-bit seed for ``symbol``'s generator, stable across processes and platforms."""
    digest = hashlib.sha256(f"{seed}|{symbol}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _regime(rng: np.random.Generator, base_vol: float) -> Regime:
    name = REGIMES[int(rng.integers(0, len(REGIMES)))]
    if name == "trend":
        direction = 1.0 if rng.random() < 0.5 else -1.0
        return Regime(name, direction * base_vol * rng.uniform(0.15, 0.4), base_vol, 0.0)
    if name == "range":
        return Regime(name, 0.0, base_vol * 0.6, 0.08)
    return Regime(name, 0.0, base_vol * 3.0, 0.0)


def _closes(rng: np.random.Generator, n: int, start: float, base_vol: float) -> tuple[np.ndarray, list[str]]:
    closes = np.empty(n)
    names: list[str] = []
    level = price = start
    regime = _regime(rng, base_vol)
    left = int(rng.integers(20, 121))
    for i in range(n):
        if left == 0:
            regime, left, level = _regime(rng, base_vol), int(rng.integers(20, 121)), price
        pull = regime.revert * np.log(level / price)
        price *= float(np.exp(regime.drift + pull + regime.vol * rng.standard_normal()))
        closes[i] = max(price, TICK * 2)
        names.append(regime.name)
        left -= 1
    return closes, names


def _tick(values: np.ndarray) -> np.ndarray:
    return np.maximum(np.round(values / TICK) * TICK, TICK).round(2)


def generate(
    symbol: str,
    bars: int,
    seed: int,
    *,
    interval_seconds: int = 60,
    start: datetime = DEFAULT_START,
    start_price: float | None = None,
    session: Session | None = None,
    skip: int = 0,
) -> pd.DataFrame:
    """``bars`` bars of ``symbol``: columns timestamp, open, high, low, close, volume, regime.

    The bars follow each other every ``interval_seconds`` from ``start``; with ``session``, only at the
    session's bar times (``NSE``: 09:15-15:30 IST on weekdays), from the first at or after ``start``, for
    intervals up to a day. ``skip``: the path's bars before these (``bars_before``), drawn and dropped."""
    rng = np.random.default_rng(symbol_seed(seed, symbol))
    first = start_price if start_price is not None else float(rng.uniform(100, 3000))
    base_vol = float(rng.uniform(0.0008, 0.0025)) * np.sqrt(max(interval_seconds, 1) / 60) ** 0.5
    shown, bars = bars, skip + bars
    closes, regimes = _closes(rng, bars, first, base_vol)
    gaps = 1 + rng.normal(0, base_vol * 0.3, bars)
    opens = np.concatenate(([first], closes[:-1])) * gaps
    wick_up = np.abs(rng.normal(0, base_vol * 0.7, bars))
    wick_down = np.abs(rng.normal(0, base_vol * 0.7, bars))
    highs = np.maximum(opens, closes) * (1 + wick_up)
    lows = np.minimum(opens, closes) * (1 - wick_down)
    o, h, lo, c = _tick(opens), _tick(highs), _tick(lows), _tick(closes)
    h, lo = np.maximum(h, np.maximum(o, c)), np.minimum(lo, np.minimum(o, c))
    move = np.abs(np.log(closes / np.concatenate(([first], closes[:-1])))) / base_vol
    factor = np.array([_VOLUME_FACTOR[r] for r in regimes])
    base_volume = float(rng.uniform(5e3, 5e4))
    volume = np.round(base_volume * factor * (0.6 + 0.4 * move) * rng.lognormal(0, 0.35, bars))
    if session is None:
        times = pd.date_range(start=start, periods=shown, freq=timedelta(seconds=interval_seconds))
    else:
        times = session_times(start, shown, interval_seconds, session)
    kept = slice(skip, bars)
    columns = {"open": o, "high": h, "low": lo, "close": c, "volume": volume}
    return pd.DataFrame(
        {"timestamp": times, **{k: v[kept] for k, v in columns.items()}, "regime": regimes[kept]}
    )


def bars_before(start: datetime, interval_seconds: int, session: Session | None) -> int:
    """The path's bars before ``start``: its bar times from ``DEFAULT_START`` (none before the anchor)."""
    return session_count(DEFAULT_START, start, interval_seconds, session)


_VOLUME_FACTOR = {"trend": 1.2, "range": 0.8, "volatile": 2.0}


def next_bar(
    symbol: str, seed: int, timestamp: datetime, last_close: float, *, interval_seconds: int = 60
) -> pd.DataFrame:
    """One bar following ``last_close`` at ``timestamp``, deterministic in (seed, symbol, timestamp)."""
    return generate(
        f"{symbol}@{timestamp.isoformat()}",
        1,
        seed,
        interval_seconds=interval_seconds,
        start=timestamp,
        start_price=last_close,
    )
