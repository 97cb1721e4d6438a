"""Validated bar frames to ``OHLCVBar`` events, with deterministic event ids (``OHLCVBar.key_for``).

Building pauses the cyclic garbage collector (``shared.collector``): the events hold no reference cycles,
and a collection every few hundred new objects would rescan every bar built so far (a third of the time).
The contract's per-field checks are done once per frame, on whole columns (``_columns_valid``), and the
events are then built without re-validating each one (``OHLCVBar.build_trusted``); a frame that fails the
column checks is built the validated way, so a bad value raises the contract's own error as before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from shared.collector import collector_paused
from shared.contracts.market_data import OHLCVBar

PRODUCER = "marketdata"
SYNTHETIC = "synthetic"
_PRICES_AND_VOLUME = ("open", "high", "low", "close", "volume")


def file_source(name: str) -> str:
    """The ``source`` of bars replayed from file ``name`` (bounded to the contract's 128 characters)."""
    return f"file:{name}"[:128]


def to_bars(frame: pd.DataFrame, symbol: str, interval: str, source: str) -> list[OHLCVBar]:
    """One event per row of a frame with columns timestamp, open, high, low, close, volume. Columns are
    converted to plain Python values in bulk (iterating pandas objects row by row is the slow part)."""
    times = pd.DatetimeIndex(frame["timestamp"]).tz_convert(UTC).to_pydatetime()
    arrays = [frame[col].to_numpy(dtype="float64") for col in _PRICES_AND_VOLUME]
    columns = [a.tolist() for a in arrays]
    rows = zip(times, *columns, strict=True)
    if not len(times):
        return []
    trusted = _columns_valid(*arrays) and times[0].tzinfo is UTC
    first = _build(OHLCVBar.build, symbol, interval, source, *next(rows))  # checks symbol, interval, source
    make = OHLCVBar.build_trusted if trusted else OHLCVBar.build
    with collector_paused():
        return [first, *(_build(make, symbol, interval, source, *row) for row in rows)]


def _build(
    make: Callable[..., OHLCVBar],
    symbol: str,
    interval: str,
    source: str,
    moment: datetime,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: float,
) -> OHLCVBar:
    return make(
        producer=PRODUCER,
        key=OHLCVBar.key_for(symbol, interval, moment.isoformat()),
        occurred_at=moment,
        symbol=symbol,
        interval=interval,
        timestamp=moment,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        source=source,
    )


def _columns_valid(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> bool:
    """The checks of ``OHLCVBar`` (finite, prices > 0, volume >= 0, high/low bound the bar) on columns."""
    with np.errstate(invalid="ignore"):
        finite = bool(np.isfinite(o).all() and np.isfinite(h).all() and np.isfinite(lo).all())
        finite = finite and bool(np.isfinite(c).all() and np.isfinite(v).all())
        positive = bool((o > 0).all() and (h > 0).all() and (lo > 0).all() and (c > 0).all())
        bounded = bool((h >= np.maximum(np.maximum(o, c), lo)).all() and (lo <= np.minimum(o, c)).all())
        return finite and positive and bounded and bool((v >= 0).all())
