"""Series and bars for the analytics tests: random walks with gaps, flat runs and spikes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from shared.contracts.market_data import OHLCVBar

T0 = datetime(2024, 1, 1, 9, 15, tzinfo=UTC)


def walk(seed: int, length: int, start: float = 100.0) -> list[tuple[float, float, float]]:
    """(high, low, close) rows of a seeded random walk with gaps, flat runs and spikes."""
    rng = random.Random(seed)
    close = start
    rows: list[tuple[float, float, float]] = []
    while len(rows) < length:
        kind = rng.random()
        if kind < 0.05:  # flat run
            rows.extend([(close, close, close)] * rng.randint(1, 30))
            continue
        if kind < 0.08:  # gap
            close *= rng.choice([0.8, 0.9, 1.1, 1.25])
        step = close * rng.gauss(0, 0.01)
        if kind > 0.98:  # spike
            step *= 15
        prev, close = close, max(close + step, 0.01)
        rows.append((max(prev, close) * (1 + rng.random() * 0.01), min(prev, close) * 0.995, close))
    return rows[:length]


def bars(symbol: str, length: int, seed: int = 1, interval: str = "1m") -> list[OHLCVBar]:
    out = []
    prev_close = 100.0
    for i, (high, low, close) in enumerate(walk(seed, length)):
        t = T0 + timedelta(minutes=i)
        open_ = min(max(prev_close, low), high)
        out.append(
            OHLCVBar.build(
                producer="marketdata",
                key=OHLCVBar.key_for(symbol, interval, t.isoformat()),
                occurred_at=t,
                symbol=symbol,
                interval=interval,
                timestamp=t,
                open=open_,
                high=high,
                low=low,
                close=close,
                volume=1000.0 + i,
                source="synthetic",
            )
        )
        prev_close = close
    return out
