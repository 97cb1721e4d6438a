"""How long each JetStream stream keeps its messages (``max_age``), and ``BASTION_STREAM_MAX_AGE``.

The streams carry events from one service to the next; what the services keep lives in their own DuckDB
files (bars in marketdata's and analytics', insights in analytics', signals, orders and trades in
execution's). So the high-volume streams are bounded by age and the ones that are the record are not:

| stream | default | why |
|---|---|---|
| MARKETDATA, ANALYTICS, SIGNALS | 30 days | grow with bars x symbols; a month covers any restart or warm-up |
| EXECUTION, AUDIT, DLQ | forever | orders, fills and the audit trail; dead letters wait for a person |

``BASTION_STREAM_MAX_AGE`` overrides some of them: ``NAME=AGE`` pairs, comma-separated, where ``AGE`` is a
number of days (``90d``) or hours (``12h``), or ``forever``; e.g. ``MARKETDATA=90d,SIGNALS=forever``.
An age is at least the dedupe window (one hour), which JetStream requires and restarts rely on.

A message older than its stream's age is removed even if a consumer has not read it yet, so an age must be
longer than any service may stay down. The age is applied when a stream is created; on existing streams
``bastion streams apply`` sets it (services only warn at start when a stream's age differs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.contracts.subjects import STREAMS

#: JetStream drops a republished event id seen within this window. Covers restarts and replays.
DEDUPE_WINDOW_SECONDS = 3600.0
DAY = 86400.0
#: seconds per stream; 0 means no age limit
DEFAULT_MAX_AGE: Mapping[str, float] = {
    "MARKETDATA": 30 * DAY,
    "ANALYTICS": 30 * DAY,
    "SIGNALS": 30 * DAY,
    "EXECUTION": 0.0,
    "AUDIT": 0.0,
    "DLQ": 0.0,
}
ENV = "BASTION_STREAM_MAX_AGE"
_AGE = re.compile(r"([0-9]+)([dh])")


def parse_age(text: str, *, where: str = ENV) -> float:
    """``30d``, ``12h`` or ``forever`` as seconds (0 for forever), or ``ValueError`` saying what is wrong."""
    value = text.strip().lower()
    if value == "forever":
        return 0.0
    match = _AGE.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{where}: age {text.strip()!r} is not a number of days (30d), hours (12h) or 'forever'"
        )
    seconds = int(match.group(1)) * (DAY if match.group(2) == "d" else 3600.0)
    if seconds < DEDUPE_WINDOW_SECONDS:
        raise ValueError(f"{where}: age {text.strip()!r} is shorter than the dedupe window of 1h")
    return seconds


def parse_max_age(text: str) -> dict[str, float]:
    """The retention of every stream: ``DEFAULT_MAX_AGE`` with the ``NAME=AGE`` pairs of ``text`` applied."""
    out = dict(DEFAULT_MAX_AGE)
    seen: set[str] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, age = item.partition("=")
        name = name.strip().upper()
        if not sep or not name:
            raise ValueError(f"{ENV}: {item!r} is not NAME=AGE (e.g. MARKETDATA=90d)")
        if name not in STREAMS:
            raise ValueError(f"{ENV}: unknown stream {name!r}; the streams are {', '.join(STREAMS)}")
        if name in seen:
            raise ValueError(f"{ENV}: {name} is given twice")
        seen.add(name)
        out[name] = parse_age(age, where=f"{ENV} {name}")
    return out


def age_differs(actual: float | None, wanted: float) -> bool:
    """A stream's ``max_age`` on the server (None or 0: forever) is not the one wanted (to the second)."""
    return abs((actual or 0.0) - wanted) >= 1.0


def describe_age(seconds: float | None) -> str:
    """``30d``, ``12h``, ``forever``: the form ``BASTION_STREAM_MAX_AGE`` takes (other ages in seconds)."""
    if not seconds or seconds <= 0:
        return "forever"
    if seconds % DAY == 0:
        return f"{int(seconds // DAY)}d"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    return f"{seconds:g}s"
