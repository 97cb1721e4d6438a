"""Strategy throughput, standalone (no NATS): pure strategy calls/s and the worker engine's signals/s.

The engine figure includes the bar/insight join, state and outbox in DuckDB, with a publisher that drops
the signals; the reference is the pure strategies on the same data, measured in the same run.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.strategy.adapters.store import StrategyStore
from services.strategy.config import parse_config
from services.strategy.domain import StrategyContext
from services.strategy.handlers import StrategyEngine
from shared.contracts.analytics import ConfluenceInsight, InsightEvent, Regime
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent, Target

SYMBOLS = [f"SYM{i:03d}" for i in range(40)]
BARS = 250
BATCH = 100  # the ConsumerSpec default
T0 = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
CONFIG = {
    "instances": [
        {"name": "sma_cross", "id": "sma", "params": {"fast": 5, "slow": 20, "allow_short": True}},
        {"name": "ehma_pivot", "id": "ehma", "params": {"period": 16}},
        {"name": "confluence_consumer", "id": "cc", "params": {"allow_short": True}},
        {"name": "regime_adaptive", "id": "ra", "params": {"allow_short": True}},
    ]
}
REGIMES: list[Regime] = ["trending_up", "ranging", "trending_down", "volatile"]


def data(symbol: str, seed: int) -> list[tuple[OHLCVBar, InsightEvent]]:
    rows = []
    for i in range(BARS):
        ts = T0 + timedelta(minutes=i)
        close = 100 + 10 * math.sin((i + seed) / 9) + 3 * math.sin((i * 7 + seed) / 4)
        b = OHLCVBar.build(
            producer="bench",
            key=OHLCVBar.key_for(symbol, "1m", ts.isoformat()),
            occurred_at=ts,
            symbol=symbol,
            interval="1m",
            timestamp=ts,
            open=close,
            high=close + 0.5,
            low=close - 0.5,
            close=close,
            volume=1.0,
            source="synthetic",
        )
        score = math.sin((i + seed) / 5)
        ins = InsightEvent.build(
            producer="bench",
            key=str(b.event_id),
            occurred_at=ts,
            bar_event_id=b.event_id,
            insight=ConfluenceInsight(
                symbol=symbol,
                interval="1m",
                as_of=ts,
                bias="bullish" if score > 0.3 else "bearish" if score < -0.3 else "neutral",
                confidence=abs(score),
                score=score,
                regime=REGIMES[(i // 25 + seed) % 4],
                components=(),
            ),
            indicators={"rsi_14": 50 + 45 * math.sin((i + seed) / 3)},
        )
        rows.append((b, ins))
    return rows


def bench_pure(feeds: dict[str, list[tuple[OHLCVBar, InsightEvent]]]) -> tuple[float, int]:
    instances = parse_config(CONFIG)
    calls = signals = 0
    started = time.perf_counter()
    for symbol, rows in feeds.items():
        for inst in instances:
            s = inst.strategy
            target: Target = "flat"
            state: dict[str, Any] = {}
            for b, ins in rows:
                decision, state = s.on_bar(
                    b,
                    ins if s.requires_insights else None,
                    StrategyContext(symbol, s.instance_id, target, state),
                )
                calls += 1
                if decision is not None:
                    signals, target = signals + 1, decision.target
    return calls / (time.perf_counter() - started), signals


async def bench_engine(
    feeds: dict[str, list[tuple[OHLCVBar, InsightEvent]]], db: Path
) -> tuple[float, float, int]:
    sent: list[int] = [0]

    async def publish(batch: Sequence[SignalEvent]) -> None:
        sent[0] += len(batch)

    store = StrategyStore.open(db)
    engine = StrategyEngine(store, parse_config(CONFIG), publish)
    bars = [
        b for i in range(BARS) for rows in feeds.values() for b in [rows[i][0]]
    ]  # time order, as published
    insights = [x for i in range(BARS) for rows in feeds.values() for x in [rows[i][1]]]
    started = time.perf_counter()
    for start in range(0, len(bars), BATCH):  # consumer-sized batches of each stream, alternating
        await engine.on_bars(bars[start : start + BATCH])
        await engine.on_insights(insights[start : start + BATCH])
    elapsed = time.perf_counter() - started
    store.close()
    return len(bars) / elapsed, sent[0] / elapsed, sent[0]


def main() -> int:
    feeds = {s: data(s, n) for n, s in enumerate(SYMBOLS)}
    calls_per_s, pure_signals = bench_pure(feeds)
    with tempfile.TemporaryDirectory() as tmp:
        bars_per_s, signals_per_s, sent = asyncio.run(bench_engine(feeds, Path(tmp) / "bench.duckdb"))
    assert sent == pure_signals, (sent, pure_signals)
    print(f"pure strategies: {calls_per_s:,.0f} on_bar calls/s ({pure_signals} signals)")
    print(f"engine (1 worker, DuckDB): {bars_per_s:,.0f} bars/s, {signals_per_s:,.0f} signals/s")
    ref = f"pure {calls_per_s / 4:,.0f} bars/s (4 strategies)"
    result = {"name": "strategy engine, 1 worker", "value": bars_per_s, "unit": "bars/s", "reference": ref}
    result |= {"ratio": bars_per_s / (calls_per_s / 4), "goal": ""}
    print("RESULT " + json.dumps(result))
    print(
        "RESULT "
        + json.dumps({"name": "strategy signals, 1 worker", "value": signals_per_s, "unit": "signals/s"})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
