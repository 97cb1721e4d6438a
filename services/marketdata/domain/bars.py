"""Validated bar frames to ``OHLCVBar`` events, with deterministic event ids (``OHLCVBar.key_for``).

Building pauses the cyclic garbage collector (``shared.collector``): the events hold no reference cycles,
and a collection every few hundred new objects would rescan every bar built so far (a third of the time).
The contract's per-field checks are done once per frame, on whole columns (``_columns_valid``), and the
events are then built without re-validating each one (``OHLCVBar.build_trusted``); a frame that fails the
column checks is built the validated way, so a bad value raises the contract's own error as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from shared.collector import collector_paused
from shared.contracts.envelope import derive_event_id
from shared.contracts.market_data import OHLCVBar

PRODUCER = "marketdata"
SYNTHETIC = "synthetic"
_PRICES_AND_VOLUME = ("open", "high", "low", "close", "volume")


def file_source(name: str) -> str:
    """The ``source`` of bars replayed from file ``name`` (bounded to the contract's 128 characters)."""
    return f"file:{name}"[:128]


def to_bars(frame: pd.DataFrame, symbol: str, interval: str, source: str) -> list[OHLCVBar]:
    """One event per row of a frame with columns timestamp, open, high, low, close, volume."""
    return BarSeries.of_frame(frame, symbol, interval, source).events()


class BarSeries:
    """One symbol's bars as columns (time order), each bar's ``OHLCVBar`` built only when asked for.

    ``bar(i)`` is exactly the event ``to_bars`` gives for row i (same id and JSON bytes); ``event_id(i)`` is
    its id without building the rest. A million bars take about 60 bytes each as columns, against about
    2 KB each as events, so ``bastion backtest`` keeps the columns and builds only the events it uses.
    ``of_events`` wraps events that already exist (then ``bar(i)`` returns them as they are).
    """

    def __init__(
        self,
        symbol: str,
        interval: str,
        source: str,
        times: pd.DatetimeIndex,
        columns: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        events: list[OHLCVBar] | None = None,
    ) -> None:
        self.symbol, self.interval, self.source = symbol, interval, source
        self.ns: np.ndarray = times.as_unit("ns").asi8  # UTC nanoseconds, increasing
        self.open, self.high, self.low, self.close, self.volume = columns
        self.live = source.startswith("broker:")
        self._index = times
        self._times: list[datetime] | None = None
        self._events = events

    @classmethod
    def of_frame(cls, frame: pd.DataFrame, symbol: str, interval: str, source: str) -> BarSeries:
        """The rows of a validated frame (columns timestamp, open, high, low, close, volume). Checked on whole
        columns; a frame that fails those checks is built the validated way, event by event, so a bad
        value raises the contract's own error."""
        times = pd.DatetimeIndex(frame["timestamp"]).tz_convert(UTC)
        columns = tuple(frame[col].to_numpy(dtype="float64") for col in _PRICES_AND_VOLUME)
        o, h, lo, c, v = columns
        series = cls(symbol, interval, source, times, (o, h, lo, c, v))
        if len(times):
            series._build(OHLCVBar.build, 0)  # checks symbol, interval and source
            if not (_columns_valid(o, h, lo, c, v) and series.times()[0].tzinfo is UTC):
                series._events = series._built(OHLCVBar.build)
        return series

    @classmethod
    def of_events(cls, events: list[OHLCVBar]) -> BarSeries:
        """Existing events of one symbol, in time order."""
        first = events[0]
        times = pd.DatetimeIndex([b.timestamp for b in events]).tz_convert(UTC)
        columns = tuple(
            np.fromiter((getattr(b, c) for b in events), np.float64, len(events)) for c in _PRICES_AND_VOLUME
        )
        o, h, lo, c, v = columns
        return cls(first.symbol, first.interval, first.source, times, (o, h, lo, c, v), list(events))

    def __len__(self) -> int:
        return len(self.ns)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to ``--optimize --jobs`` workers) without the times' ``datetime`` cache, rebuilt there."""
        return {**self.__dict__, "_times": None}

    def times(self) -> list[datetime]:
        """Every bar's time as a UTC ``datetime`` (converted once, on first use)."""
        if self._times is None:
            if self._events is not None:
                self._times = [b.timestamp for b in self._events]
            else:
                self._times = list(self._index.to_pydatetime())
        return self._times

    @property
    def wraps_events(self) -> bool:
        """Whether the bars are existing events (``of_events``, or a frame that failed the column checks)."""
        return self._events is not None

    def bar(self, i: int) -> OHLCVBar:
        if self._events is not None:
            return self._events[i]
        return self._build(OHLCVBar.build_trusted, i)

    def event_id(self, i: int) -> uuid.UUID:
        """``bar(i).event_id``, derived without building the event."""
        if self._events is not None:
            return self._events[i].event_id
        key = OHLCVBar.key_for(self.symbol, self.interval, self.times()[i].isoformat())
        return derive_event_id(OHLCVBar.SCHEMA, PRODUCER, key)

    def events(self) -> list[OHLCVBar]:
        """Every bar as its event (built in bulk, the collector paused)."""
        if self._events is not None:
            return list(self._events)
        return self._built(OHLCVBar.build_trusted)

    def events_between(self, start: int, stop: int) -> list[OHLCVBar]:
        """``[bar(i) for i in range(start, stop)]``, built in bulk."""
        if self._events is not None:
            return self._events[start:stop]
        return self._built(OHLCVBar.build_trusted, start, stop)

    def _built(
        self, make: Callable[..., OHLCVBar], start: int = 0, stop: int | None = None
    ) -> list[OHLCVBar]:
        symbol, interval, source = self.symbol, self.interval, self.source
        part = slice(start, stop)
        columns = [a[part].tolist() for a in (self.open, self.high, self.low, self.close, self.volume)]
        with collector_paused():
            return [
                _build(make, symbol, interval, source, *row)
                for row in zip(self.times()[part], *columns, strict=True)
            ]

    def _build(self, make: Callable[..., OHLCVBar], i: int) -> OHLCVBar:
        row = (float(self.open[i]), float(self.high[i]), float(self.low[i]), float(self.close[i]))
        return _build(
            make, self.symbol, self.interval, self.source, self.times()[i], *row, float(self.volume[i])
        )


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
