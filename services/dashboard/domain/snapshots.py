"""What the dashboard knows about one KV snapshot, and tolerant readers for producer values.

Producers are written by other services and evolve; every reader here accepts a missing or odd field and
falls back to "not shown" instead of failing the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class Snap:
    """One KV entry: its key, decoded JSON object (empty when undecodable) and the server's put time."""

    key: str
    value: dict[str, Any]
    put_at: datetime
    revision: int = 0


Snapshots = dict[str, Snap]


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_float(value: Any) -> float | None:
    """A number from a float, int or Decimal string; None for anything else (including NaN)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO-8601 string or epoch seconds; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def epoch(value: Any) -> int | None:
    """Epoch seconds (the chart's time unit) of a time value."""
    parsed = parse_time(value)
    return int(parsed.timestamp()) if parsed else None
