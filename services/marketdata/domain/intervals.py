"""Bar intervals (``1m``, ``5m``, ``1h``, ``1d``, ``1w``) as durations."""

from __future__ import annotations

import re
from datetime import timedelta

_INTERVAL_RE = re.compile(r"^([1-9][0-9]{0,3})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BadIntervalError(ValueError):
    """An interval that is not a number and a unit."""


def interval_seconds(interval: str) -> int:
    """Seconds in ``interval``, or ``BadIntervalError``."""
    match = _INTERVAL_RE.fullmatch(interval.strip())
    if match is None:
        raise BadIntervalError(
            f"invalid interval {interval!r}: use a number and a unit s, m, h, d or w (e.g. 1m, 5m, 1h, 1d)"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def interval_delta(interval: str) -> timedelta:
    return timedelta(seconds=interval_seconds(interval))
