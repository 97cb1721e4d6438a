"""``execution.duckdb``: core state, the outbox of every produced event, inputs for tracing, the audit chain.

One batch is one transaction: new state, outbox rows, audit rows and processed-event ids commit together,
so after a crash a redelivered input is skipped and its outputs are (re)published from the outbox with the
same event ids (JetStream drops the copies).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from services.execution.domain.audit import AuditRow
from shared.runtime.duck import already_processed, mark_processed, open_db

MIGRATIONS = [
    """
    CREATE TABLE core_state (id INTEGER PRIMARY KEY, state VARCHAR NOT NULL);
    CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
    CREATE TABLE outbox (
        seq BIGINT PRIMARY KEY, event_id UUID NOT NULL, kind VARCHAR NOT NULL, subject VARCHAR NOT NULL,
        order_id UUID, signal_id UUID, occurred_at TIMESTAMPTZ NOT NULL, payload VARCHAR NOT NULL
    );
    CREATE TABLE signals (
        signal_id UUID PRIMARY KEY, symbol VARCHAR, strategy_id VARCHAR, target VARCHAR,
        bar_event_id UUID, insight_event_id UUID, bar_timestamp TIMESTAMPTZ, occurred_at TIMESTAMPTZ
    );
    CREATE TABLE audit (
        seq BIGINT PRIMARY KEY, kind VARCHAR NOT NULL, ref_id UUID NOT NULL, payload VARCHAR NOT NULL,
        prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL
    );
    """
]

OUTBOX_COLUMNS = ["seq", "event_id", "kind", "subject", "order_id", "signal_id", "occurred_at", "payload"]
SIGNAL_COLUMNS = [
    "signal_id",
    "symbol",
    "strategy_id",
    "target",
    "bar_event_id",
    "insight_event_id",
    "bar_timestamp",
    "occurred_at",
]


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    event_id: str
    subject: str
    payload: bytes


@dataclass
class Batch:
    """Everything one input batch changes, committed at once."""

    consumer: str
    processed: list[uuid.UUID]
    state_json: str
    outbox: list[dict[str, Any]]
    audit: list[AuditRow]
    signals: list[dict[str, Any]]


class ExecutionStore:
    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: Path | str) -> ExecutionStore:
        return cls(open_db(path, MIGRATIONS))

    def close(self) -> None:
        self.conn.close()

    # -- reads ------------------------------------------------------------------------------------------
    def load_state(self) -> str | None:
        row = self.conn.execute("SELECT state FROM core_state WHERE id = 1").fetchone()
        return str(row[0]) if row else None

    def processed(self, consumer: str, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return already_processed(self.conn, consumer, ids)

    def next_outbox_seq(self) -> int:
        row = self.conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()
        return int(row[0]) + 1 if row else 1

    def audit_head(self) -> AuditRow | None:
        rows = list(self.audit_rows(latest_only=True))
        return rows[0] if rows else None

    def audit_rows(self, latest_only: bool = False) -> Iterator[AuditRow]:
        sql = "SELECT seq, kind, ref_id, payload, prev_hash, hash FROM audit ORDER BY seq"
        if latest_only:
            sql += " DESC LIMIT 1"
        cursor = self.conn.execute(sql)
        while chunk := cursor.fetchmany(5000):
            for seq, kind, ref_id, payload, prev_hash, hash_ in chunk:
                yield AuditRow(int(seq), kind, ref_id, payload, prev_hash, hash_)

    def sent_upto(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'outbox_sent'").fetchone()
        return int(row[0]) if row else 0

    def unsent(self, limit: int = 5000) -> list[OutboxRow]:
        rows = self.conn.execute(
            "SELECT seq, event_id, subject, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            [self.sent_upto(), limit],
        ).fetchall()
        return [OutboxRow(int(s), str(e), subj, p.encode()) for s, e, subj, p in rows]

    def recent(self, kind: str, limit: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT payload FROM (SELECT seq, payload FROM outbox WHERE kind = ? ORDER BY seq DESC LIMIT ?) "
            "ORDER BY seq",
            [kind, limit],
        ).fetchall()
        return [r[0] for r in rows]

    # -- writes -----------------------------------------------------------------------------------------
    def commit(self, batch: Batch) -> None:
        conn = self.conn
        conn.execute("BEGIN")
        try:
            conn.execute("INSERT OR REPLACE INTO core_state VALUES (1, ?)", [batch.state_json])
            _append(conn, "outbox", batch.outbox, OUTBOX_COLUMNS)
            _append(conn, "signals", batch.signals, SIGNAL_COLUMNS, ignore=True)
            audit = [row.__dict__ for row in batch.audit]
            _append(conn, "audit", audit, ["seq", "kind", "ref_id", "payload", "prev_hash", "hash"])
            mark_processed(conn, batch.consumer, batch.processed)
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise

    def mark_sent(self, seq: int) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('outbox_sent', ?)", [str(seq)])


def _append(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    rows: list[dict[str, Any]],
    columns: list[str],
    ignore: bool = False,
) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=columns)
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, uuid.UUID)).any():
            frame[col] = frame[col].map(lambda v: None if v is None else str(v))
    conn.register("_rows", frame)
    try:
        verb = "INSERT OR IGNORE" if ignore else "INSERT"
        conn.execute(f"{verb} INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM _rows")  # noqa: S608
    finally:
        conn.unregister("_rows")


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """For ``bastion audit``: read-only, so it never takes the writer's place (stop the service, or copy)."""
    return duckdb.connect(str(path), read_only=True)


def trace_rows(conn: duckdb.DuckDBPyConnection, order_id: uuid.UUID) -> dict[str, Any]:
    """The chain bar -> insight -> signal -> decision -> order -> fill of one order, from the file."""
    orders = conn.execute(
        "SELECT kind, payload FROM outbox WHERE order_id = ? ORDER BY seq", [str(order_id)]
    ).fetchall()
    if not orders:
        return {}
    out: dict[str, Any] = {"order_events": [p for k, p in orders if k == "bastion.exec.order"]}
    out["trades"] = [p for k, p in orders if k == "bastion.exec.trade"]
    sig = conn.execute(
        "SELECT signal_id FROM outbox WHERE order_id = ? AND signal_id IS NOT NULL LIMIT 1", [str(order_id)]
    ).fetchone()
    if sig:
        dec = conn.execute(
            "SELECT payload FROM outbox WHERE kind = 'bastion.risk.decision' AND signal_id = ?", [sig[0]]
        ).fetchone()
        out["decision"] = dec[0] if dec else None
        cols = ", ".join(SIGNAL_COLUMNS)
        row = conn.execute(f"SELECT {cols} FROM signals WHERE signal_id = ?", [sig[0]]).fetchone()  # noqa: S608
        out["signal"] = dict(zip(SIGNAL_COLUMNS, row, strict=True)) if row else None
    return out
