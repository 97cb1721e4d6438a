"""The execution store's incremental persistence: kept bars as rows of ``core_bars`` (only the changed ones
written per batch), the rest of the state as JSON, the published mark kept in memory and saved late.

Every test restarts the service on the same DuckDB file and compares with what was in memory before. The
service publishes with its own JetStream publisher to a real nats-server and verifies commands with the real
auth service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pytest

from services.execution.__main__ import publisher
from services.execution.adapters import store as store_module
from services.execution.adapters.auth_client import NatsVerifier
from services.execution.adapters.store import MIGRATIONS, ExecutionStore, OutboxRow
from services.execution.domain import audit, risk
from services.execution.domain.config import ExecutionConfig, SizingConfig
from services.execution.handlers import ExecutionService
from shared.contracts.audit import AuditRecord
from shared.contracts.orders import OrderEvent, TradeEvent
from shared.contracts.risk import RiskDecision, RiskStateChanged
from shared.contracts.signals import Target
from shared.runtime.bus import Bus
from shared.runtime.consumer import Delivery
from shared.runtime.duck import open_db
from tests.integration.conftest import Connect
from tests.support.streams import stored_messages
from tests.unit.execution.helpers import FREE, NO_LIMITS, bar, command, signal

SYMBOLS = ["AAA", "BBB", "CCC"]
KINDS = {
    c.SCHEMA: c for c in (RiskDecision, OrderEvent, TradeEvent, RiskStateChanged)
}  # the audited domain events


class Recorder:
    """The service's JetStream publisher on ``bus``, noting the id of every row it published."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.publish = publisher(bus)
        self.sent: list[str] = []

    async def __call__(self, rows: Sequence[OutboxRow]) -> None:
        await self.publish(rows)
        self.sent += [r.event_id for r in rows]

    async def stored(self) -> list[str]:
        """The event ids the EXECUTION and AUDIT streams hold."""
        out = []
        for stream in ("EXECUTION", "AUDIT"):
            out += [json.loads(m.data)["event_id"] for m in await stored_messages(self.bus.js, stream)]
        return out


def config(bars_kept: int = 4) -> ExecutionConfig:
    return ExecutionConfig(
        limits=NO_LIMITS,
        costs=FREE,
        sizing=SizingConfig(quantity=3, allow_short=True),
        bars_kept=bars_kept,
    )


def open_service(path: Path, pub: Recorder, cfg: ExecutionConfig | None = None) -> ExecutionService:
    return ExecutionService(ExecutionStore.open(path), cfg or config(), pub, NatsVerifier(pub.bus.nc))


def deliveries(events: Sequence[Any]) -> list[Delivery]:
    return [Delivery(e, "s", i, 1, None) for i, e in enumerate(events)]  # type: ignore[arg-type]


def batches() -> list[tuple[str, list[Any]]]:
    """Bars of three symbols (one arrives late, out of order; one stops early) and signals that trade."""
    out: list[tuple[str, list[Any]]] = []
    for i in range(12):
        bars = [
            bar(i, 100.0 + (i * 3 + n) % 7, sym)
            for n, sym in enumerate(SYMBOLS)
            if not (sym == "CCC" and i > 6)
        ]
        if i == 5:
            bars = [b for b in bars if b.symbol != "BBB"]  # BBB's bar 5 comes with bar 7: sorted in
        if i == 7:
            bars.append(bar(5, 104.0, "BBB"))
        out.append(("bars", bars))
        targets: list[Target] = ["long", "short", "flat"]
        out.append(("signals", [signal(b, targets[(i + n) % 3], f"s{n}") for n, b in enumerate(bars)]))
    return out


async def feed(svc: ExecutionService, kind: str, events: list[Any]) -> None:
    if kind == "bars":
        await svc.on_bars(deliveries(events))
    else:
        await svc.on_signals(deliveries(events))


def state_of(svc: ExecutionService) -> str:
    return svc.core.state.model_dump_json()


