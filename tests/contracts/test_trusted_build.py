"""The fast paths of event building give exactly what the validated path gives: ``derive_event_id`` is
UUIDv5 of its cause, and ``to_bars`` (which builds checked frames with ``Event.build_trusted``) yields the
same events, ids and JSON bytes as ``OHLCVBar.build`` row by row, while a bad frame still fails."""

from __future__ import annotations

import pickle
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.marketdata.domain.bars import PRODUCER, to_bars
from shared.contracts.envelope import BASTION_NAMESPACE, _every_field, derive_event_id, trusted
from shared.contracts.market_data import OHLCVBar


@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=60))
def test_derived_ids_are_uuid5_of_schema_producer_and_key(schema: str, producer: str, key: str) -> None:
    expected = uuid.uuid5(BASTION_NAMESPACE, f"{schema}|{producer}|{key}")
    derived = derive_event_id(schema, producer, key)
    assert derived == expected
    assert (str(derived), repr(derived), hash(derived)) == (str(expected), repr(expected), hash(expected))
    assert (derived.version, derived.variant, derived.is_safe) == (5, uuid.RFC_4122, expected.is_safe)
    assert pickle.loads(pickle.dumps(derived)) == expected  # noqa: S301 (our own bytes)


def _validated(frame: pd.DataFrame, symbol: str, interval: str, source: str) -> list[OHLCVBar]:
    times = [t.astimezone(UTC) for t in pd.DatetimeIndex(frame["timestamp"]).to_pydatetime()]
    columns = [frame[c].astype(float).tolist() for c in ("open", "high", "low", "close", "volume")]
    return [
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
        for moment, o, h, lo, c, v in zip(times, *columns, strict=True)
    ]


def _frame(opens: list[float], spread: list[float], volume: list[float], tz: str = "UTC") -> pd.DataFrame:
    o = np.array(opens)
    c = o * (1 + np.array(spread))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-01-05 09:15", periods=len(o), freq="1min", tz=tz),
            "open": o,
            "high": np.maximum(o, c) * 1.001,
            "low": np.minimum(o, c) * 0.999,
            "close": c,
            "volume": volume,
        }
    )


