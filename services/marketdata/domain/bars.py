"""Validated bar frames to ``OHLCVBar`` events, with deterministic event ids (``OHLCVBar.key_for``)."""

from __future__ import annotations

from datetime import UTC

import pandas as pd

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
    columns = [frame[col].to_numpy(dtype="float64").tolist() for col in _PRICES_AND_VOLUME]
    bars: list[OHLCVBar] = []
    for moment, o, h, lo, c, v in zip(times, *columns, strict=True):
        bars.append(
            OHLCVBar.build(
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
        )
    return bars
