"""``execution.duckdb``: core state, the outbox of every produced event, inputs for tracing, the audit chain.

One batch is one transaction: new state, outbox rows, audit rows and processed-event ids commit together,
so after a crash a redelivered input is skipped and its outputs are (re)published from the outbox with the
same event ids (JetStream drops the copies).

The core state is stored in two parts (migration 2): the kept bars of every symbol as rows of
``core_bars`` (one per bar; a batch inserts the new ones and deletes the dropped ones), and everything else
as JSON in ``core_state``. Files written before migration 2 keep their bars inside that JSON; they are read
as they are, and moved to ``core_bars`` by the first commit. The risk manager's seen signal keys are rows of
``seen_signals`` (migration 5; a batch appends the new ones and deletes those dropped), moved there from the
JSON of an older file by its first commit the same way.

``bar_history`` (migration 3) keeps every bar taken in, beyond the kept window, the last ``HISTORY_BARS``
of each symbol: a signal whose bar left the window before the signal arrived (bars replayed far ahead of the
strategies) is decided on these, as if every bar had been kept.

Rows are written with one statement per table and batch (lists bound as arrays and ``unnest``ed). The next
outbox seq and the published mark are kept in memory (they only change here); the published mark
(``meta.outbox_sent``) is written with the next commit or by ``save_sent``: it may lag what was really
published, which only republishes rows with their own event ids after a crash (JetStream drops the copies
within its dedupe window; the service saves the mark within a second).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import TypeAdapter

from services.execution.domain.audit import AuditRow
from shared.runtime.duck import open_db

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
    """,
    """
    CREATE TABLE core_bars (
        symbol VARCHAR NOT NULL, sym_order INTEGER NOT NULL, ts BIGINT NOT NULL, ref VARCHAR NOT NULL
    );
    """,
    """
    CREATE TABLE bar_history (
        symbol VARCHAR NOT NULL, ts BIGINT NOT NULL, open VARCHAR NOT NULL, close VARCHAR NOT NULL,
        event_id UUID NOT NULL, live BOOLEAN NOT NULL
    );
    """,
    # the processed inputs, found by an index of their id (DuckDB's two-column primary key was no index for
    # a lookup: each batch's check scanned the table, ~3 ms per million rows), with the time each was
    # committed, so rows whose message is gone from its stream can be deleted (``prune_processed``); the
    # rows from before are dated to this migration
    """
    CREATE TABLE IF NOT EXISTS processed_events (consumer VARCHAR NOT NULL, event_id UUID NOT NULL);
    CREATE TABLE processed_inputs (
        consumer VARCHAR NOT NULL, event_id UUID NOT NULL, processed_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    INSERT INTO processed_inputs SELECT consumer, event_id, now() FROM processed_events;
    DROP TABLE processed_events;
    CREATE INDEX processed_inputs_event_id ON processed_inputs (event_id);
    """,
    # the risk manager's seen signal keys (up to SEEN_SIGNALS_KEPT), oldest first by seq, out of the state
    # JSON: at 20,000 keys they made it ~1 MB, rewritten by every batch (~4 ms and ~1 MB of WAL a commit)
    """
    CREATE TABLE seen_signals (seq BIGINT NOT NULL, key VARCHAR NOT NULL);
    """,
]
#: A processed input's row is kept this long past its stream's age (``prune_processed``).
PROCESSED_MARGIN_SECONDS = 86_400.0
#: Ids looked up in one query (``processed``): more at once and DuckDB's index lookups slow down.
LOOKUP_CHUNK = 200
#: What ``processed`` weighs to choose the index or a scan (measured on the benchmark machine).
INDEX_MS_PER_ID, SCAN_MS, SCAN_MS_PER_MILLION = 0.03, 2.0, 3.0
#: Bars per symbol kept in ``bar_history``; older ones are deleted when the store opens (10,000 bars: a
#: week of 1-minute bars of a 24-hour market, decades of daily bars).
HISTORY_BARS = 10_000
HISTORY_COLUMNS = ["symbol", "ts", "open", "close", "event_id", "live"]
HISTORY_TYPES = ["VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "UUID", "BOOLEAN"]
#: A bar of the history: symbol, time (microseconds since the epoch), open, close (exact decimal text),
#: event id, from a live feed.
HistoryRow = tuple[str, int, str, str, uuid.UUID, bool]

CHECKPOINT_THRESHOLD = "64MB"
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
class BarsDelta:
    """How the kept bars of one symbol changed in a batch: ``dropped`` (their times, in microseconds since
    the epoch) are deleted and ``added`` (time, BarRef JSON) inserted; ``replace`` deletes every stored bar
    of the symbol first (``added`` is then the whole list; empty when the symbol is gone)."""

    symbol: str
    replace: bool = False
    dropped: list[int] = field(default_factory=list)
    added: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class SeenDelta:
    """How the seen signal keys changed in a batch: ``added`` (the new keys, oldest first) are appended and
    only the newest ``kept`` rows stay; ``replace`` deletes every row first (``added`` is then every key)."""

    added: list[str]
    kept: int
    replace: bool = False


@dataclass
class Batch:
    """Everything one input batch changes, committed at once."""

    consumer: str
    processed: list[uuid.UUID]
    state_json: str  # the core state without its bars
    outbox: list[dict[str, Any]]
    audit: list[AuditRow]
    signals: list[dict[str, Any]]
    bars: list[BarsDelta] = field(default_factory=list)
    history: list[HistoryRow] = field(default_factory=list)  # the bars taken in by this batch
    seen: SeenDelta | None = None


class ExecutionStore:
    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        #: bars live in ``core_bars`` (False: a file from before migration 2 whose bars are in the JSON)
        self.bars_in_table = True
        self._bar_order: dict[str, int] = {}  # symbol -> its place in the state's (insertion-ordered) dict
        #: the seen signal keys live in ``seen_signals`` (False: a file from before migration 5, keys in JSON)
        self.seen_in_table = True
        self._seen_rows = self._seen_seq = 0  # rows of ``seen_signals`` and the highest seq among them
        self._next_seq = self._read_next_seq()
        self._sent = self._read_sent()
        self._sent_saved = self._sent
        self._unsent = self._read_unsent()  # rows committed and not published yet, in seq order
        row = conn.execute("SELECT count(*) FROM processed_inputs").fetchone()
        self._processed_rows = int(row[0]) if row else 0  # kept up to date by commit and prune

    @classmethod
    def open(cls, path: Path | str) -> ExecutionStore:
        conn = open_db(path, MIGRATIONS)
        # DuckDB checkpoints (folds the WAL into the file) when the WAL reaches this size, inside the COMMIT
        # that crosses it: at the default 16 MB a busy service stalled a batch ~0.1-0.3 s every few seconds.
        # Durability is the WAL's either way; a larger WAL only makes the replay after a crash longer.
        conn.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        conn.execute(
            "DELETE FROM bar_history WHERE (symbol, ts) IN (SELECT symbol, ts FROM ("
            "  SELECT symbol, ts, row_number() OVER (PARTITION BY symbol ORDER BY ts DESC) AS n"
            "  FROM bar_history"
            ") WHERE n > ?)",
            [HISTORY_BARS],
        )
        return cls(conn)

    def close(self) -> None:
        self.conn.close()

    # -- reads ------------------------------------------------------------------------------------------
    def load_state(self) -> str | None:
        """The core state as JSON, its bars put back from ``core_bars`` and its seen signal keys from
        ``seen_signals``; None before the first commit."""
        row = self.conn.execute("SELECT state FROM core_state WHERE id = 1").fetchone()
        rows = self.conn.execute(
            "SELECT symbol, sym_order, ref FROM core_bars ORDER BY sym_order, ts"
        ).fetchall()
        seen = self.conn.execute("SELECT seq, key FROM seen_signals ORDER BY seq").fetchall()
        self._bar_order = {}
        self._seen_rows, self._seen_seq = len(seen), (seen[-1][0] if seen else 0)
        if not row:
            return None
        data = json.loads(row[0])
        self.bars_in_table = "bars" not in data
        if self.bars_in_table:
            bars: dict[str, list[Any]] = {}
            for symbol, order, ref in rows:
                self._bar_order[symbol] = int(order)
                bars.setdefault(symbol, []).append(json.loads(ref))
            data["bars"] = bars
        risk = data.setdefault("risk", {})
        self.seen_in_table = "seen_signals" not in risk
        if self.seen_in_table:
            risk["seen_signals"] = [key for _, key in seen]
        return json.dumps(data)

    def traded_by_strategy(self) -> list[tuple[str, str, str, str]]:
        """(strategy_id, symbol, side, quantity) of every trade in the outbox, through its order's accepted
        event: what rebuilds the strategies' books of a state saved before books existed."""
        return self.conn.execute(
            "SELECT json_extract_string(o.payload, '$.strategy_id'),"
            " json_extract_string(t.payload, '$.symbol'), json_extract_string(t.payload, '$.side'),"
            " json_extract_string(t.payload, '$.quantity')"
            " FROM outbox t JOIN outbox o ON o.order_id = t.order_id AND o.kind = ?"
            " AND json_extract_string(o.payload, '$.status') = 'accepted'"
            " WHERE t.kind = ? ORDER BY t.seq",
            ["bastion.exec.order", "bastion.exec.trade"],
        ).fetchall()

    def bars_before(self, symbol: str, at: int, until: int) -> list[HistoryRow]:
        """The stored bars of ``symbol``, in time order, from the last two at or before ``at`` up to, not
        including, ``until`` (times in microseconds since the epoch)."""
        cols = ", ".join(HISTORY_COLUMNS)
        rows = self.conn.execute(
            f"SELECT {cols} FROM ("  # noqa: S608 (constant column names)
            f"  SELECT {cols} FROM bar_history WHERE symbol = ? AND ts <= ? ORDER BY ts DESC LIMIT 2"
            f") UNION ALL SELECT {cols} FROM bar_history WHERE symbol = ? AND ts > ? AND ts < ? ORDER BY ts",
            [symbol, at, symbol, at, until],
        ).fetchall()
        return [(str(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], bool(r[5])) for r in rows]

    def processed(self, consumer: str, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of ``ids`` ``consumer`` has committed. DuckDB finds them in the index when they go in as a
        list of parameters and the id is the only condition, ``LOOKUP_CHUNK`` at a time (~30 us an id); an
        ``unnest`` of one list parameter makes it scan the table instead (~2 ms, and 3 ms more per million
        rows). A backlog's batch of hundreds on a small table is scanned; a trickle, or a large table, is
        looked up."""
        if len(ids) * INDEX_MS_PER_ID > SCAN_MS + SCAN_MS_PER_MILLION * self._processed_rows / 1e6:
            rows = self.conn.execute(
                "SELECT event_id FROM processed_inputs WHERE consumer = ? AND event_id IN "
                "(SELECT unnest(?::UUID[]))",
                [consumer, [str(i) for i in ids]],
            ).fetchall()
            return {r[0] for r in rows}
        found: set[uuid.UUID] = set()
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = [str(i) for i in ids[start : start + LOOKUP_CHUNK]]
            rows = self.conn.execute(lookup_sql(len(chunk)), chunk).fetchall()
            found.update(event_id for who, event_id in rows if who == consumer)
        return found

    def prune_processed(self, kept: Mapping[str, float]) -> int:
        """Delete the processed rows of each consumer in ``kept`` committed longer ago than its seconds plus
        ``PROCESSED_MARGIN_SECONDS``; returns how many. ``kept`` is each consumer's stream's age (0: forever,
        nothing deleted): JetStream removes a message that age after it was published, which was before
        its row was committed, so no redelivery or replay of the stream can bring it back. Marketdata
        publishes a bar once, so a replayed file does not either."""
        deleted = 0
        for consumer, seconds in sorted(kept.items()):
            if seconds <= 0:
                continue
            row = self.conn.execute(
                "DELETE FROM processed_inputs WHERE consumer = ? AND processed_at < now() - to_seconds(?)",
                [consumer, seconds + PROCESSED_MARGIN_SECONDS],
            ).fetchone()
            deleted += int(row[0]) if row else 0
        self._processed_rows -= deleted
        return deleted

    def next_outbox_seq(self) -> int:
        return self._next_seq

    def _read_next_seq(self) -> int:
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
        """The last outbox seq published (in memory; ``meta.outbox_sent`` may lag it, see the docstring)."""
        return self._sent

    def _read_sent(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'outbox_sent'").fetchone()
        return int(row[0]) if row else 0

    def _read_unsent(self) -> list[OutboxRow]:
        rows = self.conn.execute(
            "SELECT seq, event_id, subject, payload FROM outbox WHERE seq > ? ORDER BY seq", [self._sent]
        ).fetchall()
        return [OutboxRow(int(s), str(e), subj, p.encode()) for s, e, subj, p in rows]

    def unsent(self, limit: int = 5000) -> list[OutboxRow]:
        return self._unsent[:limit]

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
        order = dict(self._bar_order)
        conn.execute("BEGIN")
        try:
            _upsert(
                conn,
                "UPDATE core_state SET state = ? WHERE id = 1",
                "INSERT INTO core_state VALUES (1, ?)",
                batch.state_json,
            )
            _write_bars(conn, batch.bars, order)
            seen_rows, seen_seq = self._write_seen(batch.seen)
            _insert(conn, "bar_history", HISTORY_COLUMNS, HISTORY_TYPES, [list(row) for row in batch.history])
            _insert(
                conn,
                "outbox",
                OUTBOX_COLUMNS,
                OUTBOX_TYPES,
                [[r[c] for c in OUTBOX_COLUMNS] for r in batch.outbox],
            )
            _insert(
                conn,
                "signals",
                SIGNAL_COLUMNS,
                SIGNAL_TYPES,
                [[r[c] for c in SIGNAL_COLUMNS] for r in batch.signals],
            )
            audit = [[a.seq, a.kind, a.ref_id, a.payload, a.prev_hash, a.hash] for a in batch.audit]
            _insert(conn, "audit", AUDIT_COLUMNS, AUDIT_TYPES, audit)
            # plain INSERTs (conflict handling costs DuckDB ~3x): the ids were checked against the table
            # and deduplicated by the handler, a signal is recorded once, when it is first processed
            _insert(
                conn,
                "processed_inputs",
                ["consumer", "event_id"],
                ["VARCHAR", "UUID"],
                [[batch.consumer, key] for key in batch.processed],
            )
            if self._sent != self._sent_saved:
                self._write_sent(self._sent)
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
        self._bar_order = order
        self.bars_in_table = True
        if batch.seen is not None:
            self.seen_in_table = True
            self._seen_rows, self._seen_seq = seen_rows, seen_seq
        self._sent_saved = self._sent
        self._processed_rows += len(batch.processed)
        if batch.outbox:
            self._next_seq = batch.outbox[-1]["seq"] + 1
            self._unsent += [
                OutboxRow(r["seq"], str(r["event_id"]), r["subject"], r["payload"].encode())
                for r in batch.outbox
            ]

    def _write_seen(self, delta: SeenDelta | None) -> tuple[int, int]:
        """Apply ``delta`` to ``seen_signals`` (in the open transaction): the new row count and top seq."""
        rows, top = self._seen_rows, self._seen_seq
        if delta is None:
            return rows, top
        if delta.replace:
            self.conn.execute("DELETE FROM seen_signals")
            rows = top = 0
        seqs = list(range(top + 1, top + 1 + len(delta.added)))
        _insert(
            self.conn,
            "seen_signals",
            ["seq", "key"],
            ["BIGINT", "VARCHAR"],
            list(map(list, zip(seqs, delta.added, strict=True))),
        )
        rows, top = rows + len(seqs), top + len(seqs)
        if rows > delta.kept:  # the oldest keys the risk manager dropped
            self.conn.execute("DELETE FROM seen_signals WHERE seq <= ?", [top - delta.kept])
            rows = delta.kept
        return rows, top

    def mark_sent(self, seq: int) -> None:
        """Rows up to ``seq`` are published; saved with the next commit or ``save_sent``."""
        self._sent = max(self._sent, seq)
        self._unsent = [r for r in self._unsent if r.seq > self._sent]

    def save_sent(self) -> None:
        """Write the published mark now if it moved since it was last written (idle time, shutdown)."""
        if self._sent != self._sent_saved:
            self._write_sent(self._sent)
            self._sent_saved = self._sent

    def _write_sent(self, seq: int) -> None:
        _upsert(
            self.conn,
            "UPDATE meta SET value = ? WHERE key = 'outbox_sent'",
            "INSERT INTO meta VALUES ('outbox_sent', ?)",
            str(seq),
        )


OUTBOX_TYPES = ["BIGINT", "UUID", "VARCHAR", "VARCHAR", "UUID", "UUID", "TIMESTAMPTZ", "VARCHAR"]
SIGNAL_TYPES = ["UUID", "VARCHAR", "VARCHAR", "VARCHAR", "UUID", "UUID", "TIMESTAMPTZ", "TIMESTAMPTZ"]
AUDIT_COLUMNS = ["seq", "kind", "ref_id", "payload", "prev_hash", "hash"]
AUDIT_TYPES = ["BIGINT", "VARCHAR", "UUID", "VARCHAR", "VARCHAR", "VARCHAR"]


def lookup_sql(count: int) -> str:
    """``ExecutionStore.processed``'s query of ``count`` ids: the consumer and id of those committed."""
    marks = ", ".join("?" * count)
    return f"SELECT consumer, event_id FROM processed_inputs WHERE event_id IN ({marks})"  # noqa: S608


def _upsert(conn: duckdb.DuckDBPyConnection, update: str, insert: str, value: str) -> None:
    """UPDATE, else INSERT: cheaper in DuckDB than ``INSERT OR REPLACE`` (which handles conflicts)."""
    row = conn.execute(update, [value]).fetchone()
    if not row or not row[0]:
        conn.execute(insert, [value])


def _param(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def _insert(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[str],
    types: list[str],
    rows: list[list[Any]],
) -> None:
    """All ``rows`` in one statement: each column bound as one typed list and ``unnest``ed."""
    if not rows:
        return
    lists = [[_param(v) for v in col] for col in zip(*rows, strict=True)]
    select = ", ".join(f"unnest(?::{t}[])" for t in types)
    conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select}", lists)


def _write_bars(conn: duckdb.DuckDBPyConnection, deltas: list[BarsDelta], order: dict[str, int]) -> None:
    """Apply ``deltas`` to ``core_bars``; ``order`` (symbol -> place) is updated for new and gone symbols."""
    if not deltas:
        return
    replaced = [d.symbol for d in deltas if d.replace]
    if replaced:
        conn.execute("DELETE FROM core_bars WHERE symbol IN (SELECT unnest(?::VARCHAR[]))", [replaced])
    drop_sym = [d.symbol for d in deltas if not d.replace for _ in d.dropped]
    drop_ts = [ts for d in deltas if not d.replace for ts in d.dropped]
    if drop_ts:
        conn.execute(
            "DELETE FROM core_bars USING (SELECT unnest(?::VARCHAR[]) AS s, unnest(?::BIGINT[]) AS t) AS d "
            "WHERE core_bars.symbol = d.s AND core_bars.ts = d.t",
            [drop_sym, drop_ts],
        )
    rows: list[list[Any]] = []
    for d in deltas:
        if d.replace and not d.added:
            order.pop(d.symbol, None)
            continue
        if d.symbol not in order:
            order[d.symbol] = max(order.values(), default=-1) + 1
        rows += [[d.symbol, order[d.symbol], ts, ref] for ts, ref in d.added]
    _insert(
        conn,
        "core_bars",
        ["symbol", "sym_order", "ts", "ref"],
        ["VARCHAR", "INTEGER", "BIGINT", "VARCHAR"],
        rows,
    )


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
        command = conn.execute(
            "SELECT payload FROM audit WHERE kind = 'bastion.risk.command' AND ref_id = ?", [sig[0]]
        ).fetchone()
        if command:  # a flatten order: the kill-switch command caused it, no signal
            out["command"] = command[0]
            return out
        dec = conn.execute(
            "SELECT payload FROM outbox WHERE kind = 'bastion.risk.decision' AND signal_id = ?", [sig[0]]
        ).fetchone()
        out["decision"] = dec[0] if dec else None
        cols = ", ".join(SIGNAL_COLUMNS)
        row = conn.execute(f"SELECT {cols} FROM signals WHERE signal_id = ?", [sig[0]]).fetchone()  # noqa: S608
        out["signal"] = (
            {c: _as_in_event(v) for c, v in zip(SIGNAL_COLUMNS, row, strict=True)} if row else None
        )
    return out


_JSON_TIME = TypeAdapter(datetime)


def _as_in_event(value: Any) -> Any:
    """A column's value as the event's JSON has it (a time as ``2026-01-05T04:01:00Z``), so a trace from
    the file reads as one from the streams."""
    return _JSON_TIME.dump_python(value, mode="json") if isinstance(value, datetime) else value
