"""``BarSeries`` keeps bars as columns and builds a bar's event only when asked: it must be exactly the event
``to_bars`` builds (the one ``bastion feed replay`` publishes), id and bytes, and refuse what it refuses."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from services.marketdata.domain.bars import SYNTHETIC, BarSeries, to_bars
from services.marketdata.domain.synthetic import generate


def test_each_bar_of_a_series_is_the_event_to_bars_builds() -> None:
    frame = generate("INFY", 400, 3)
    events = to_bars(frame, "INFY", "1m", SYNTHETIC)
    series = BarSeries.of_frame(frame, "INFY", "1m", SYNTHETIC)
    assert len(series) == len(events)
    assert [series.bar(i).to_json() for i in range(len(series))] == [e.to_json() for e in events]
    assert [series.event_id(i) for i in range(len(series))] == [e.event_id for e in events]
    assert series.times() == [e.timestamp for e in events]
    assert series.ns.tolist() == [pd.Timestamp(e.timestamp).value for e in events]  # nanoseconds
    assert series.close.tolist() == [e.close for e in events]
    assert not series.live


def test_a_series_of_existing_events_gives_them_back() -> None:
    events = to_bars(generate("TCS", 50, 1), "TCS", "1d", "file:TCS.csv")
    series = BarSeries.of_events(events)
    assert [series.bar(i) for i in range(len(series))] == events
    assert series.bar(7) is events[7]
    assert [series.event_id(i) for i in range(len(series))] == [e.event_id for e in events]
    assert (series.symbol, series.interval, series.source) == ("TCS", "1d", "file:TCS.csv")
    assert series.ns.tolist() == [pd.Timestamp(e.timestamp).value for e in events]  # not microseconds
    assert series.high.tolist() == [e.high for e in events]


def test_a_bad_value_raises_the_contracts_error_as_to_bars_does() -> None:
    frame = generate("INFY", 20, 3)
    frame.loc[5, "volume"] = -1.0  # a negative volume
    with pytest.raises(ValidationError, match="volume"):
        to_bars(frame, "INFY", "1m", SYNTHETIC)
    with pytest.raises(ValidationError, match="volume"):
        BarSeries.of_frame(frame, "INFY", "1m", SYNTHETIC)


def test_a_bad_symbol_is_refused_even_when_the_columns_are_fine() -> None:
    with pytest.raises(ValidationError):
        BarSeries.of_frame(generate("INFY", 5, 3), "not a symbol!", "1m", SYNTHETIC)


def test_an_empty_frame_is_an_empty_series() -> None:
    frame = generate("INFY", 5, 3).iloc[:0]
    assert len(BarSeries.of_frame(frame, "INFY", "1m", SYNTHETIC)) == 0
    assert to_bars(pd.DataFrame(frame), "INFY", "1m", SYNTHETIC) == []