def in_tables(svc: ExecutionService) -> int:
    """The rows of ``seen_signals``, once the state JSON holds neither the bars nor the seen signal keys."""
    saved = svc.store.conn.execute("SELECT state FROM core_state").fetchone()
    assert saved is not None
    state = json.loads(saved[0])
    assert "bars" not in state
    assert "seen_signals" not in state["risk"]
    row = svc.store.conn.execute("SELECT count(*) FROM seen_signals").fetchone()
    return int(row[0]) if row else -1


async def test_the_state_after_every_restart_equals_the_state_before(
    tmp_path: Path, execution_connect: Connect
) -> None:
    path, pub = tmp_path / "e.duckdb", Recorder(await execution_connect())
    svc = open_service(path, pub)
    for kind, events in batches():
        await feed(svc, kind, events)
        before = state_of(svc)
        svc.store.close()
        svc = open_service(path, pub)
        assert state_of(svc) == before
    assert any(p.quantity != 0 for p in svc.core.state.portfolio.positions.values())
    assert len(svc.core.state.bars["BBB"]) == 4  # trimmed to bars_kept
    rows = svc.store.conn.execute(
        "SELECT symbol, count(*) FROM core_bars GROUP BY symbol ORDER BY 1"
    ).fetchall()
    assert rows == [("AAA", 4), ("BBB", 4), ("CCC", 4)]  # the dropped bars are deleted, not only hidden
    assert in_tables(svc) == len(svc.core.state.risk.seen_signals) > 0
    svc.store.close()


async def test_the_seen_signal_keys_past_the_cap_are_deleted_and_a_restart_still_knows_the_kept_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, execution_connect: Connect
) -> None:
    monkeypatch.setattr(risk, "SEEN_SIGNALS_KEPT", 10)
    path, pub = tmp_path / "e.duckdb", Recorder(await execution_connect())
    svc = open_service(path, pub)
    plan = batches()
    for n, (kind, events) in enumerate(plan):
        await feed(svc, kind, events)
        if n % 4 == 3:
            svc.store.close()
            svc = open_service(path, pub)
    seen = list(svc.core.state.risk.seen_signals)
    assert len(seen) == 10
    assert in_tables(svc) == 10
    rows = svc.store.conn.execute("SELECT key FROM seen_signals ORDER BY seq").fetchall()
    assert [k for (k,) in rows] == seen  # the newest ten, oldest first
    svc.store.close()
    svc = open_service(path, pub)
    assert list(svc.core.state.risk.seen_signals) == seen
    latest = [e for kind, events in plan[-2:] if kind == "signals" for e in events][-1]
    outputs = svc.core.on_signal(latest).events  # straight to the core (no processed-input check): its key
    # (strategy, symbol, bar) is one of the kept ten, so the risk manager refuses it as already decided
    decision = next(e for e in outputs if isinstance(e, RiskDecision))
    assert not decision.approved
    assert [c.name for c in decision.checks if not c.passed] == ["duplicate_signal"]
    svc.store.close()


async def test_a_restarted_run_produces_the_same_outputs_as_an_uninterrupted_one(
    tmp_path: Path, execution_connect: Connect
) -> None:
    bus = await execution_connect()
    straight, restarted = Recorder(bus), Recorder(bus)
    a = open_service(tmp_path / "a.duckdb", straight)
    b = open_service(tmp_path / "b.duckdb", restarted)
    for n, (kind, events) in enumerate(batches()):
        await feed(a, kind, events)
        await feed(b, kind, events)
        if n % 3 == 2:
            b.store.close()
            b = open_service(tmp_path / "b.duckdb", restarted)
    # a restart republishes the last batch (its mark was not saved): the same ids, which JetStream drops
    assert straight.sent == list(dict.fromkeys(restarted.sent))
    assert len(restarted.sent) > len(straight.sent)
    assert sorted(await straight.stored()) == sorted(straight.sent)  # the stream holds each event once
    assert state_of(a) == state_of(b)
    a.store.close()
    b.store.close()


