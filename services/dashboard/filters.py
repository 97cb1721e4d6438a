"""Jinja filters for numbers and times (display only). Times are shown in the dashboard's zone
(``BASTION_DASHBOARD_TZ``, default UTC), named after the time (``2024-01-02 09:15:00 IST``)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def num(value: object, digits: int = 2) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:,.{digits}f}"


def qty(value: object) -> str:
    """A quantity or a count: whole numbers without decimals (``1,200``), others as ``num``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return f"{value:,.0f}"
    return num(value)


def when(value: object, zone: tzinfo = UTC) -> str:
    """A time (a ``datetime``, or an ISO-8601 text with an offset as events carry) in ``zone``; else ``—``."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value or "—"  # shown as it came rather than hidden
    if not isinstance(moment, datetime):
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def epoch(value: object, zone: tzinfo = UTC) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return when(datetime.fromtimestamp(value, tz=UTC), zone)


FILTERS = {"num": num, "qty": qty, "when": when, "epoch": epoch}
