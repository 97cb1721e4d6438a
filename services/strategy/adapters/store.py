"""``strategy-<worker>.duckdb``: pending bars and insights, per-(instance, symbol) state, the signal log.

Signals are an outbox: written in the same transaction as the state that produced them with
``published = false``, marked published once JetStream acked them. A crash in between republishes them at
start-up with the same event id, which JetStream's dedupe window drops.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from shared.contracts.analytics import InsightEvent
from shared.contracts.market_data import OHLCVBar
from shared.contracts.signals import SignalEvent, Target
from shared.runtime.duck import open_db

MIGRATIONS = [
    """
    CREATE TABLE pending_bars (
        bar_event_id UUID PRIMARY KEY, symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, body VARCHAR NOT NULL
    );
    CREATE TABLE insights (
        bar_event_id UUID PRIMARY KEY, symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, body VARCHAR NOT NULL
    );
    CREATE TABLE strategy_state (
        strategy_id VARCHAR NOT NULL, symbol VARCHAR NOT NULL, target VARCHAR NOT NULL,
        state VARCHAR NOT NULL, last_bar_ts TIMESTAMPTZ NOT NULL, PRIMARY KEY (strategy_id, symbol)
    );
    CREATE TABLE signals (
        event_id UUID PRIMARY KEY, strategy_id VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
        bar_ts TIMESTAMPTZ NOT NULL, target VARCHAR NOT NULL, body VARCHAR NOT NULL,
        published BOOLEAN NOT NULL DEFAULT false
    );
    """
]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where one instance stands on one symbol."""

    target: Target
    state: dict[str, Any]
    last_bar_ts: datetime | None


@dataclass(slots=True)
class Batch:
    """What one handler call changes: buffered inputs, forgotten inputs, cursors, new signals."""

    bars: list[OHLCVBar] = field(default_factory=list)
    insights: list[InsightEvent] = field(default_factory=list)
    forget: list[uuid.UUID] = field(default_factory=list)  # bar event ids every instance is past
    cursors: dict[tuple[str, str], Cursor] = field(default_factory=dict)
    signals: list[SignalEvent] = field(default_factory=list)


class StrategyStore:
    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: Path | str) -> StrategyStore:
        return cls(open_db(path, MIGRATIONS))

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- loading (once, at start-up) ---------------------------------------------------------------
    def pending_bars(self) -> list[OHLCVBar]:
        rows = self.conn.execute("SELECT body FROM pending_bars ORDER BY symbol, ts").fetchall()
        return [OHLCVBar.from_json(r[0]) for r in rows]

    def insights(self) -> list[InsightEvent]:
        rows = self.conn.execute("SELECT body FROM insights ORDER BY symbol, ts").fetchall()
        return [InsightEvent.from_json(r[0]) for r in rows]

    def cursors(self) -> dict[tuple[str, str], Cursor]:
        rows = self.conn.execute(
            "SELECT strategy_id, symbol, target, state, last_bar_ts FROM strategy_state"
        ).fetchall()
        return {(r[0], r[1]): Cursor(r[2], json.loads(r[3]), r[4]) for r in rows}

    def unpublished(self) -> list[SignalEvent]:
        rows = self.conn.execute(
            "SELECT body FROM signals WHERE NOT published ORDER BY symbol, bar_ts, strategy_id"
        ).fetchall()
        return [SignalEvent.from_json(r[0]) for r in rows]

    def signal_log(self) -> list[SignalEvent]:
        rows = self.conn.execute("SELECT body FROM signals ORDER BY symbol, bar_ts, strategy_id").fetchall()
        return [SignalEvent.from_json(r[0]) for r in rows]

    # -- one batch's effects, in one transaction ------------------------------------------------------
    def commit(self, batch: Batch) -> None:
        """Write everything one handler call changed, atomically."""
        done = set(batch.forget)  # inputs used up within this batch never need to be written
        bars = [
            (b.event_id, b.symbol, b.timestamp, b.to_json()) for b in batch.bars if b.event_id not in done
        ]
        insights = [
            (i.bar_event_id, i.insight.symbol, i.insight.as_of, i.to_json())
            for i in batch.insights
            if i.bar_event_id not in done
        ]
        with self.transaction():
            self._insert_events("pending_bars", bars)
            self._insert_events("insights", insights)
            if batch.forget:
                ids = [str(i) for i in batch.forget]
                self.conn.execute(
                    "DELETE FROM pending_bars WHERE bar_event_id IN (SELECT unnest(?::UUID[]))", [ids]
                )
                self.conn.execute(
                    "DELETE FROM insights WHERE bar_event_id IN (SELECT unnest(?::UUID[]))", [ids]
                )
            self._save_cursors(batch.cursors)
            self._insert_signals(batch.signals)

    def _insert_events(self, table: str, rows: list[tuple[uuid.UUID, str, datetime, bytes]]) -> None:
        if not rows:
            return
        ids, symbols, stamps, bodies = zip(*rows, strict=True)
        self.conn.execute(
            f"INSERT OR IGNORE INTO {table} SELECT unnest(?::UUID[]), unnest(?::VARCHAR[]), "
            "unnest(?::TIMESTAMPTZ[]), unnest(?::VARCHAR[])",
            [[str(i) for i in ids], list(symbols), list(stamps), [b.decode() for b in bodies]],
        )

    def _save_cursors(self, cursors: dict[tuple[str, str], Cursor]) -> None:
        if not cursors:
            return
        keys = list(cursors)
        self.conn.execute(
            "INSERT OR REPLACE INTO strategy_state SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::TIMESTAMPTZ[])",
            [
                [k[0] for k in keys],
                [k[1] for k in keys],
                [cursors[k].target for k in keys],
                [json.dumps(cursors[k].state, sort_keys=True) for k in keys],
                [cursors[k].last_bar_ts for k in keys],
            ],
        )

    def _insert_signals(self, signals: Sequence[SignalEvent]) -> None:
        if not signals:
            return
        self.conn.execute(
            "INSERT OR IGNORE INTO signals SELECT "
            "unnest(?::UUID[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
            "unnest(?::TIMESTAMPTZ[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), false",
            [
                [str(s.event_id) for s in signals],
                [s.strategy_id for s in signals],
                [s.symbol for s in signals],
                [s.bar_timestamp for s in signals],
                [s.target for s in signals],
                [s.to_json().decode() for s in signals],
            ],
        )

    def mark_published(self, event_ids: Sequence[uuid.UUID]) -> None:
        if event_ids:
            self.conn.execute(
                "UPDATE signals SET published = true WHERE event_id IN (SELECT unnest(?::UUID[]))",
                [[str(i) for i in event_ids]],
            )
