"""Bars and insights in, signals out: the join, the per-symbol run of every instance, the outbox.

Join rule (deterministic whatever the arrival order of the two streams): bars of a symbol are processed in
bar-time order. For each (instance, symbol) a cursor remembers the last bar done. A strategy that needs
insights stops at the first bar whose insight (``insight.bar_event_id == bar.event_id``) has not arrived,
so later bars wait too; price-only strategies never see insights and never wait. A bar or insight at or
before every cursor of its symbol is a redelivery: skipped.

The working set (waiting bars, their insights, cursors) lives in memory and every handler call writes its
changes to DuckDB in one transaction before the signals are published and the input acked; a failed write
reloads the working set from DuckDB, so memory never runs ahead of the file.

HANDLERS: ``OHLCVBar -> on_bars``, ``InsightEvent -> on_insights``.
"""

from __future__ import annotations

import asyncio
import bisect
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from services.strategy.adapters.store import Batch, Cursor, StrategyStore
from services.strategy.config import Instance, instances_for
from services.strategy.domain import StrategyContext
from services.strategy.domain.signals import build_signal
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent

Publish = Callable[[Sequence[SignalEvent]], Awaitable[None]]
NEW = Cursor("flat", {}, None)


class StrategyEngine:
    def __init__(self, store: StrategyStore, instances: Sequence[Instance], publish: Publish) -> None:
        self.store = store
        self.instances = list(instances)
        self.publish = publish
        self._lock = asyncio.Lock()
        self._load()

    def _load(self) -> None:
        self.cursors = self.store.cursors()
        self.bars: dict[str, list[OHLCVBar]] = {}
        for bar in self.store.pending_bars():
            self.bars.setdefault(bar.symbol, []).append(bar)
        self._pending_ids = {b.event_id for bars in self.bars.values() for b in bars}
        self.insights: dict[uuid.UUID, InsightEvent] = {i.bar_event_id: i for i in self.store.insights()}
        self._outbox = self.store.unpublished()

    async def on_bars(self, bars: Sequence[OHLCVBar]) -> None:
        async with self._lock:
            batch = Batch()
            for bar in bars:
                if self._wanted(bar.symbol, bar.timestamp) and self._add_bar(bar):
                    batch.bars.append(bar)
            await self._finish(batch, {b.symbol for b in batch.bars})

    async def on_insights(self, insights: Sequence[InsightEvent]) -> None:
        async with self._lock:
            batch = Batch()
            for ins in insights:
                if (
                    self._wanted(ins.insight.symbol, ins.insight.as_of)
                    and ins.bar_event_id not in self.insights
                ):
                    self.insights[ins.bar_event_id] = ins
                    batch.insights.append(ins)
            await self._finish(batch, {i.insight.symbol for i in batch.insights})

    async def flush(self) -> None:
        """Publish the signals not yet acked by JetStream, in order, then mark them published."""
        if self._outbox:
            await self.publish(self._outbox)
            self.store.mark_published([s.event_id for s in self._outbox])
            self._outbox = []

    async def _finish(self, batch: Batch, symbols: set[str]) -> None:
        for symbol in sorted(symbols):
            self._drain(symbol, batch)
        try:
            self.store.commit(batch)
        except Exception:
            self._load()  # memory must not run ahead of the file
            raise
        self._outbox.extend(batch.signals)
        await self.flush()

    def _on(self, symbol: str) -> list[Instance]:
        return instances_for(self.instances, symbol)

    def _cursor(self, instance: Instance, symbol: str) -> Cursor:
        return self.cursors.get((instance.strategy.instance_id, symbol), NEW)

    def _floor(self, symbol: str) -> datetime | None:
        """The bar time every instance on ``symbol`` has passed (None: some instance has not started)."""
        stamps = [self._cursor(i, symbol).last_bar_ts for i in self._on(symbol)]
        if not stamps or any(s is None for s in stamps):
            return None
        return min(s for s in stamps if s is not None)

    def _wanted(self, symbol: str, ts: datetime) -> bool:
        if not self._on(symbol):
            return False  # no instance runs on this symbol
        floor = self._floor(symbol)
        return floor is None or ts > floor  # else every instance is past it: a redelivery

    def _add_bar(self, bar: OHLCVBar) -> bool:
        pending = self.bars.setdefault(bar.symbol, [])
        if bar.event_id in self._pending_ids:
            return False
        self._pending_ids.add(bar.event_id)
        bisect.insort(pending, bar, key=lambda b: b.timestamp)
        return True

    def _drain(self, symbol: str, batch: Batch) -> None:
        for instance in self._on(symbol):
            self._run(instance, symbol, batch)
        floor = self._floor(symbol)
        if floor is not None:
            done = [b for b in self.bars.get(symbol, []) if b.timestamp <= floor]
            if done:
                self.bars[symbol] = self.bars[symbol][len(done) :]
                for b in done:
                    self.insights.pop(b.event_id, None)
                    self._pending_ids.discard(b.event_id)
                    batch.forget.append(b.event_id)

    def _run(self, instance: Instance, symbol: str, batch: Batch) -> None:
        strategy = instance.strategy
        key = (strategy.instance_id, symbol)
        cursor = self._cursor(instance, symbol)
        last = cursor.last_bar_ts
        for bar in self.bars.get(symbol, []):
            if last is not None and bar.timestamp <= last:
                continue
            insight = None
            if strategy.requires_insights:
                insight = self.insights.get(bar.event_id)
                if insight is None:
                    break  # wait for it: order per symbol is kept
            ctx = StrategyContext(symbol, strategy.instance_id, cursor.target, cursor.state)
            decision, state = strategy.on_bar(bar, insight, ctx)
            target = cursor.target
            if decision is not None:
                batch.signals.append(build_signal(strategy, bar, insight, decision))
                target = decision.target
            cursor = Cursor(target, state, bar.timestamp)
        if cursor.last_bar_ts != last:
            self.cursors[key] = batch.cursors[key] = cursor
