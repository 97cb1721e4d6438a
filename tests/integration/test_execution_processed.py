"""The execution service's processed inputs on a real DuckDB file: carried over from the table of before,
found through their index, and deleted once their stream can no longer deliver them again."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import duckdb
from nats.aio.client import Client as NATS

from services.execution.adapters.store import (
    LOOKUP_CHUNK,
    MIGRATIONS,
    PROCESSED_MARGIN_SECONDS,
    ExecutionStore,
    lookup_sql,
)
from shared.runtime.duck import open_db
from tests.integration.test_execution_support import InProcess, ensure_streams, wait_snapshot, write_config

DAY = 86_400.0


def old_file(path: Path, rows: list[tuple[str, uuid.UUID]]) -> None:
    """A file of migration 3, whose processed inputs were in ``processed_events`` (two-column primary key)."""
    open_db(path, MIGRATIONS[:3]).close()
    conn = duckdb.connect(str(path))
    conn.execute(
        "CREATE TABLE processed_events (consumer VARCHAR NOT NULL, event_id UUID NOT NULL, "
        "PRIMARY KEY (consumer, event_id))"
    )
    conn.executemany("INSERT INTO processed_events VALUES (?, ?)", [[c, str(i)] for c, i in rows])
    conn.close()


def test_the_processed_inputs_of_an_older_file_are_carried_over_and_still_found(tmp_path: Path) -> None:
    bars, signals = [uuid.uuid4() for _ in range(3)], [uuid.uuid4() for _ in range(2)]
    old_file(tmp_path / "e.duckdb", [("bars", i) for i in bars] + [("signals", i) for i in signals])
    store = ExecutionStore.open(tmp_path / "e.duckdb")
    try:
        assert store.processed("bars", [*bars, *signals, uuid.uuid4()]) == set(bars)  # each consumer its own
        assert store.processed("signals", signals) == set(signals)
        assert store.processed("bars", []) == set()
        tables = {r[0] for r in store.conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "processed_events" not in tables
        # dated to the migration: none is old enough to go
        assert store.prune_processed({"bars": DAY, "signals": DAY}) == 0
    finally:
        store.close()


def test_a_lookup_goes_through_the_index_not_a_scan_of_the_table(tmp_path: Path) -> None:
    store = ExecutionStore.open(tmp_path / "e.duckdb")
    try:
        store.conn.execute(  # three of DuckDB's row groups (122,880 rows each) of other inputs
            "INSERT INTO processed_inputs SELECT 'bars', uuid(), now() FROM range(300000)"
        )
        mine = [uuid.uuid4() for _ in range(LOOKUP_CHUNK + 5)]
        store.conn.executemany("INSERT INTO processed_inputs VALUES ('signals', ?, now())", [[str(mine[0])]])
        for ids in (mine, mine[:3]):  # a batch of hundreds is scanned for, a few are looked up
            assert store.processed("signals", ids) == {mine[0]}
            assert store.processed("bars", ids) == set()
        plan = store.conn.execute(
            "EXPLAIN ANALYZE " + lookup_sql(LOOKUP_CHUNK), [str(i) for i in mine[:LOOKUP_CHUNK]]
        ).fetchall()[0][1]
        assert "Type: Index Scan" in plan, plan
        scanned = re.search(r"Row Groups Scanned: (\d+) / (\d+)", plan)
        assert scanned is not None, plan
        assert int(scanned.group(1)) == 0 < 3 <= int(scanned.group(2)), plan  # none of the table read
    finally:
        store.close()


def test_rows_older_than_their_streams_age_and_a_day_are_deleted_and_the_rest_kept(tmp_path: Path) -> None:
    store = ExecutionStore.open(tmp_path / "e.duckdb")
    try:
        ages = {"bars": 31, "signals": 31, "commands": 400}  # days since each was committed
        rows = {(consumer, days): uuid.uuid4() for consumer in ages for days in (1, 29, ages[consumer])}
        store.conn.executemany(
            "INSERT INTO processed_inputs VALUES (?, ?, now() - to_days(?))",
            [[consumer, str(key), days] for (consumer, days), key in rows.items()],
        )
        # MARKETDATA keeps 30 days, SIGNALS 29, EXECUTION forever (0)
        kept = {"bars": 30 * DAY, "signals": 29 * DAY, "commands": 0.0}
        assert PROCESSED_MARGIN_SECONDS == DAY
        assert store.prune_processed(kept) == 2  # bars of 31 days (> 30 + 1); signals of 31 (> 29 + 1)
        left = {(c, d) for (c, d), key in rows.items() if store.processed(c, [key])}
        assert left == {
            ("bars", 1),
            ("bars", 29),
            ("signals", 1),
            ("signals", 29),  # 29 days: not older than 29 + 1
            ("commands", 1),
            ("commands", 29),
            ("commands", 400),  # its stream keeps everything
        }
        assert store.prune_processed(kept) == 0
    finally:
        store.close()


async def test_the_running_service_prunes_by_the_ages_its_streams_have_on_the_server(
    nc: NATS, nats_url: str, tmp_path: Path
) -> None:
    await ensure_streams(nc)  # MARKETDATA and SIGNALS keep 30 days, EXECUTION forever
    data = tmp_path / "data"
    data.mkdir()
    store = ExecutionStore.open(data / "execution.duckdb")
    old = {consumer: uuid.uuid4() for consumer in ("bars", "signals", "commands")}
    recent = uuid.uuid4()
    store.conn.executemany(
        "INSERT INTO processed_inputs VALUES (?, ?, now() - to_days(40))",
        [[consumer, str(key)] for consumer, key in old.items()],
    )
    store.conn.execute("INSERT INTO processed_inputs VALUES ('bars', ?, now() - to_days(2))", [str(recent)])
    store.close()

    svc = await InProcess(nats_url, data, write_config(tmp_path)).start()
    try:
        beat = await wait_snapshot(
            nc, "health.execution", lambda v: v["detail"].get("pruned") == "2", "the start-up prune"
        )
        assert beat["detail"]["pruned"] == "2"
    finally:
        await svc.stop()
    store = ExecutionStore.open(data / "execution.duckdb")
    try:
        left = {c for c, key in old.items() if store.processed(c, [key])}
        assert left == {"commands"}  # EXECUTION keeps its messages forever: its inputs' rows stay
        assert store.processed("bars", [recent]) == {recent}
    finally:
        store.close()
