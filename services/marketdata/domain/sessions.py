"""Trading sessions: the times at which an exchange's bars exist.

``NSE``: the cash market's normal session, 09:15 to 15:30 Asia/Kolkata, Monday to Friday. A bar is named
by the time it opens, so a day has 375 one-minute bars (09:15 ... 15:29), 75 five-minute bars and seven
hourly ones (the last, 15:15, is a quarter of an hour). A daily bar is named by the session's open.
Exchange holidays and special sessions (Muhurat trading) are not modelled: every weekday is a session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Session:
    name: str
    zone: ZoneInfo
    opens: time
    closes: time
    weekdays: frozenset[int] = field(default=frozenset(range(5)))  # Monday = 0

    def open_on(self, day: date) -> datetime:
        return datetime.combine(day, self.opens, self.zone).astimezone(UTC)

    def offsets(self, interval_seconds: int) -> np.ndarray:
        """Seconds after the open of each bar of a day; one bar a day for a daily interval."""
        if interval_seconds >= DAY_SECONDS:
            return np.zeros(1, dtype=np.int64)
        length = (datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)).seconds
        return np.arange(0, length, max(interval_seconds, 1), dtype=np.int64)


NSE = Session("nse", ZoneInfo("Asia/Kolkata"), time(9, 15), time(15, 30))
SESSIONS = {"nse": NSE}


def session_times(start: datetime, count: int, interval_seconds: int, session: Session) -> pd.DatetimeIndex:
    """The first ``count`` bar times of ``session`` at or after ``start`` (UTC). Intervals longer than a day
    (weekly bars) are not tied to sessions: one bar every interval from ``start``."""
    if interval_seconds > DAY_SECONDS:
        return pd.date_range(start=start, periods=count, freq=timedelta(seconds=interval_seconds))
    offsets = session.offsets(interval_seconds)
    chunks: list[np.ndarray] = []
    have = 0
    day = start.astimezone(session.zone).date()
    first = int(start.timestamp())
    while have < count:
        if day.weekday() in session.weekdays:
            opened = int(session.open_on(day).timestamp())
            times = opened + offsets
            times = times[times >= first]
            chunks.append(times[: count - have])
            have += len(chunks[-1])
        day += timedelta(days=1)
    seconds = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    return pd.DatetimeIndex(pd.to_datetime(seconds, unit="s", utc=True))


def session_count(start: datetime, until: datetime, interval_seconds: int, session: Session | None) -> int:
    """How many bar times of ``session`` (every interval from ``start`` without one) lie in [start, until)."""
    if until <= start:
        return 0
    if session is None or interval_seconds > DAY_SECONDS:
        return -(-int((until - start).total_seconds()) // max(interval_seconds, 1))
    offsets = session.offsets(interval_seconds)
    first, last = int(start.timestamp()), int(until.timestamp())
    count = 0
    day, end = start.astimezone(session.zone).date(), until.astimezone(session.zone).date()
    while day <= end:
        if day.weekday() in session.weekdays:
            times = int(session.open_on(day).timestamp()) + offsets
            count += int(((times >= first) & (times < last)).sum())
        day += timedelta(days=1)
    return count


def next_session_time(after: datetime, interval_seconds: int, session: Session) -> datetime:
    """The first bar time of ``session`` after ``after`` (a bar at ``after``'s: ``after`` plus the interval,
    for intervals longer than a day)."""
    if interval_seconds > DAY_SECONDS:
        return after + timedelta(seconds=interval_seconds)
    moment = session_times(after + timedelta(seconds=1), 1, interval_seconds, session)[0]
    return moment.to_pydatetime()
