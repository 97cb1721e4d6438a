"""The ``marketdata.symbols`` dashboard snapshot (see docs/snapshots.md), built from the bars table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.marketdata.adapters.store import SymbolSummary

KIND = "marketdata.symbols"
VERSION = 1


def symbols_snapshot(summaries: list[SymbolSummary], producer: str, now: datetime) -> dict[str, Any]:
    """``updated_at`` is the newest bar's time (data time); ``now`` only when there are no bars."""
    latest = max((s.last for s in summaries), default=now).astimezone(UTC)
    return {
        "kind": KIND,
        "version": VERSION,
        "producer": producer,
        "updated_at": latest.isoformat(),
        "symbols": {
            s.symbol: {
                "interval": s.interval,
                "bars": s.bars,
                "first": s.first.astimezone(UTC).isoformat(),
                "last": s.last.astimezone(UTC).isoformat(),
                "last_close": s.last_close,
                "prev_close": s.prev_close,
                "synthetic": s.synthetic,
            }
            for s in summaries
        },
    }
