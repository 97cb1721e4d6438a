"""Jinja filters for numbers and times (display only)."""

from __future__ import annotations

from datetime import UTC, datetime


def num(value: object, digits: int = 2) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"{value:,.{digits}f}"


def when(value: object) -> str:
    if not isinstance(value, datetime):
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def epoch(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return when(datetime.fromtimestamp(value, tz=UTC))


FILTERS = {"num": num, "when": when, "epoch": epoch}
