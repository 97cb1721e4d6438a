"""From a bar and its indicator values to the ``InsightEvent`` the service publishes. Pure.

The event id derives from the bar's event id (``Event.build``), the time is the bar's time and every
float is rounded to 12 significant digits, so the same bars give byte-identical payloads, live or batch.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.analytics.domain.confluence import ConfluenceConfig, evaluate
from services.analytics.domain.indicators import INDICATOR_NAMES, Values
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar

PRODUCER = "analytics"


@dataclass(frozen=True, slots=True)
class BarRow:
    """What analytics keeps of a bar."""

    symbol: str
    interval: str
    timestamp: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    event_id: uuid.UUID
    correlation_id: uuid.UUID

    @classmethod
    def of(cls, bar: OHLCVBar) -> BarRow:
        return cls(
            bar.symbol,
            bar.interval,
            bar.timestamp,
            bar.open,
            bar.high,
            bar.low,
            bar.close,
            bar.volume,
            bar.event_id,
            bar.correlation_id,
        )


def stable(value: float | None) -> float | None:
    """``value`` rounded to 12 significant digits; None for None or NaN."""
    if value is None or value != value:
        return None
    return float(f"{value:.12g}")


def build_insight(bar: BarRow, values: Values, cfg: ConfluenceConfig) -> InsightEvent:
    clean = {name: stable(values.get(name)) for name in INDICATOR_NAMES}
    insight = evaluate(bar.symbol, bar.interval, bar.timestamp, bar.close, clean, cfg)
    fields: dict[str, Any] = {
        "producer": PRODUCER,
        "key": str(bar.event_id),
        "occurred_at": bar.timestamp,
        "correlation_id": bar.correlation_id,
        "causation_id": bar.event_id,
        "bar_event_id": bar.event_id,
        "insight": insight,
        "indicators": clean,
    }
    # the values are this module's own: built without validating again when they hold what the contract
    # asks (finite floats, a UTC time), as the insight itself (see confluence.py)
    finite = all(v is None or (type(v) is float and math.isfinite(v)) for v in clean.values())
    if finite and bar.timestamp.tzinfo is UTC:
        return InsightEvent.build_trusted(**fields)
    return InsightEvent.build(**fields)