async def test_a_failed_commit_leaves_the_bar_rows_consistent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, execution_connect: Connect
) -> None:
    path, pub = tmp_path / "e.duckdb", Recorder(await execution_connect())
    svc = open_service(path, pub)
    plan = batches()
    for kind, events in plan[:4]:
        await feed(svc, kind, events)
    real = store_module._insert

    def failing(conn: Any, table: str, *args: Any) -> None:
        if table == "outbox":
            raise OSError("disk full")
        real(conn, table, *args)

    monkeypatch.setattr(store_module, "_insert", failing)
    with pytest.raises(OSError, match="disk full"):
        await feed(svc, *plan[4])  # bars: their rows were inserted, then rolled back
    monkeypatch.setattr(store_module, "_insert", real)
    for kind, events in plan[4:]:
        await feed(svc, kind, events)
    before = state_of(svc)
    svc.store.close()
    svc = open_service(path, pub)
    assert state_of(svc) == before
    svc.store.close()


async def test_a_file_from_before_the_bars_and_seen_signals_tables_is_read_then_moved(
    tmp_path: Path, execution_connect: Connect
) -> None:
    path, pub = tmp_path / "e.duckdb", Recorder(await execution_connect())
    svc = open_service(path, pub)
    for kind, events in batches()[:6]:
        await feed(svc, kind, events)
    legacy = state_of(svc)  # the whole state, bars and seen signal keys included, as migration 1 stored it
    assert json.loads(legacy)["risk"]["seen_signals"]
    svc.store.close()
    conn = duckdb.connect(str(path))
    conn.execute("DROP TABLE seen_signals")
    conn.execute("DROP TABLE core_bars")
    conn.execute("DROP TABLE bar_history")  # a file of migration 1 has neither, and its processed rows
    conn.execute("CREATE TABLE processed_events AS SELECT consumer, event_id FROM processed_inputs")
    conn.execute("DROP TABLE processed_inputs")  # are in the table of before migration 4
    conn.execute("DELETE FROM schema_migrations WHERE version > 1")
    conn.execute("UPDATE core_state SET state = ?", [legacy])
    conn.close()
    open_db(path, MIGRATIONS[:1]).close()

    svc = open_service(path, pub)
    assert state_of(svc) == legacy
    for kind, events in batches()[6:]:
        await feed(svc, kind, events)
    before = state_of(svc)
    svc.store.close()
    svc = open_service(path, pub)
    assert state_of(svc) == before
    assert svc.store.conn.execute("SELECT count(DISTINCT symbol) FROM core_bars").fetchone() == (3,)
    assert in_tables(svc) == len(svc.core.state.risk.seen_signals)
    svc.store.close()


async def test_a_crash_before_the_published_mark_is_saved_republishes_only_the_same_ids(
    tmp_path: Path, execution_connect: Connect
) -> None:
    path, pub = tmp_path / "e.duckdb", Recorder(await execution_connect())
    svc = open_service(path, pub)
    plan = batches()
    for kind, events in plan[:5]:
        await feed(svc, kind, events)
    published = list(pub.sent)
    svc.store.conn.close()  # a crash: the mark of the last batch was never written

    svc = open_service(path, pub)
    assert {r.event_id for r in svc.store.unsent()} <= set(published)
    await svc.flush()
    assert set(pub.sent) == set(published)  # the same ids again (JetStream drops them), nothing new
    for kind, events in plan[3:]:  # redeliveries of the last batches, then new work
        await feed(svc, kind, events)
    await svc.save_sent()
    svc.store.close()
    svc = open_service(path, pub)
    assert svc.store.unsent() == []  # saved: a clean restart publishes nothing
    outbox = svc.store.conn.execute("SELECT count(*), count(DISTINCT event_id) FROM outbox").fetchone()
    assert outbox is not None
    assert outbox[0] == outbox[1]
    in_outbox = {str(r[0]) for r in svc.store.conn.execute("SELECT event_id FROM outbox").fetchall()}
    assert set(pub.sent) == in_outbox
    stored = await pub.stored()
    assert sorted(stored) == sorted(in_outbox)  # each once: JetStream dropped the republished copies
    assert audit.verify_chain(svc.store.audit_rows()).ok
    svc.store.close()


