"""Bars in, insights out. HANDLERS: ``OHLCVBar -> AnalyticsService.on_bars``.

Per symbol the service keeps the streaming ``IndicatorSet``, the last bar time and the last 300 bars with
their values (for the snapshot). Each call commits bars, values, insights and a checkpoint of each touched
symbol's ``IndicatorSet`` in one transaction, then publishes the insights (event ids derived from the bar,
so JetStream drops republished copies), then writes the snapshots. The first time a symbol is seen after
start-up its state is rebuilt from ``analytics.duckdb``: from the checkpoint when it covers the last stored
bar, else by replaying every stored bar. Either way a restarted service continues exactly where the file
stops.

Snapshots: called directly (``snapshot_interval=0``, the tests' way) ``on_bars`` writes the snapshot of every
touched symbol before it returns. The service (``__main__``) sets an interval instead: ``on_bars`` only marks
the symbols dirty and ``run_snapshots`` writes them in the background, each symbol at most once per
interval and always its final state (after the interval; every dirty one on ``flush_snapshots`` at stop;
every stored symbol once at start, in case a killed process missed its last write). A snapshot is derived
from committed state and is not part of the delivery guarantee, so it need not delay the ack.
``snapshot_json`` gives the bytes of ``json.dumps(snapshot(symbol))`` from per-bar fragments encoded once.

A bar at or before the symbol's last bar time is not processed: if it is the stored bar itself
(a redelivery, possibly after a crash between commit and publish) its stored insight is republished;
otherwise it is recorded in ``ignored_bars`` with its reason (``duplicate``: another bar at the same time,
``out_of_order``: older than the last bar, ``interval_mismatch``: a second interval of a symbol) and
logged. Either way it is acked and never counted twice.
"""

from __future__ import annotations

import asyncio
import json
import time
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
from services.analytics.recompute import update_symbol
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar

log = structlog.get_logger()

SNAPSHOT_BARS = 300
Publish = Callable[[Sequence[InsightEvent]], Awaitable[None]]
#: Publishes insights with their already encoded bodies (``insight.to_json()``), in order.
PublishEncoded = Callable[[Sequence[tuple[InsightEvent, bytes]]], Awaitable[None]]
PutSnapshot = Callable[[str, dict[str, Any]], Awaitable[None]]
PutSnapshotBytes = Callable[[str, bytes], Awaitable[None]]
_COMPACT = (",", ":")


def _num(value: Any) -> str:
    """``value`` as ``json.dumps`` writes it (a finite float is its ``repr``: the fast path)."""
    if value is None:
        return "null"
    if type(value) is float and value - value == 0.0:
        return float.__repr__(value)
    return json.dumps(value, default=str)


def _fragments(bar: BarRow, values: list[float | None]) -> tuple[str, list[str]]:
    """The JSON of one snapshot bar (``{"t":..,"o":..}``) and of each of its indicator values, exactly as
    ``json.dumps`` writes them inside the whole snapshot."""
    t = json.dumps(bar.timestamp.isoformat())
    o, h, lo, c, v = _num(bar.open), _num(bar.high), _num(bar.low), _num(bar.close), _num(bar.volume)
    return f'{{"t":{t},"o":{o},"h":{h},"l":{lo},"c":{c},"v":{v}}}', [_num(x) for x in values]


@dataclass
class SymbolState:
    indicators: IndicatorSet = field(default_factory=IndicatorSet)
    interval: str | None = None
    last_ts: datetime | None = None
    recent: deque[tuple[BarRow, list[float | None]]] = field(
        default_factory=lambda: deque(maxlen=SNAPSHOT_BARS)
    )
    insight: InsightEvent | None = None
    #: ``_fragments`` of the bars in ``recent``, position by position (filled lazily by ``snapshot_json``)
    encoded: deque[tuple[str, list[str]] | None] = field(default_factory=lambda: deque(maxlen=SNAPSHOT_BARS))
    insight_json: tuple[InsightEvent | None, str] = (None, "null")

    def advance(self, bar: BarRow) -> Values:
        values = self.indicators.update(bar.high, bar.low, bar.close)
        self.remember(bar, values)
        return values

    def remember(self, bar: BarRow, values: Values) -> None:
        self.interval, self.last_ts = bar.interval, bar.timestamp
        self.recent.append((bar, [stable(values.get(name)) for name in SNAPSHOT_NAMES]))
        self.encoded.append(None)  # same maxlen as ``recent``: the two stay aligned


