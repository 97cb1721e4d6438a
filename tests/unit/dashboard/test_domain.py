"""Pure view building from snapshot values: tolerant of missing and odd data, staleness, markers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.dashboard.domain.activity import build_activity
from services.dashboard.domain.overview import build_overview, meter
from services.dashboard.domain.snapshots import Snap, as_float, parse_time
from services.dashboard.domain.symbols import build_symbol_detail, build_symbol_list, snap_to_bar
from tests.unit.dashboard.sample_snapshots import heartbeat, snapshots

NOW = datetime(2024, 1, 2, 10, 0, tzinfo=UTC)


def snaps_of(values: dict[str, Any], put_at: datetime = NOW) -> dict[str, Snap]:
    return {k: Snap(k, v, put_at, i) for i, (k, v) in enumerate(values.items())}


def test_overview_shows_the_kill_switch_reason_breakers_positions_and_equity() -> None:
    view = build_overview(snaps_of(snapshots(now=NOW)), NOW, 15)
    assert view.risk is not None
    assert (view.risk.state, view.risk.reason) == ("HALTED", "daily loss breaker tripped")
    assert view.risk.changed_by == "breaker:daily_loss"
    daily = next(b for b in view.risk.breakers if b.name == "daily_loss")
    assert daily.tripped
    assert daily.fraction == 1.0
    assert view.account is not None
    assert view.account.pnl_today == -5200.0
    assert [p.symbol for p in view.positions] == ["INFY"]
    assert view.positions[0].books == [("ehma-16", 4.0), ("sma-10-30", 6.0)]
    assert len(view.equity) == 300
    assert all(a.time < b.time for a, b in zip(view.equity, view.equity[1:], strict=False))
    assert not view.sections["execution.risk"].stale


def test_sections_go_stale_when_the_producer_stops_heartbeating() -> None:
    values = snapshots(now=NOW - timedelta(minutes=5))
    values["health.analytics"] = heartbeat("analytics", NOW)
    view = build_overview(snaps_of(values), NOW, 15)
    assert view.sections["execution.risk"].stale
    assert view.sections["execution.risk"].written_at == NOW
    rows = {h.service: h for h in view.health}
    assert rows["execution"].stale
    assert not rows["analytics"].stale
    assert rows["execution"].dead_lettered == 2
    assert rows["execution"].lag == 3


def test_a_stopping_service_is_stale_at_once() -> None:
    view = build_overview(snaps_of({"health.auth": heartbeat("auth", NOW, status="stopping")}), NOW, 15)
    assert view.health[0].stale


def test_empty_bucket_gives_empty_views_not_errors() -> None:
    assert build_overview({}, NOW, 15).risk is None
    assert build_symbol_list({}, NOW, 15).symbols == []
    detail = build_symbol_detail({}, "INFY", NOW, 15)
    assert detail.candles == []
    assert detail.insight is None
    assert not detail.sections["analytics.INFY"].present
    assert build_activity({}, NOW, 15).orders == []


def test_garbage_values_are_ignored_field_by_field() -> None:
    values = {
        "execution.risk": {"state": None, "breakers": {"x": "nope"}, "usage": [1, 2]},
        "execution.positions": {
            "positions": [{"symbol": "INFY", "quantity": "abc", "books": {"s1": "x", "s2": "3"}}, "junk", {}]
        },
        "analytics.INFY": {"bars": [{"t": "not a time"}, {"t": 5, "o": 1, "h": 2, "l": 0.5, "c": 1.5}, 7]},
        "execution.orders.recent": {"orders": "many", "decisions": [{"approved": "yes"}]},
    }
    snaps = snaps_of(values)
    view = build_overview(snaps, NOW, 15)
    assert view.risk is not None
    assert view.risk.state == "UNKNOWN"
    assert view.positions[0].quantity is None
    assert view.positions[0].books == [("s2", 3.0)]
    assert len(build_symbol_detail(snaps, "INFY", NOW, 15).candles) == 1
    assert build_activity(snaps, NOW, 15).decisions[0].approved is False


def test_symbol_list_has_price_change_bias_and_position() -> None:
    rows = {r.symbol: r for r in build_symbol_list(snaps_of(snapshots(now=NOW)), NOW, 15).symbols}
    infy = rows["INFY"]
    assert infy.last_price is not None
    assert infy.change is not None
    assert infy.bias == "bullish"
    assert infy.position == 10.0
    assert rows["TCS"].position is None


def test_symbol_detail_has_candles_lines_markers_and_explained_insight() -> None:
    detail = build_symbol_detail(snaps_of(snapshots(now=NOW)), "INFY", NOW, 15)
    assert len(detail.candles) == 300
    assert len(detail.lines["sma_20"]) == 281  # null during the 19-bar warm-up
    assert {m.kind for m in detail.markers} == {"signal", "fill"}
    assert {m.text for m in detail.markers if m.kind == "signal"} <= {"long s1", "flat s1"}  # the instance id
    times = {c.time for c in detail.candles}
    assert all(m.time in times for m in detail.markers)
    assert detail.insight is not None
    assert [c.leaning for c in detail.insight.components] == ["bullish", "bearish", "neutral"]


def test_rejected_decisions_carry_the_failed_check_reasons() -> None:
    activity = build_activity(snaps_of(snapshots(now=NOW)), NOW, 15)
    rejected = [d for d in activity.decisions if not d.approved]
    assert rejected[0].reasons == ["max_order_qty: 12 > 10"]
    assert activity.audit is not None
    assert activity.audit.ok is True


@given(
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, unique=True), st.integers(-100, 20_000)
)
def test_markers_snap_to_the_bar_containing_them(times: list[int], when: int) -> None:
    bars = sorted(times)
    got = snap_to_bar(when, bars)
    if when < bars[0]:
        assert got is None
    else:
        assert got is not None
        assert got <= when
        assert all(not (got < t <= when) for t in bars)


@given(
    st.one_of(
        st.none(), st.booleans(), st.text(max_size=20), st.floats(), st.integers(), st.lists(st.integers())
    )
)
def test_readers_never_raise(value: object) -> None:
    number = as_float(value)
    assert number is None or number == number
    parse_time(value)


@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(allow_nan=False, allow_infinity=False))
def test_meter_fraction_stays_between_zero_and_one(used: float, limit: float) -> None:
    m = meter("x", {"used": used, "limit": limit})
    assert m.fraction is None or 0.0 <= m.fraction <= 1.0


def test_activity_rows_are_newest_first_by_the_time_shown_not_by_when_execution_made_them() -> None:
    def decision(n: int, at: str | None) -> dict[str, object]:
        return {"event_id": str(n), "occurred_at": at, "approved": True}

    made = [  # as a fast replay makes them: a late signal's decision after later bars' ones
        decision(1, "2026-01-06T04:50:00Z"),
        decision(2, "2026-01-06T05:20:00+00:00"),
        decision(3, "2026-01-06T10:45:00+05:30"),  # 05:15 UTC
        decision(4, "2026-01-06T05:20:00Z"),  # the same time as 2, made after it
        decision(5, "not a time"),
        decision(6, None),
    ]
    trades = [
        {"price": "1", "filled_at": "2026-01-06T05:00:00Z", "occurred_at": "2026-01-06T06:00:00Z"},
        {"price": "2", "occurred_at": "2026-01-06T05:30:00Z"},
    ]
    values = {"execution.orders.recent": {"decisions": made}, "execution.trades.recent": {"trades": trades}}
    view = build_activity(snaps_of(values), NOW, 15)
    shown = [d.time for d in view.decisions]
    assert shown == [
        "2026-01-06T05:20:00Z",
        "2026-01-06T05:20:00+00:00",
        "2026-01-06T10:45:00+05:30",
        "2026-01-06T04:50:00Z",
        None,  # unreadable times last, newest made first
        "not a time",
    ]
    assert [t.price for t in view.trades] == ["2", "1"]  # a trade's time is when it filled


def test_a_decision_shows_its_signals_target_while_the_signal_is_among_the_recent_ones() -> None:
    signals = [{"event_id": "s-1", "target": "flat"}, {"event_id": "s-2", "target": "long"}, "junk"]
    decisions = [
        {"signal_id": "s-1", "occurred_at": "2026-01-06T05:00:00Z", "approved": True},
        {"signal_id": "s-2", "occurred_at": "2026-01-06T05:01:00Z", "approved": True},
        {"signal_id": "gone", "occurred_at": "2026-01-06T05:02:00Z", "approved": True},
    ]
    values = {
        "strategy.signals.1": {"signals": signals[:1]},
        "strategy.signals.2": {"signals": signals[1:]},  # each worker's snapshot
        "execution.orders.recent": {"decisions": decisions},
    }
    view = build_activity(snaps_of(values), NOW, 15)
    assert [d.target for d in view.decisions] == ["", "long", "flat"]  # newest first
