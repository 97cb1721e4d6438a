"""``marketdata.duckdb``: the bars table, written through short-lived connections.

DuckDB lets one process write a file at a time, and ``bastion feed replay`` must be able to run while the
service runs, so every operation opens the file, does its work in one transaction and closes it. When the
other process holds the file, it retries for ``lock_timeout`` seconds and then raises ``StoreBusyError``.

Bars are an outbox: stored with ``published = false``, marked once JetStream acked them. A replay stores
only bars it has not seen (unique on symbol, interval, timestamp) and publishes only bars not yet published,
so replaying a file twice stores and publishes each bar once, and a crash between storing and publishing
is repaired by the next replay.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from shared.contracts.market_data import OHLCVBar
from shared.runtime.duck import is_lock_error, open_db

MIGRATIONS = [
    """
    CREATE TABLE bars (
        symbol VARCHAR NOT NULL,
        interval VARCHAR NOT NULL,
        "timestamp" TIMESTAMPTZ NOT NULL,
        open DOUBLE NOT NULL,
        high DOUBLE NOT NULL,
        low DOUBLE NOT NULL,
        close DOUBLE NOT NULL,
        volume DOUBLE NOT NULL,
        source VARCHAR NOT NULL,
        event_id UUID NOT NULL,
        published BOOLEAN NOT NULL DEFAULT false,
        PRIMARY KEY (symbol, interval, "timestamp")
    )
    """
]

_FIELDS = ("symbol", "interval", "timestamp", "open", "high", "low", "close", "volume", "source", "event_id")


class StoreBusyError(RuntimeError):
    """Another process kept ``marketdata.duckdb`` locked for longer than the retry window."""


@dataclass(frozen=True)
class SaveResult:
    stored: int
    pending: list[OHLCVBar]
    #: symbol -> (new bars older than its newest stored one, that bar's time): a backfill, which analytics
    #: and the strategies, following each symbol forward, skip
    behind: dict[str, tuple[int, datetime]] = field(default_factory=dict)


@dataclass(frozen=True)
class SymbolSummary:
    symbol: str
    interval: str
    bars: int
    first: datetime
    last: datetime
    last_close: float
    prev_close: float | None
    synthetic: bool


class BarStore:
    def __init__(self, path: Path, *, lock_timeout: float = 10.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one unit of work, retried while another process holds the file."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.02
        while True:
            try:
                conn = open_db(self.path, MIGRATIONS)
                conn.execute("SELECT 1").fetchall()  # finish open_db's last result before register()
                break
            except duckdb.IOException as exc:
                if not is_lock_error(exc):
                    raise
                if time.monotonic() > deadline:
                    raise StoreBusyError(
                        f"{self.path} is locked by another process for over {self.lock_timeout:.0f}s; "
                        "try again"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
        try:
            yield conn
        finally:
            conn.close()

    def save(self, bars: Sequence[OHLCVBar]) -> SaveResult:
        """Store the bars not stored yet; return how many were new and every given bar still unpublished."""
        if not bars:
            return SaveResult(0, [])
        frame = pd.DataFrame([_row(b) for b in bars], columns=list(_FIELDS))
        with self.connect() as conn:
            conn.register("incoming", frame)
            conn.execute("BEGIN")
            before = _count(conn)
            behind = {r[0]: (int(r[1]), r[2]) for r in conn.execute(_BEHIND_SQL).fetchall()}
            conn.execute(_INSERT_SQL)
            stored = _count(conn) - before
            rows = conn.execute(_PENDING_SQL).fetchall()
            conn.execute("COMMIT")
        waiting = {r[0] for r in rows}
        return SaveResult(stored, [b for b in bars if b.event_id in waiting], behind)

    def mark_published(self, bars: Sequence[OHLCVBar]) -> None:
        if not bars:
            return
        ids = pd.DataFrame({"event_id": [str(b.event_id) for b in bars]})
        with self.connect() as conn:
            conn.register("done", ids)
            conn.execute(
                "UPDATE bars SET published = true WHERE event_id IN (SELECT event_id::UUID FROM done)"
            )

    def count(self) -> int:
        with self.connect() as conn:
            return _count(conn)

    def summaries(self) -> list[SymbolSummary]:
        """Per symbol, its most recent interval: bar count, first/last time, last and previous close."""
        with self.connect() as conn:
            rows = conn.execute(_SUMMARY_SQL).fetchall()
        return [SymbolSummary(*row) for row in rows]

    def intervals(self, symbols: Sequence[str]) -> dict[str, list[str]]:
        """The intervals of the stored bars of each of ``symbols`` that has any. A file not made yet holds
        none, and is not made by asking (a replay that cannot reach NATS leaves no empty database)."""
        if not symbols or not self.path.exists():
            return {}
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT DISTINCT symbol, interval FROM bars WHERE list_contains(?, symbol) ORDER BY ALL",
                [list(symbols)],
            ).fetchall()
        found: dict[str, list[str]] = {}
        for symbol, interval in rows:
            found.setdefault(symbol, []).append(interval)
        return found

    def last_bar(self, symbol: str, interval: str) -> tuple[datetime, float] | None:
        with self.connect() as conn:
            row = conn.execute(
                'SELECT "timestamp", close FROM bars WHERE symbol = ? AND interval = ? '
                'ORDER BY "timestamp" DESC LIMIT 1',
                [symbol, interval],
            ).fetchone()
        return (row[0], float(row[1])) if row else None


def _row(bar: OHLCVBar) -> tuple[Any, ...]:
    return (
        bar.symbol,
        bar.interval,
        bar.timestamp,
        bar.open,
        bar.high,
        bar.low,
        bar.close,
        bar.volume,
        bar.source,
        str(bar.event_id),
    )


def _count(conn: duckdb.DuckDBPyConnection) -> int:
    row = conn.execute("SELECT count(*) FROM bars").fetchone()
    return int(row[0]) if row else 0


_INSERT_SQL = """
INSERT OR IGNORE INTO bars (symbol, interval, "timestamp", open, high, low, close, volume, source, event_id)
SELECT symbol, interval, "timestamp", open, high, low, close, volume, source, event_id::UUID FROM incoming
"""

_PENDING_SQL = """
SELECT b.event_id FROM bars b JOIN incoming i USING (symbol, interval, "timestamp")
WHERE NOT b.published
"""

#: Per symbol, how many incoming bars are new and older than its newest stored bar, and that bar's time.
_BEHIND_SQL = """
WITH mine AS (
    SELECT symbol, interval, "timestamp" FROM bars WHERE symbol IN (SELECT DISTINCT symbol FROM incoming)
), newest AS (
    SELECT symbol, interval, max("timestamp") AS newest FROM mine GROUP BY ALL
), older AS (
    SELECT i.symbol, i.interval, i."timestamp", n.newest FROM incoming i
    JOIN newest n ON n.symbol = i.symbol AND n.interval = i.interval AND i."timestamp" < n.newest
)
SELECT o.symbol, count(*), any_value(o.newest) FROM older o
ANTI JOIN mine m ON m.symbol = o.symbol AND m.interval = o.interval AND m."timestamp" = o."timestamp"
GROUP BY o.symbol ORDER BY o.symbol
"""

_SUMMARY_SQL = """
WITH ranked AS (
    SELECT symbol, interval, "timestamp", close, source,
           row_number() OVER (PARTITION BY symbol, interval ORDER BY "timestamp" DESC) AS rn
    FROM bars
), per AS (
    SELECT symbol, interval, count(*) AS bars, min("timestamp") AS first, max("timestamp") AS last,
           max(close) FILTER (WHERE rn = 1) AS last_close, max(close) FILTER (WHERE rn = 2) AS prev_close,
           bool_and(source = 'synthetic') AS synthetic
    FROM ranked GROUP BY symbol, interval
), pick AS (
    SELECT *, row_number() OVER (PARTITION BY symbol ORDER BY last DESC, bars DESC) AS k FROM per
)
SELECT symbol, interval, bars, first, last, last_close, prev_close, synthetic FROM pick WHERE k = 1
ORDER BY symbol
"""