async def test_audit_rows_and_records_match_their_validated_builds(
    tmp_path: Path, execution_connect: Connect, admin_token: str
) -> None:
    svc = open_service(tmp_path / "e.duckdb", Recorder(await execution_connect()))
    for n, (kind, events) in enumerate(batches()):
        await feed(svc, kind, events)
        if n in (5, 9):
            cmd = command("halt" if n == 5 else "resume").model_copy(update={"session_token": admin_token})
            await svc.on_commands(deliveries([cmd]))
    rows = {str(r.ref_id): r for r in svc.store.audit_rows()}
    seen = 0
    for kind, payload in svc.store.conn.execute("SELECT kind, payload FROM outbox ORDER BY seq").fetchall():
        if kind in KINDS:
            event = KINDS[kind].from_json(payload)
            assert rows[str(event.event_id)].payload == audit.canonical(
                event.model_dump(mode="json", by_alias=True)
            )
            seen += 1
        elif kind == AuditRecord.SCHEMA:
            assert AuditRecord.from_json(payload).to_json().decode() == payload
    assert seen == len(rows) - 2 > 20  # the two commands are audited without an event of their own
    kinds = {r.kind for r in rows.values()}
    assert RiskStateChanged.SCHEMA in kinds
    svc.store.close()


async def test_a_signal_whose_bar_left_the_window_is_decided_on_the_stored_history_after_a_restart(
    tmp_path: Path, execution_connect: Connect
) -> None:
    """Bars far ahead of their signals (a replay at full speed): with 4 bars kept, a restarted service
    decides and fills the late signals from ``bar_history`` exactly as one that keeps every bar."""
    bus = await execution_connect()
    small = open_service(tmp_path / "small.duckdb", Recorder(bus))
    full = open_service(tmp_path / "full.duckdb", Recorder(bus), config(bars_kept=1000))
    bars = [bar(i, 100.0 + (i * 7) % 11, "AAA", open_=100.0 + i % 5) for i in range(30)]
    for svc in (small, full):
        await svc.on_bars(deliveries(bars))
    small.store.close()
    small = open_service(tmp_path / "small.duckdb", Recorder(bus))  # restart: the history is in the file
    assert len(small.core.state.bars["AAA"]) == 4
    targets: list[Target] = ["long", "flat", "short", "long"]
    late = [signal(bars[i], targets[n % 4], f"s{n}") for n, i in enumerate((2, 3, 9, 17, 28))]
    for svc in (small, full):
        await svc.on_signals(deliveries(late))
    kinds = ("bastion.risk.decision", "bastion.exec.order", "bastion.exec.trade")
    decided = [
        [
            p
            for k, p in svc.store.conn.execute("SELECT kind, payload FROM outbox ORDER BY seq").fetchall()
            if k in kinds
        ]
        for svc in (small, full)
    ]
    assert decided[0] == decided[1]
    assert sum('"approved":true' in p for p in decided[0]) == len(late)  # every one priced, none refused
    small.store.close()
    full.store.close()


async def test_the_bar_history_keeps_the_last_bars_of_each_symbol(
    tmp_path: Path, execution_connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "e.duckdb"
    svc = open_service(path, Recorder(await execution_connect()))
    await svc.on_bars(deliveries([bar(i, 100.0, "AAA") for i in range(6)] + [bar(0, 50.0, "BBB")]))
    stored = svc.store.conn.execute("SELECT count(*) FROM bar_history").fetchone()
    assert stored == (7,)  # every bar, beyond the 4 kept in memory
    svc.store.close()
    monkeypatch.setattr(store_module, "HISTORY_BARS", 3)
    svc = open_service(path, Recorder(await execution_connect()))
    rows = svc.store.conn.execute("SELECT symbol, ts FROM bar_history ORDER BY symbol, ts").fetchall()
    newest = [bar(i, 100.0, "AAA").timestamp.timestamp() * 1_000_000 for i in (3, 4, 5)]
    assert [s for s, _ in rows] == ["AAA"] * 3 + ["BBB"]  # the newest 3 of AAA, BBB's one
    assert [t for s, t in rows if s == "AAA"] == newest
    svc.store.close()
