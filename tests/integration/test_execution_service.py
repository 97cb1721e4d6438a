"""The execution service on a real nats-server: bars and signals in -> decisions, orders and fills out;
positions and risk state survive a restart (and a state saved before books gets them back from its
trades); the daily-loss breaker trips on a crafted losing sequence."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from nats.aio.client import Client as NATS

from tests.integration.test_execution_support import (
    InProcess,
    ensure_streams,
    publish,
    read_subject,
    wait_snapshot,
    write_config,
)
from tests.support.wait import eventually
from tests.unit.execution.helpers import bar, signal


@pytest.fixture
async def streams(nc: NATS) -> None:
    await ensure_streams(nc)


async def test_signals_and_bars_become_decisions_orders_and_fills(
    nc: NATS, nats_url: str, tmp_path: Path, streams: None
) -> None:
    svc = await InProcess(nats_url, tmp_path / "data", write_config(tmp_path)).start()
    b0, b1, b2 = bar(0, 100.0), bar(1, 101.0, open_=102.0), bar(2, 99.0, open_=98.0)
    await publish(nc, [b0, signal(b0, "long"), b1, signal(b1, "flat"), b2])

    pos = await wait_snapshot(
        nc,
        "execution.positions",
        lambda v: len(v["positions"]) == 1 and v["positions"][0]["quantity"] == "0",
        "the round trip in the positions snapshot",
    )
    assert Decimal(pos["positions"][0]["realised_pnl"]) == -40  # bought 10 @ 102, sold 10 @ 98
    await svc.stop()

    decisions = await read_subject(nc, "EXECUTION", "risk.v1.decision.>")
    orders = await read_subject(nc, "EXECUTION", "exec.v1.order.>")
    trades = await read_subject(nc, "EXECUTION", "exec.v1.trade.>")
    assert [d["approved"] for d in decisions] == [True, True]
    assert sorted(o["status"] for o in orders) == ["accepted", "accepted", "filled", "filled"]
    assert [(t["side"], Decimal(t["price"])) for t in trades] == [("buy", 102), ("sell", 98)]
    audit = await read_subject(nc, "AUDIT", "audit.v1.exec")
    assert [a["seq"] for a in audit] == list(range(1, len(audit) + 1))
    assert len(audit) == len(decisions) + len(orders) + len(trades)


async def test_rejected_signal_gets_a_decision_with_every_failed_check_and_no_order(
    nc: NATS, nats_url: str, tmp_path: Path, streams: None
) -> None:
    limits = {"price_band_pct": 5, "max_gross_exposure": 500}
    svc = await InProcess(nats_url, tmp_path / "data", write_config(tmp_path, limits)).start()
    b0, b1 = bar(0, 100.0), bar(1, 120.0)  # a 20% jump, and 10 x 120 over the exposure limit
    await publish(nc, [b0, b1, signal(b1, "long")])
    risk = await wait_snapshot(nc, "execution.risk", lambda v: v["counts"]["decisions"] == 1, "a decision")
    await svc.stop()
    assert risk["limits"]["price_band_pct"] == "5"
    (decision,) = await read_subject(nc, "EXECUTION", "risk.v1.decision.>")
    assert not decision["approved"]
    assert {c["name"] for c in decision["checks"] if not c["passed"]} == {"price_band", "max_gross_exposure"}
    assert decision["limits"]["max_gross_exposure"] == "500"
    assert await read_subject(nc, "EXECUTION", "exec.v1.order.>") == []


async def test_positions_and_risk_state_survive_a_restart(
    nc: NATS, nats_url: str, tmp_path: Path, streams: None
) -> None:
    config = write_config(tmp_path, {"daily_loss_limit": 50})
    svc = await InProcess(nats_url, tmp_path / "data", config).start()
    b0, b1 = bar(0, 100.0), bar(1, 100.0, open_=100.0)
    b2 = bar(2, 90.0, open_=100.0)  # 10 x -10 = -100: the daily-loss breaker trips
    await publish(nc, [b0, signal(b0, "long"), b1, b2])
    await wait_snapshot(nc, "execution.risk", lambda v: v["state"] == "HALTED", "daily-loss halt")
    await svc.stop()

    svc = await InProcess(nats_url, tmp_path / "data", config).start()
    risk = await wait_snapshot(nc, "execution.risk", lambda v: v["state"] == "HALTED", "halt after restart")
    assert risk["breakers"]["daily_loss"]["tripped"]
    pos = await wait_snapshot(nc, "execution.positions", lambda v: v["positions"], "positions after restart")
    assert pos["positions"][0]["quantity"] == "10"
    b3 = bar(3, 95.0)
    await publish(nc, [b3, signal(b3, "flat")])

    async def rejected() -> bool:
        decisions = await read_subject(nc, "EXECUTION", "risk.v1.decision.>")
        return len(decisions) == 2 and not decisions[-1]["approved"]

    await eventually(rejected, what="the signal after restart rejected while HALTED")
    await svc.stop()
    states = await read_subject(nc, "EXECUTION", "risk.v1.state")
    assert [(s["previous"], s["state"], s["changed_by"]) for s in states] == [
        ("ACTIVE", "HALTED", "breaker:daily_loss")
    ]


async def test_a_state_saved_before_books_gets_each_strategy_s_book_back_from_its_trades(
    nc: NATS, nats_url: str, tmp_path: Path, streams: None
) -> None:
    config, data = write_config(tmp_path), tmp_path / "data"
    svc = await InProcess(nats_url, data, config).start()
    b0, b1 = bar(0, 100.0), bar(1, 101.0)
    await publish(nc, [b0, signal(b0, "long", "s1"), signal(b0, "long", "s2"), b1])  # 10 + 10 at b1's open
    held = await wait_snapshot(
        nc, "execution.positions", lambda v: v["positions"] and v["positions"][0]["quantity"] == "20", "20"
    )
    assert held["positions"][0]["books"] == {"s1": "10", "s2": "10"}
    await svc.stop()
    conn = duckdb.connect(str(data / "execution.duckdb"))  # the state as a version without books wrote it
    try:
        (raw,) = conn.execute("SELECT state FROM core_state WHERE id = 1").fetchone() or ("",)
        state = json.loads(raw)
        assert state.pop("books") == {"s1|INFY": "10", "s2|INFY": "10"}
        conn.execute("UPDATE core_state SET state = ? WHERE id = 1", [json.dumps(state)])
    finally:
        conn.close()

    svc = await InProcess(nats_url, data, config).start()
    b2, b3 = bar(2, 102.0), bar(3, 103.0)
    await publish(nc, [b2, signal(b2, "flat", "s1"), b3])  # s1 sells its own 10, not s2's
    pos = await wait_snapshot(
        nc, "execution.positions", lambda v: v["positions"][0]["quantity"] == "10", "s1's 10 sold"
    )
    await svc.stop()
    assert pos["positions"][0]["books"] == {"s2": "10"}
