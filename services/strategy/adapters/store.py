"""``strategy-<worker>.duckdb``: the log of the signals this worker published.

The per-symbol state (cursors, waiting inputs, outbox) lives in the NATS key-value bucket
``STRATEGY_STATE`` (``adapters/nats_kv.py``) so that any worker can take a symbol over; the DuckDB file
keeps what this worker did, for inspection and the ``strategy.signals.<worker>`` snapshot.
Migration 2 drops the tables of the single-worker design whose content now lives in the bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb

from shared.contracts.signals import SignalEvent
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
    """,
    """
    DROP TABLE pending_bars;
    DROP TABLE insights;
    DROP TABLE strategy_state;
    ALTER TABLE signals ADD COLUMN logged_at TIMESTAMPTZ;
    """,
]


_INSERT_SIGNALS = (
    "{verb} INTO signals SELECT "
    "unnest(?::UUID[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
    "unnest(?::TIMESTAMPTZ[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), true, now()"
)


class SignalLog:
    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: Path | str) -> SignalLog:
        return cls(open_db(path, MIGRATIONS))

    def close(self) -> None:
        self.conn.close()

    def record(self, signals: Sequence[SignalEvent]) -> None:
        """Log published signals (a signal already logged is kept once).

        A plain INSERT first: in DuckDB it costs half of an INSERT OR IGNORE, and a signal is logged twice
        only when a new owner republishes an outbox. A duplicate fails the whole statement (autocommit: no
        row of it stays), and the batch goes in again with OR IGNORE."""
        if not signals:
            return
        rows = [
            [str(s.event_id) for s in signals],
            [s.strategy_id for s in signals],
            [s.symbol for s in signals],
            [s.bar_timestamp for s in signals],
            [s.target for s in signals],
            [s.to_json().decode() for s in signals],
        ]
        try:
            self.conn.execute(_INSERT_SIGNALS.format(verb="INSERT"), rows)
        except duckdb.ConstraintException:
            self.conn.execute(_INSERT_SIGNALS.format(verb="INSERT OR IGNORE"), rows)

    def signals(self) -> list[SignalEvent]:
        rows = self.conn.execute("SELECT body FROM signals ORDER BY symbol, bar_ts, strategy_id").fetchall()
        return [SignalEvent.from_json(r[0]) for r in rows]

    def recent(self, limit: int = 200) -> list[SignalEvent]:
        """The last ``limit`` signals logged, oldest first."""
        rows = self.conn.execute(
            "SELECT body FROM (SELECT body, logged_at, bar_ts, symbol, strategy_id FROM signals "
            "ORDER BY logged_at DESC, bar_ts DESC, symbol DESC, strategy_id DESC LIMIT ?) "
            "ORDER BY logged_at, bar_ts, symbol, strategy_id",
            [limit],
        ).fetchall()
        return [SignalEvent.from_json(r[0]) for r in rows]