class AnalyticsService:
    def __init__(
        self,
        store: AnalyticsStore,
        publish: Publish,
        put_snapshot: PutSnapshot,
        config: ConfluenceConfig,
        *,
        publish_encoded: PublishEncoded | None = None,
        put_snapshot_bytes: PutSnapshotBytes | None = None,
        snapshot_interval: float = 0.0,
    ) -> None:
        self.store = store
        self.publish = publish
        self.publish_encoded = publish_encoded
        self.put_snapshot = put_snapshot
        self.put_snapshot_bytes = put_snapshot_bytes
        self.snapshot_interval = snapshot_interval
        self.config = config
        self.states: dict[str, SymbolState] = {}
        self.ignored = 0
        self.snapshots_written = 0
        self._dirty: dict[str, None] = {}  # symbols whose snapshot is behind, in order of change
        self._written_at: dict[str, float] = {}  # time.monotonic() of each symbol's last snapshot
        self._wake = asyncio.Event()

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

    def recompute_symbol(self, symbol: str) -> list[InsightEvent]:
        """``bastion analytics update`` of one symbol inside the service (``adapters.control``): recompute
        and upsert from the stored bars, then rebuild the symbol's memory from the file on next use."""
        insights = update_symbol(self.store, symbol, self.config)
        self.states.pop(symbol, None)
        self._dirty[symbol] = None
        self._wake.set()
        return insights

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
        if self.publish_encoded is not None:
            encoded = [(i, i.to_json()) for i in republish]
            await self.publish_encoded([*encoded, *zip(changes.insights, changes.bodies, strict=True)])
        else:
            await self.publish([*republish, *changes.insights])
        if self.snapshot_interval <= 0:
            for symbol in touched:
                await self.put_snapshot(f"analytics.{symbol}", self.snapshot(symbol))
            return
        self._dirty.update(touched)
        self._wake.set()

    # -- throttled snapshots (the service's way) ----------------------------------------------------
    async def run_snapshots(self, stop: asyncio.Event) -> None:
        """Write the dirty snapshots, each symbol at most once per ``snapshot_interval``, until ``stop``.
        Starts with every stored symbol: a process killed before its last throttled write leaves no stale
        snapshot behind (the bars it acked are in the file)."""
        try:
            self._dirty.update(dict.fromkeys(self.store.symbols()))
        except Exception as exc:  # unreadable file: the symbols are written as their bars come
            log.warning("analytics.snapshot_symbols_failed", error=repr(exc))
        while not stop.is_set():
            wait = await self._write_due()
            if wait is None:  # nothing dirty: sleep until a batch marks some
                self._wake.clear()
                waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for w in pending:
                    w.cancel()
            else:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                except TimeoutError:
                    pass

    async def _write_due(self) -> float | None:
        """Write the dirty symbols that are due; seconds until the next one is due, None if none dirty."""
        now = time.monotonic()
        due = [s for s in self._dirty if now - self._written_at.get(s, -1e9) >= self.snapshot_interval]
        for symbol in due:
            try:
                await self._write(symbol)
            except Exception as exc:  # NATS down, file unreadable: keep it dirty, try again later
                log.warning("analytics.snapshot_failed", symbol=symbol, error=repr(exc))
                self._written_at[symbol] = time.monotonic()
        if not self._dirty:
            return None
        first = min(self._written_at.get(s, -1e9) for s in self._dirty)
        return max(0.0, first + self.snapshot_interval - time.monotonic())

    async def _write(self, symbol: str) -> None:
        self._dirty.pop(symbol, None)
        try:
            key = f"analytics.{symbol}"
            if self.put_snapshot_bytes is not None:
                await self.put_snapshot_bytes(key, self.snapshot_json(symbol))
            else:
                await self.put_snapshot(key, self.snapshot(symbol))
        except BaseException:
            self._dirty[symbol] = None
            raise
        self._written_at[symbol] = time.monotonic()
        self.snapshots_written += 1

    async def flush_snapshots(self) -> None:
        """Write every dirty snapshot now (at stop: the final state is never left unwritten)."""
        for symbol in list(self._dirty):
            await self._write(symbol)

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
            changes.bodies.append(st.insight.to_json())
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

    def snapshot_json(self, symbol: str) -> bytes:
        """``json.dumps(self.snapshot(symbol), separators=(",", ":"), default=str)``, byte for byte, from
        per-bar fragments cached in the symbol's state (each bar is encoded once, not once per write)."""
        st = self.state(symbol)
        frags = [
            frag if frag is not None else _fragments(bar, values)
            for (bar, values), frag in zip(st.recent, st.encoded, strict=True)
        ]
        st.encoded = deque(frags, maxlen=SNAPSHOT_BARS)
        if st.insight_json[0] is not st.insight:
            dumped = st.insight.model_dump(mode="json", by_alias=True) if st.insight else None
            st.insight_json = (st.insight, json.dumps(dumped, separators=_COMPACT, default=str))
        head = json.dumps(
            {
                "kind": "analytics.symbol",
                "version": 1,
                "producer": PRODUCER,
                "updated_at": st.last_ts.isoformat() if st.last_ts else None,
                "symbol": symbol,
            },
            separators=_COMPACT,
            default=str,
        )[:-1]
        bars = ",".join(f[0] for f in frags)
        indicators = ",".join(
            f"{json.dumps(name)}:[{','.join(f[1][i] for f in frags)}]"
            for i, name in enumerate(SNAPSHOT_NAMES)
        )
        text = f'{head},"bars":[{bars}],"indicators":{{{indicators}}},"insight":{st.insight_json[1]}}}'
        return text.encode()

    def detail(self) -> dict[str, str]:
        return {"symbols": str(len(self.states)), "ignored_bars": str(self.ignored)}