bar_rows = st.integers(min_value=1, max_value=30).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0.05, 1e6), min_size=n, max_size=n),
        st.lists(st.floats(-0.05, 0.05), min_size=n, max_size=n),
        st.lists(st.floats(0, 1e9) | st.just(0.0), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(bar_rows, st.sampled_from(["UTC", "Asia/Kolkata"]))
def test_to_bars_equals_the_validated_build_byte_for_byte(
    rows: tuple[list[float], list[float], list[float]], tz: str
) -> None:
    frame = _frame(*rows, tz=tz)
    fast = to_bars(frame, "INFY", "1m", "synthetic")
    slow = _validated(frame, "INFY", "1m", "synthetic")
    assert [b.to_json() for b in fast] == [b.to_json() for b in slow]
    assert fast == slow
    assert all(b.timestamp.tzinfo is UTC for b in fast)


def test_a_frame_that_fails_the_column_checks_still_raises_the_contract_error() -> None:
    frame = _frame([100.0, 101.0, 102.0], [0.01, 0.0, -0.01], [10.0, 10.0, 10.0])
    close = frame.loc[2, "close"]
    assert isinstance(close, float)
    frame.loc[2, "high"] = close - 1  # high below close on the last row
    with pytest.raises(ValidationError, match="high"):
        to_bars(frame, "INFY", "1m", "synthetic")


def test_a_bad_symbol_is_refused_even_when_every_value_is_fine() -> None:
    frame = _frame([100.0, 101.0], [0.01, 0.0], [10.0, 10.0])
    with pytest.raises(ValidationError):
        to_bars(frame, "RELIANCE.NS", "1m", "synthetic")


def test_build_trusted_refuses_a_missing_or_unknown_field() -> None:
    moment = datetime(2026, 1, 5, 3, 45, tzinfo=UTC)
    fields: dict[str, Any] = dict(
        symbol="INFY", interval="1m", timestamp=moment, open=1.0, high=1.0, low=1.0, close=1.0
    )
    with pytest.raises(TypeError, match="needs exactly the fields"):
        OHLCVBar.build_trusted(producer="p", key="k", occurred_at=moment, **fields, volume=0.0)
    with pytest.raises(TypeError, match="needs exactly the fields"):
        OHLCVBar.build_trusted(
            producer="p", key="k", occurred_at=moment, **fields, volume=0.0, source="s", colour="red"
        )


def test_an_empty_frame_gives_no_bars() -> None:
    assert to_bars(_frame([], [], []), "INFY", "1m", "synthetic") == []


@pytest.mark.parametrize("enabled", [True, False])
def test_building_bars_leaves_the_garbage_collector_as_it_found_it(enabled: bool) -> None:
    import gc

    frame = _frame([100.0, 101.0, 102.0], [0.01, 0.0, -0.01], [10.0, 10.0, 10.0])
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        assert len(to_bars(frame, "INFY", "1m", "synthetic")) == 3
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def _bar(minute: int) -> OHLCVBar:
    at = datetime(2024, 1, 2, 9, minute, tzinfo=UTC)
    values: dict[str, Any] = {"symbol": "INFY", "interval": "1m", "timestamp": at, "open": 1.0}
    values |= {"high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0, "source": "synthetic"}
    return OHLCVBar.build_trusted(producer=PRODUCER, key=f"INFY|{minute}", occurred_at=at, **values)


def test_trusted_instances_share_one_field_set_that_nothing_changes() -> None:
    first, second = _bar(1), _bar(2)
    assert first.model_fields_set is second.model_fields_set  # one set, not 2 KB per event
    assert first.model_fields_set == set(OHLCVBar.model_fields)
    moved = first.model_copy(update={"close": 1.75})  # pydantic copies the set before adding to it
    assert moved.close == 1.75
    assert moved.model_fields_set == set(OHLCVBar.model_fields)
    assert moved.model_fields_set is not first.model_fields_set
    assert (first.close, second.close) == (1.5, 1.5)
    assert first.model_fields_set == set(OHLCVBar.model_fields)
    at = datetime(2024, 1, 2, 9, 3, tzinfo=UTC)
    fields: dict[str, Any] = {"symbol": "INFY", "interval": "1m", "timestamp": at, "open": 1.0, "high": 2.0}
    fields |= {"low": 0.5, "close": 1.5, "volume": 10.0, "source": "synthetic"}
    validated = OHLCVBar.build(producer=PRODUCER, key="INFY|3", occurred_at=at, **fields)
    assert validated.model_fields_set is first.model_fields_set  # a validated one with every field too
    assert validated.model_copy(update={"close": 1.25}).close == 1.25
    assert validated.close == 1.5


def test_a_mutable_trusted_model_assigned_a_field_leaves_the_others_alone() -> None:
    from services.execution.domain.broker import PendingOrder

    ids = {name: uuid.uuid4() for name in ("order_id", "signal_id", "decision_id", "correlation_id")}
    values = {"symbol": "INFY", "side": "buy", "quantity": 3, "strategy_id": "s", "after": datetime.now(UTC)}
    one = trusted(PendingOrder, {**ids, **values})
    two = trusted(PendingOrder, {**ids, **values})
    one.quantity = Decimal(5)
    assert (one.quantity, two.quantity) == (5, 3)
    assert one.model_fields_set == two.model_fields_set == set(PendingOrder.model_fields)


def test_a_partial_trusted_model_gets_its_own_field_set() -> None:
    from services.execution.domain.broker import PendingOrder

    partial = trusted(PendingOrder, {"symbol": "INFY"})
    assert partial.model_fields_set == {"symbol"}
    assert _every_field(PendingOrder) == set(PendingOrder.model_fields)  # the shared one is untouched
