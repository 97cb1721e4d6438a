"""``analytics.duckdb``: the bars analytics consumed with their indicator values, the insights, ignored bars.

Every write of a batch is one transaction; bulk rows go in through Arrow tables (one statement per table,
checkpoints included: DuckDB's ``executemany`` costs ~2 ms a row). Times are stored as TIMESTAMPTZ and read
back in UTC.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from services.analytics.domain.indicators import INDICATOR_NAMES, Values
from services.analytics.domain.insight import BarRow
from shared.contracts.analytics import InsightEvent
from shared.runtime.duck import open_db

_INDICATOR_COLUMNS = ", ".join(f"{name} DOUBLE" for name in INDICATOR_NAMES)
MIGRATIONS = [
    f"""
    CREATE TABLE bars (
        symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, interval VARCHAR NOT NULL,
        open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,
        volume DOUBLE NOT NULL, event_id UUID NOT NULL, correlation_id UUID NOT NULL,
        {_INDICATOR_COLUMNS}, PRIMARY KEY (symbol, ts)
    );
    CREATE TABLE insights (
        symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, event_id UUID NOT NULL,
        bar_event_id UUID NOT NULL, body VARCHAR NOT NULL, PRIMARY KEY (symbol, ts)
    );
    CREATE TABLE ignored_bars (
        event_id UUID PRIMARY KEY, symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
        reason VARCHAR NOT NULL, last_ts TIMESTAMPTZ
    );
    """,
    """
    CREATE TABLE checkpoints (symbol VARCHAR PRIMARY KEY, ts TIMESTAMPTZ NOT NULL, state VARCHAR NOT NULL);
    """,
]
_BAR_COLUMNS = "symbol, ts, interval, open, high, low, close, volume, event_id, correlation_id"


@dataclass(frozen=True, slots=True)
class Ignored:
    """A bar that was not processed, and why (duplicate, out_of_order, interval_mismatch)."""

    event_id: uuid.UUID
    symbol: str
    ts: datetime
    reason: str
    last_ts: datetime | None


@dataclass
class Changes:
    """Everything one handler call writes."""

    bars: list[BarRow] = field(default_factory=list)
    values: list[Values] = field(default_factory=list)
    insights: list[InsightEvent] = field(default_factory=list)
    #: ``insights[i].to_json()``, encoded once for the file and the publish (empty: encoded on commit)
    bodies: list[bytes] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
    checkpoints: list[tuple[str, datetime, str]] = field(default_factory=list)


class AnalyticsStore:
    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        #: symbols known to have a ``checkpoints`` row: their next checkpoint is an UPDATE, cheaper in
        #: DuckDB than INSERT OR REPLACE (a delete and an insert in the primary-key index)
        self._checkpointed: set[str] = set()

    @classmethod
    def open(cls, path: Path | str) -> AnalyticsStore:
        conn = open_db(path, MIGRATIONS)
        conn.execute("SET TimeZone = 'UTC'")
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- reads ------------------------------------------------------------------------------------
    def symbols(self) -> list[str]:
        return [
            r[0] for r in self.conn.execute("SELECT DISTINCT symbol FROM bars ORDER BY symbol").fetchall()
        ]

    def bars(self, symbol: str) -> list[BarRow]:
        rows = self.conn.execute(
            f"SELECT {_BAR_COLUMNS} FROM bars WHERE symbol = ? ORDER BY ts",  # noqa: S608
            [symbol],
        ).fetchall()
        return [BarRow(r[0], r[2], r[1], r[3], r[4], r[5], r[6], r[7], r[8], r[9]) for r in rows]

    def recent(self, symbol: str, n: int) -> list[tuple[BarRow, Values]]:
        """The last ``n`` bars of ``symbol`` with their stored indicator values, oldest first."""
        rows = self.conn.execute(
            f"SELECT {_BAR_COLUMNS}, {', '.join(INDICATOR_NAMES)} FROM bars WHERE symbol = ? "  # noqa: S608
            "ORDER BY ts DESC LIMIT ?",
            [symbol, n],
        ).fetchall()
        return [
            (
                BarRow(r[0], r[2], r[1], r[3], r[4], r[5], r[6], r[7], r[8], r[9]),
                dict(zip(INDICATOR_NAMES, r[10:], strict=True)),
            )
            for r in reversed(rows)
        ]

    def checkpoint(self, symbol: str) -> tuple[datetime, str] | None:
        """The saved streaming state of ``symbol`` and the time of the bar it includes last."""
        row = self.conn.execute("SELECT ts, state FROM checkpoints WHERE symbol = ?", [symbol]).fetchone()
        if row:
            self._checkpointed.add(symbol)
        return (row[0], str(row[1])) if row else None

    def last_bar_ts(self, symbol: str) -> datetime | None:
        row = self.conn.execute("SELECT max(ts) FROM bars WHERE symbol = ?", [symbol]).fetchone()
        return row[0] if row else None

    def insight_body(self, bar_event_id: uuid.UUID) -> str | None:
        row = self.conn.execute(
            "SELECT body FROM insights WHERE bar_event_id = ?", [str(bar_event_id)]
        ).fetchone()
        return str(row[0]) if row else None

    def latest_insight(self, symbol: str) -> str | None:
        row = self.conn.execute(
            "SELECT body FROM insights WHERE symbol = ? ORDER BY ts DESC LIMIT 1", [symbol]
        ).fetchone()
        return str(row[0]) if row else None

    def insight_bodies(self, symbol: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT body FROM insights WHERE symbol = ? ORDER BY ts", [symbol]
        ).fetchall()
        return [str(r[0]) for r in rows]

    def ignored(self) -> list[Ignored]:
        rows = self.conn.execute(
            "SELECT event_id, symbol, ts, reason, last_ts FROM ignored_bars ORDER BY ts"
        ).fetchall()
        return [Ignored(*r) for r in rows]

    def indicator_row(self, symbol: str, ts: datetime) -> Values | None:
        row = self.conn.execute(
            f"SELECT {', '.join(INDICATOR_NAMES)} FROM bars WHERE symbol = ? AND ts = ?",  # noqa: S608
            [symbol, ts],
        ).fetchone()
        return dict(zip(INDICATOR_NAMES, row, strict=True)) if row else None

    # -- writes -----------------------------------------------------------------------------------
    def commit(self, changes: Changes) -> None:
        """Write one batch of new bars (with their values), insights and ignored bars atomically."""
        with self._transaction():
            if changes.bars:
                self._insert("bars", _bars_table(changes.bars, changes.values), "INSERT")
                self._insert("insights", _insights_table(changes.insights, changes.bodies), "INSERT")
            if changes.ignored:
                self._insert("ignored_bars", _ignored_table(changes.ignored), "INSERT OR IGNORE")
            if changes.checkpoints:
                self._save_checkpoints(changes.checkpoints)
        self._checkpointed.update(c[0] for c in changes.checkpoints)

    def _save_checkpoints(self, checkpoints: Sequence[tuple[str, datetime, str]]) -> None:
        known = [c for c in checkpoints if c[0] in self._checkpointed]
        new = [c for c in checkpoints if c[0] not in self._checkpointed]
        if known:
            sql = (
                "UPDATE checkpoints SET ts = _frame.ts, state = _frame.state FROM _frame "
                "WHERE checkpoints.symbol = _frame.symbol"
            )
            row = self._scan(sql, _checkpoints_table(known)).fetchone()
            if row is None or int(row[0]) != len(known):  # a row deleted behind our back: write them all
                new = list(checkpoints)
        if new:
            self._insert("checkpoints", _checkpoints_table(new), "INSERT OR REPLACE")

    def upsert_derived(
        self, bars: Sequence[BarRow], values: Sequence[Values], insights: Sequence[InsightEvent]
    ) -> None:
        """Replace the indicator values and insights of stored bars (``bastion analytics update``)."""
        with self._transaction():
            if bars:
                self._insert("bars", _bars_table(bars, values), "INSERT OR REPLACE")
                self._insert("insights", _insights_table(insights), "INSERT OR REPLACE")

    def _insert(self, table: str, frame: pa.Table, verb: str) -> None:
        cols = ", ".join(frame.column_names)
        self._scan(f"{verb} INTO {table} ({cols}) SELECT {cols} FROM _frame", frame)  # noqa: S608

    def _scan(self, sql: str, frame: pa.Table) -> duckdb.DuckDBPyConnection:
        """Run ``sql``, which reads ``frame`` as ``_frame``: found by DuckDB's replacement scan of this
        function's locals (cheaper than register/unregister, two more calls into DuckDB per statement)."""
        _frame = frame
        try:
            return self.conn.execute(sql)
        except duckdb.CatalogException:  # no replacement scan (a wrapped connection): register the frame
            self.conn.register("_frame", _frame)
            try:
                return self.conn.execute(sql)
            finally:
                self.conn.unregister("_frame")


