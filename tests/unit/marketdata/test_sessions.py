"""NSE session times: 09:15-15:30 IST on weekdays, bars named by their open; synthetic bars follow them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from services.marketdata.domain.sessions import NSE, next_session_time, session_times
from services.marketdata.domain.synthetic import DEFAULT_START, generate

IST = ZoneInfo("Asia/Kolkata")


def ist(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=IST).astimezone(UTC)


def shown(times: pd.DatetimeIndex) -> list[str]:
    return [t.astimezone(IST).strftime("%a %m-%d %H:%M") for t in times]


def test_a_day_of_one_minute_bars_is_375_from_09_15_to_15_29_then_the_next_weekday() -> None:
    times = session_times(DEFAULT_START, 377, 60, NSE)  # DEFAULT_START: Monday 2026-01-05 09:15 IST
    assert shown(times[:2]) == ["Mon 01-05 09:15", "Mon 01-05 09:16"]
    assert shown(times[374:]) == ["Mon 01-05 15:29", "Tue 01-06 09:15", "Tue 01-06 09:16"]
    assert times.is_monotonic_increasing
    assert times.is_unique


def test_weekends_are_skipped_and_a_start_inside_or_outside_hours_takes_the_next_bar() -> None:
    friday_close = ist("2026-01-09 15:29")
    assert shown(session_times(friday_close, 2, 60, NSE)) == ["Fri 01-09 15:29", "Mon 01-12 09:15"]
    assert shown(session_times(ist("2026-01-10 11:00"), 1, 60, NSE)) == ["Mon 01-12 09:15"]  # a Saturday
    assert shown(session_times(ist("2026-01-07 10:00:30"), 1, 60, NSE)) == ["Wed 01-07 10:01"]
    assert shown(session_times(ist("2026-01-07 16:00"), 1, 300, NSE)) == ["Thu 01-08 09:15"]


@pytest.mark.parametrize(
    ("seconds", "per_day", "last"),
    [(300, 75, "15:25"), (900, 25, "15:15"), (3600, 7, "15:15")],
)
def test_intraday_intervals_fill_the_session(seconds: int, per_day: int, last: str) -> None:
    times = session_times(DEFAULT_START, per_day + 1, seconds, NSE)
    assert shown(times[per_day - 1 :]) == [f"Mon 01-05 {last}", "Tue 01-06 09:15"]


def test_daily_bars_are_one_a_weekday_at_the_open() -> None:
    times = session_times(ist("2026-01-08 12:00"), 4, 86_400, NSE)
    assert shown(times) == ["Fri 01-09 09:15", "Mon 01-12 09:15", "Tue 01-13 09:15", "Wed 01-14 09:15"]


def test_the_next_session_time_after_a_bar() -> None:
    assert next_session_time(ist("2026-01-05 09:15"), 60, NSE) == ist("2026-01-05 09:16")
    assert next_session_time(ist("2026-01-09 15:29"), 60, NSE) == ist("2026-01-12 09:15")
    assert next_session_time(ist("2026-01-05 15:15"), 3600, NSE) == ist("2026-01-06 09:15")


def test_synthetic_bars_in_a_session_are_the_same_bars_at_session_times() -> None:
    plain = generate("INFY", 800, 7)
    nse = generate("INFY", 800, 7, session=NSE)
    columns = ["open", "high", "low", "close", "volume", "regime"]
    pd.testing.assert_frame_equal(plain[columns], nse[columns])
    assert list(nse["timestamp"]) == list(session_times(DEFAULT_START, 800, 60, NSE))
    local = nse["timestamp"].dt.tz_convert(IST)
    assert (local.dt.day_of_week < 5).all()
    minutes = local.dt.hour * 60 + local.dt.minute
    assert minutes.between(9 * 60 + 15, 15 * 60 + 29).all()
    assert (plain["timestamp"].diff().dropna() == timedelta(minutes=1)).all()  # without: every minute


def test_weekly_bars_come_every_week_whatever_the_session() -> None:
    weekly = generate("INFY", 3, 7, interval_seconds=7 * 86_400, session=NSE)
    assert (weekly["timestamp"].diff().dropna() == timedelta(days=7)).all()
    last = weekly["timestamp"].iloc[-1].to_pydatetime()  # and the live ticker's next one, likewise
    assert next_session_time(last, 7 * 86_400, NSE) == last + timedelta(days=7)
