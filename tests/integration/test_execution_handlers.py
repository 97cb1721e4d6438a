"""The service layer on a real DuckDB file, publishing with the service's own publisher to a real nats-server
and verifying commands with the real auth service: a crash between commit and publish re-publishes the same
outputs and never makes new ones; a failed commit leaves no trace in memory."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from nats.errors import ConnectionClosedError

from bastion.natsd import NatsServer
from services.execution.__main__ import publisher
from services.execution.adapters.auth_client import NatsVerifier
from services.execution.adapters.store import ExecutionStore
from services.execution.domain.config import CostModel, ExecutionConfig
from services.execution.handlers import ExecutionService
from shared.runtime.bus import MSG_ID, Bus
from shared.runtime.consumer import Delivery
from tests.integration.conftest import Connect
from tests.support.streams import stored_messages
from tests.unit.execution.helpers import NO_LIMITS, bar, command, signal

#: The streams the outbox publishes to: decisions, orders, trades and risk state; the audit records.
OUTPUT_STREAMS = ("EXECUTION", "AUDIT")


def deliveries(*events: Any) -> list[Delivery]:
    # no Msg: the handlers are called directly, and only the consumer loop acks the raw message
    return [Delivery(e, "s", i, 1, None) for i, e in enumerate(events)]  # type: ignore[arg-type]


def service(path: Path, bus: Bus) -> ExecutionService:
    """The service as ``make_runner`` builds it: the JetStream publisher and the auth verifier on ``bus``."""
    config = ExecutionConfig(limits=NO_LIMITS, costs=CostModel(slippage_bps=0, commission_pct=0, flat_fee=0))
    return ExecutionService(ExecutionStore.open(path), config, publisher(bus), NatsVerifier(bus.nc))


async def stored_ids(bus: Bus) -> list[str]:
    """The event id of every message the output streams hold, each checked against its ``Nats-Msg-Id``."""
    ids = []
    for stream in OUTPUT_STREAMS:
        for msg in await stored_messages(bus.js, stream):
            event_id = json.loads(msg.data)["event_id"]
            assert (msg.headers or {}).get(MSG_ID) == event_id
            ids.append(event_id)
    return ids


def unsent(svc: ExecutionService) -> list[str]:
    return [r.event_id for r in svc.store.unsent()]


async def test_a_crash_between_commit_and_publish_republishes_the_same_events(
    tmp_path: Path, nats_server: NatsServer, execution_connect: Connect
) -> None:
    db = tmp_path / "e.duckdb"
    bus = await execution_connect()
    svc = service(db, bus)
    b0, b1 = bar(0, 100.0), bar(1, 101.0)
    await svc.on_bars(deliveries(b0))
    before = await stored_ids(bus)

    # The service loses its connection for good (closed, as a dying process's is) and its next batch
    # commits, then fails to publish; the broker restarts before the service does. (Closed before the
    # broker stops: nats-py's close of a connection in the middle of reconnecting can raise CancelledError.)
    await bus.close()
    with pytest.raises(ConnectionClosedError):
        await svc.on_signals(deliveries(signal(b0)))  # committed, not published, not acked
    pending = unsent(svc)
    assert len(pending) == 4  # the decision, the order and their audit records
    svc.store.close()
    await asyncio.to_thread(nats_server.restart)

    bus = await execution_connect()
    assert await stored_ids(bus) == before  # nothing of the batch got out
    svc = service(db, bus)  # restart
    assert unsent(svc) == pending
    await svc.flush()  # as the service's setup does
    assert unsent(svc) == []
    assert sorted(await stored_ids(bus)) == sorted(before + pending)  # the same events, once each

    await svc.on_signals(deliveries(signal(b0)))  # the redelivery
    assert sorted(await stored_ids(bus)) == sorted(before + pending)
    await svc.on_bars(deliveries(b1))
    stored = await stored_ids(bus)
    assert len(stored) == len(set(stored))
    assert svc.counts == {"decisions": 0, "orders": 0, "trades": 1}  # the redelivery made nothing new
    assert svc.core.state.portfolio.quantity("INFY") == 1
    svc.store.close()


async def test_a_crash_before_the_published_mark_is_saved_republishes_and_jetstream_keeps_one_copy(
    tmp_path: Path, execution_connect: Connect
) -> None:
    db = tmp_path / "e.duckdb"
    bus = await execution_connect()
    svc = service(db, bus)
    b0 = bar(0, 100.0)
    await svc.on_bars(deliveries(b0))
    await svc.on_signals(deliveries(signal(b0)))  # published; the mark moved in memory only
    published = await stored_ids(bus)
    assert len(published) == 4
    svc.store.close()  # killed before the idle save of the mark
    await bus.close()

    bus = await execution_connect()
    svc = service(db, bus)  # restart
    assert sorted(unsent(svc)) == sorted(published)  # all of it goes out again, with the same ids
    await svc.flush()
    assert unsent(svc) == []
    assert await stored_ids(bus) == published  # JetStream dropped every republished copy
    svc.store.close()


async def test_a_failed_commit_rolls_the_core_back_to_the_last_commit(
    tmp_path: Path, execution_connect: Connect
) -> None:
    bus = await execution_connect()
    svc = service(tmp_path / "e.duckdb", bus)
    b0 = bar(0, 100.0)
    await svc.on_bars(deliveries(b0))
    before = svc.core.state.model_dump_json()
    sig = signal(b0)
    # a row holding the signal's key: DuckDB refuses the whole transaction of the signal's batch
    svc.store.conn.execute("INSERT INTO signals (signal_id) VALUES (?)", [sig.event_id])
    with pytest.raises(duckdb.ConstraintException):
        await svc.on_signals(deliveries(sig))
    assert svc.core.state.model_dump_json() == before
    assert svc.counts == {"decisions": 0, "orders": 0, "trades": 0}
    assert unsent(svc) == []
    assert await stored_ids(bus) == []

    svc.store.conn.execute("DELETE FROM signals WHERE signal_id = ?", [sig.event_id])
    await svc.on_signals(deliveries(sig))  # the redelivery is decided afresh: nothing was kept of the first
    assert svc.counts == {"decisions": 1, "orders": 1, "trades": 0}
    assert len(await stored_ids(bus)) == 4
    svc.store.close()


async def test_commands_are_applied_only_with_an_admin_verdict(
    tmp_path: Path, execution_connect: Connect, admin_token: str
) -> None:
    svc = service(tmp_path / "e.duckdb", await execution_connect())
    forged = command("halt").model_copy(update={"session_token": "nope"})
    await svc.on_commands(deliveries(forged))
    assert svc.core.state.risk.state == "ACTIVE"
    assert svc.last_command is not None
    assert svc.last_command["outcome"].startswith("denied")
    assert svc.last_command["by"] is None
    await svc.on_commands(deliveries(command("halt").model_copy(update={"session_token": admin_token})))
    assert svc.core.state.risk.state == "HALTED"
    assert (svc.last_command["outcome"], svc.last_command["by"]) == ("accepted", "admin1")
    assert [r.kind for r in svc.store.audit_rows()] == [
        "bastion.risk.command",
        "bastion.risk.command",
        "bastion.risk.state",
    ]
    svc.store.close()