_TS = pa.timestamp("us", tz="UTC")


def _bars_table(bars: Sequence[BarRow], values: Sequence[Values]) -> pa.Table:
    cols: dict[str, pa.Array] = {
        "symbol": pa.array([b.symbol for b in bars], pa.string()),
        "ts": pa.array([b.timestamp for b in bars], _TS),
        "interval": pa.array([b.interval for b in bars], pa.string()),
        "event_id": pa.array([str(b.event_id) for b in bars], pa.string()),
        "correlation_id": pa.array([str(b.correlation_id) for b in bars], pa.string()),
    }
    for name in ("open", "high", "low", "close", "volume"):
        cols[name] = pa.array([getattr(b, name) for b in bars], pa.float64())
    for name in INDICATOR_NAMES:
        cols[name] = pa.array([v.get(name) for v in values], pa.float64())
    return pa.table(cols)


def _insights_table(insights: Sequence[InsightEvent], bodies: Sequence[bytes] = ()) -> pa.Table:
    texts = [b.decode() for b in bodies] if bodies else [i.to_json().decode() for i in insights]
    return pa.table(
        {
            "symbol": pa.array([i.insight.symbol for i in insights], pa.string()),
            "ts": pa.array([i.insight.as_of for i in insights], _TS),
            "event_id": pa.array([str(i.event_id) for i in insights], pa.string()),
            "bar_event_id": pa.array([str(i.bar_event_id) for i in insights], pa.string()),
            "body": pa.array(texts, pa.string()),
        }
    )


def _ignored_table(ignored: Sequence[Ignored]) -> pa.Table:
    return pa.table(
        {
            "event_id": pa.array([str(i.event_id) for i in ignored], pa.string()),
            "symbol": pa.array([i.symbol for i in ignored], pa.string()),
            "ts": pa.array([i.ts for i in ignored], _TS),
            "reason": pa.array([i.reason for i in ignored], pa.string()),
            "last_ts": pa.array([i.last_ts for i in ignored], _TS),
        }
    )


def _checkpoints_table(checkpoints: Sequence[tuple[str, datetime, str]]) -> pa.Table:
    return pa.table(
        {
            "symbol": pa.array([c[0] for c in checkpoints], pa.string()),
            "ts": pa.array([c[1] for c in checkpoints], _TS),
            "state": pa.array([c[2] for c in checkpoints], pa.string()),
        }
    )
