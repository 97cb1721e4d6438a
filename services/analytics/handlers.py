"""Bars in, insights out. HANDLERS: ``OHLCVBar -> AnalyticsService.on_bars``.

Per symbol the service keeps the streaming ``IndicatorSet``, the last bar time and the last 300 bars with
their values (for the snapshot). Each call commits bars, values, insights and a checkpoint of each touched
symbol's ``IndicatorSet`` in one transaction, then publishes the insights (event ids derived from the bar,
so JetStream drops republished copies), then writes the snapshots. The first time a symbol is seen after
start-up its state is rebuilt from ``analytics.duckdb``: from the checkpoint when it covers the last stored
bar, else by replaying every stored bar. Either way a restarted service continues exactly where the file
stops.

A bar at or before the symbol's last bar time is not processed: if it is the stored bar itself
(a redelivery, possibly after a crash between commit and publish) its stored insight is republished;
otherwise it is recorded in ``ignored_bars`` with its reason (``duplicate``: another bar at the same time,
``out_of_order``: older than the last bar, ``interval_mismatch``: a second interval of a symbol) and
logged. Either way it is acked and never counted twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from services.analytics.adapters.store import AnalyticsStore, Changes, Ignored
from services.analytics.domain.confluence import ConfluenceConfig
from services.analytics.domain.indicators import SNAPSHOT_NAMES, IndicatorSet, Values
from services.analytics.domain.indicators.state import StateFormatError, dump_state, load_state
from services.analytics.domain.insight import PRODUCER, BarRow, build_insight, stable
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar

log = structlog.get_logger()

SNAPSHOT_BARS = 300
Publish = Callable[[Sequence[InsightEvent]], Awaitable[None]]
PutSnapshot = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class SymbolState:
    indicators: IndicatorSet = field(default_factory=IndicatorSet)
    interval: str | None = None
    last_ts: datetime | None = None
    recent: deque[tuple[BarRow, list[float | None]]] = field(
        default_factory=lambda: deque(maxlen=SNAPSHOT_BARS)
    )
    insight: InsightEvent | None = None

    def advance(self, bar: BarRow) -> Values:
        values = self.indicators.update(bar.high, bar.low, bar.close)
        self.remember(bar, values)
        return values

    def remember(self, bar: BarRow, values: Values) -> None:
        self.interval, self.last_ts = bar.interval, bar.timestamp
        self.recent.append((bar, [stable(values.get(name)) for name in SNAPSHOT_NAMES]))


class AnalyticsService:
    def __init__(
        self, store: AnalyticsStore, publish: Publish, put_snapshot: PutSnapshot, config: ConfluenceConfig
    ) -> None:
        self.store = store
        self.publish = publish
        self.put_snapshot = put_snapshot
        self.config = config
        self.states: dict[str, SymbolState] = {}
        self.ignored = 0

    def state(self, symbol: str) -> SymbolState:
        """The symbol's streaming state, rebuilt from the file on first use."""
        found = self.states.get(symbol)
        if found is None:
            found = self._from_checkpoint(symbol) or self._from_replay(symbol)
            body = self.store.latest_insight(symbol)
            found.insight = InsightEvent.from_json(body) if body else None
            self.states[symbol] = found
        return found

    def _from_checkpoint(self, symbol: str) -> SymbolState | None:
        saved = self.store.checkpoint(symbol)
        if saved is None or saved[0] != self.store.last_bar_ts(symbol):
            return None
        try:
            found = SymbolState(indicators=load_state(saved[1]))
        except StateFormatError as exc:
            log.warning("analytics.checkpoint_unusable", symbol=symbol, error=str(exc))
            return None
        for bar, values in self.store.recent(symbol, SNAPSHOT_BARS):
            found.remember(bar, values)
        return found

    def _from_replay(self, symbol: str) -> SymbolState:
        found = SymbolState()
        for bar in self.store.bars(symbol):
            found.advance(bar)
        return found

    async def on_bars(self, bars: Sequence[OHLCVBar]) -> None:
        changes, republish = Changes(), []
        touched: dict[str, None] = {}
        try:
            for bar in bars:
                again = self._take(BarRow.of(bar), changes)
                if again is not None:
                    republish.append(again)
                touched[bar.symbol] = None
            self._checkpoint(changes)
            self.store.commit(changes)
        except BaseException:
            self.states.clear()  # memory must never run ahead of the file: rebuild on next use
            raise
        await self.publish([*republish, *changes.insights])
        for symbol in touched:
            await self.put_snapshot(f"analytics.{symbol}", self.snapshot(symbol))

    def _checkpoint(self, changes: Changes) -> None:
        for symbol in dict.fromkeys(b.symbol for b in changes.bars):
            st = self.states[symbol]
            if st.last_ts is not None:
                changes.checkpoints.append((symbol, st.last_ts, dump_state(st.indicators)))

    def _take(self, row: BarRow, changes: Changes) -> InsightEvent | None:
        """Process one bar into ``changes``; returns a stored insight to republish for a duplicate."""
        st = self.state(row.symbol)
        reason = self._reject_reason(st, row)
        if reason is None:
            values = st.advance(row)
            st.insight = build_insight(row, values, self.config)
            changes.bars.append(row)
            changes.values.append(values)
            changes.insights.append(st.insight)
            return None
        if any(p.bar_event_id == row.event_id for p in changes.insights):
            return None  # a copy inside this very batch: published once with the batch
        body = self.store.insight_body(row.event_id)
        if body is not None:  # a redelivery of a stored bar: republish, JetStream drops the copy
            return InsightEvent.from_json(body)
        self.ignored += 1
        log.warning("analytics.bar_ignored", symbol=row.symbol, at=row.timestamp.isoformat(), reason=reason)
        changes.ignored.append(Ignored(row.event_id, row.symbol, row.timestamp, reason, st.last_ts))
        return None

    @staticmethod
    def _reject_reason(st: SymbolState, row: BarRow) -> str | None:
        if st.interval is not None and row.interval != st.interval:
            return "interval_mismatch"
        if st.last_ts is None or row.timestamp > st.last_ts:
            return None
        return "duplicate" if row.timestamp == st.last_ts else "out_of_order"

    def snapshot(self, symbol: str) -> dict[str, Any]:
        """The ``analytics.<SYM>`` value of docs/snapshots.md."""
        st = self.state(symbol)
        rows = list(st.recent)
        return {
            "kind": "analytics.symbol",
            "version": 1,
            "producer": PRODUCER,
            "updated_at": st.last_ts.isoformat() if st.last_ts else None,
            "symbol": symbol,
            "bars": [
                {
                    "t": b.timestamp.isoformat(),
                    "o": b.open,
                    "h": b.high,
                    "l": b.low,
                    "c": b.close,
                    "v": b.volume,
                }
                for b, _ in rows
            ],
            "indicators": {name: [v[i] for _, v in rows] for i, name in enumerate(SNAPSHOT_NAMES)},
            "insight": st.insight.model_dump(mode="json", by_alias=True) if st.insight else None,
        }

    def detail(self) -> dict[str, str]:
        return {"symbols": str(len(self.states)), "ignored_bars": str(self.ignored)}
