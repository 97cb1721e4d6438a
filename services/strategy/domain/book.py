"""One symbol's working set and the deterministic bar/insight join (pure: no I/O).

Join rule (deterministic whatever the arrival order of the two streams): bars of a symbol are processed in
bar-time order. For each strategy instance a cursor remembers the last bar done. A strategy that needs
insights stops at the first bar whose insight (``insight.bar_event_id == bar.event_id``) has not arrived,
so later bars wait too; price-only strategies never see insights and never wait. A bar or insight at or
before every cursor of its symbol is a redelivery: skipped.

A ``SymbolBook`` is everything a worker needs to carry on with a symbol: the cursors (target, strategy
state, last bar), the bars and insights still waiting, and the outbox (the signals of the last change,
possibly not yet published). It serialises to canonical JSON, so whichever worker owns the symbol next
continues exactly where the last one stopped.
"""

from __future__ import annotations

import bisect
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.strategy.domain.base import BarBatch, BaseStrategy, StrategyContext
from services.strategy.domain.signals import build_signal
from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent, Target

Strategies = Sequence[BaseStrategy[Any]]
FORMAT = 1


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where one instance stands on one symbol."""

    target: Target
    state: dict[str, Any]
    last_bar_ts: datetime | None


NEW = Cursor("flat", {}, None)


@dataclass
class SymbolBook:
    symbol: str
    cursors: dict[str, Cursor] = field(default_factory=dict)  # by strategy instance id
    bars: list[OHLCVBar] = field(default_factory=list)  # waiting, in bar-time order
    insights: dict[uuid.UUID, InsightEvent] = field(default_factory=dict)  # by bar event id
    outbox: list[SignalEvent] = field(default_factory=list)
    owner: str | None = None  # the worker (``name/token``) that claimed the symbol last
    #: the event ids of ``bars`` (not serialised): a redelivered bar is found without a scan of all the
    #: bars waiting, which under a backlog (bars ahead of their insights) are hundreds
    _bar_ids: set[uuid.UUID] = field(default_factory=set, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._bar_ids = {b.event_id for b in self.bars}

    # -- the join -----------------------------------------------------------------------------------
    def apply(
        self,
        strategies: Strategies,
        bars: Sequence[OHLCVBar] = (),
        insights: Sequence[InsightEvent] = (),
    ) -> list[SignalEvent] | None:
        """Take new inputs and run every strategy as far as it can; the new signals, in order, or None
        when every input was a redelivery (nothing changed)."""
        changed = False
        for bar in bars:
            changed |= self._wanted(strategies, bar.timestamp) and self._add_bar(bar)
        if any(s.requires_insights for s in strategies):
            for ins in insights:
                if self._wanted(strategies, ins.insight.as_of) and ins.bar_event_id not in self.insights:
                    self.insights[ins.bar_event_id] = ins
                    changed = True
        if not changed:
            return None
        signals: list[SignalEvent] = []
        for strategy in strategies:
            signals += self._run(strategy)
        self._forget_done(strategies)
        return signals

    def cursor(self, strategy: BaseStrategy[Any]) -> Cursor:
        return self.cursors.get(strategy.instance_id, NEW)

    def _floor(self, strategies: Strategies) -> datetime | None:
        """The bar time every instance has passed (None: some instance has not started)."""
        stamps = [self.cursor(s).last_bar_ts for s in strategies]
        if not stamps or any(s is None for s in stamps):
            return None
        return min(s for s in stamps if s is not None)

    def _wanted(self, strategies: Strategies, ts: datetime) -> bool:
        if not strategies:
            return False  # no instance runs on this symbol
        floor = self._floor(strategies)
        return floor is None or ts > floor  # else every instance is past it: a redelivery

    def _add_bar(self, bar: OHLCVBar) -> bool:
        if bar.event_id in self._bar_ids:
            return False
        bisect.insort(self.bars, bar, key=_timestamp)
        self._bar_ids.add(bar.event_id)
        return True

    def _forget_done(self, strategies: Strategies) -> None:
        floor = self._floor(strategies)
        if floor is None:
            return
        done = self.bars[: bisect.bisect_right(self.bars, floor, key=_timestamp)]
        self.bars = self.bars[len(done) :]
        for b in done:
            self._bar_ids.discard(b.event_id)
            self.insights.pop(b.event_id, None)

    def _run(self, strategy: BaseStrategy[Any]) -> list[SignalEvent]:
        """Every bar after the instance's cursor it can run (up to the first bar whose insight has not
        arrived, when it needs insights), in one ``on_bars`` call."""
        cursor = self.cursor(strategy)
        last = cursor.last_bar_ts
        start = 0 if last is None else bisect.bisect_right(self.bars, last, key=_timestamp)
        runnable = self.bars[start:]
        insights: list[InsightEvent] | None = None
        if strategy.requires_insights:
            insights = []
            for bar in runnable:
                insight = self.insights.get(bar.event_id)
                if insight is None:
                    break  # wait for it: order per symbol is kept
                insights.append(insight)
            runnable = runnable[: len(insights)]
        if not runnable:
            return []
        ctx = StrategyContext(self.symbol, strategy.instance_id, cursor.target, cursor.state)
        decisions, state = strategy.on_bars(BarBatch.of(runnable), insights, ctx)
        target = cursor.target
        out: list[SignalEvent] = []
        for index, decision in decisions:
            insight = insights[index] if insights is not None else None
            out.append(build_signal(strategy, runnable[index], insight, decision))
            target = decision.target
        self.cursors[strategy.instance_id] = Cursor(target, state, runnable[-1].timestamp)
        return out

    def to_json(self) -> bytes:
        """Canonical JSON: the same book always gives the same bytes."""
        doc = {
            "format": FORMAT,
            "symbol": self.symbol,
            "cursors": {
                k: {
                    "target": c.target,
                    "state": c.state,
                    "last_bar_ts": c.last_bar_ts.isoformat() if c.last_bar_ts else None,
                }
                for k, c in sorted(self.cursors.items())
            },
            "bars": [b.to_json().decode() for b in self.bars],
            "insights": [self.insights[k].to_json().decode() for k in sorted(self.insights, key=str)],
            "outbox": [s.to_json().decode() for s in self.outbox],
            "owner": self.owner,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> SymbolBook:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            raise ValueError(f"unknown symbol book format {doc.get('format')!r}")
        cursors = {
            k: Cursor(
                c["target"],
                c["state"],
                datetime.fromisoformat(c["last_bar_ts"]) if c["last_bar_ts"] else None,
            )
            for k, c in doc["cursors"].items()
        }
        insights = [InsightEvent.from_json(i) for i in doc["insights"]]
        return cls(
            symbol=doc["symbol"],
            cursors=cursors,
            bars=[OHLCVBar.from_json(b) for b in doc["bars"]],
            insights={i.bar_event_id: i for i in insights},
            outbox=[SignalEvent.from_json(s) for s in doc["outbox"]],
            owner=doc.get("owner"),
        )


def _timestamp(bar: OHLCVBar) -> datetime:
    return bar.timestamp
