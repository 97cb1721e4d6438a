"""The kill switch end to end: the real auth service verifies the admin token, `bastion risk halt` stops
orders from the very next signal, a viewer's or a forged token is refused and audited, resume re-enables."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from typer.testing import CliRunner

from services.execution.cli import audit_app, risk_app, send_command
from tests.integration.test_execution_support import (
    Auth,
    InProcess,
    ensure_streams,
    publish,
    read_subject,
    wait_snapshot,
    write_config,
)
from tests.unit.execution.helpers import bar, signal

VIEWER_PASSWORD = "viewer-Password-42!"
ADMIN_PASSWORD = "admin-Password-42!"


@dataclass
class Stack:
    auth: Auth
    execution: InProcess
    data: Path

    async def login(self, nc: NATS, username: str, password: str) -> str:
        return await self.auth.login(nc, username, password)


@pytest.fixture
async def stack(
    nc: NATS, nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    monkeypatch.setenv("BASTION_AUTH_ROUNDS", "50000")
    monkeypatch.setenv("BASTION_NATS_URL", nats_url)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BASTION_TOKEN", raising=False)
    data = tmp_path / "data"
    await ensure_streams(nc)
    auth = Auth(nats_url, data)
    auth.create_user("admin1", "admin", ADMIN_PASSWORD)
    auth.create_user("viewer1", "viewer", VIEWER_PASSWORD)
    await auth.start(nc)
    svc = await InProcess(nats_url, data, write_config(tmp_path)).start()
    yield Stack(auth, svc, data)
    if svc.task is not None and not svc.task.done():
        await svc.stop()
    await auth.stop()


async def test_halt_stops_orders_from_the_next_signal_and_resume_restarts_them(
    nc: NATS, stack: Stack, tmp_path: Path
) -> None:
    b0 = bar(0, 100.0)
    await publish(nc, [b0, signal(b0, "long")])
    await wait_snapshot(nc, "execution.risk", lambda v: v["counts"]["orders"] == 1, "first order")

    token = await stack.login(nc, "admin1", ADMIN_PASSWORD)
    token_file = tmp_path / "token"
    token_file.write_text(token)
    result = await asyncio.to_thread(
        CliRunner().invoke, risk_app, ["halt", "--reason", "manual test", "--token-file", str(token_file)]
    )
    assert result.exit_code == 0, result.output
    assert "HALTED" in result.output

    b1, tcs = bar(1, 100.0), bar(1, 50.0, "TCS")
    await publish(nc, [b1, tcs, signal(b1, "long", strategy_id="s2"), signal(tcs, "long")])
    await wait_snapshot(
        nc, "execution.risk", lambda v: v["counts"]["decisions"] == 3, "decisions while halted"
    )
    decisions = await read_subject(nc, "EXECUTION", "risk.v1.decision.>")
    assert [d["approved"] for d in decisions] == [True, False, False]
    for decision in decisions[1:]:
        assert [c["name"] for c in decision["checks"] if not c["passed"]] == ["trading_state"]
    orders = await read_subject(nc, "EXECUTION", "exec.v1.order.>")
    assert [o["status"] for o in orders] == ["accepted", "cancelled"]  # the working order was cancelled
    assert f"cancelled working order {orders[0]['order_id']}: buy 10 INFY" in " ".join(result.output.split())
    assert await read_subject(nc, "EXECUTION", "exec.v1.trade.>") == []

    ack = await send_command(nc, "resume", "test over", token, timeout=15)
    assert (ack["outcome"], ack["state"]) == ("accepted", "ACTIVE")
    b2 = bar(2, 100.0)
    await publish(nc, [b2, signal(b2, "long")])
    await wait_snapshot(nc, "execution.risk", lambda v: v["counts"]["orders"] == 2, "order after resume")


async def test_a_viewer_or_forged_token_cannot_halt_and_the_attempt_is_audited(
    nc: NATS, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = await stack.login(nc, "viewer1", VIEWER_PASSWORD)
    ack = await send_command(nc, "halt", "not allowed", viewer, timeout=15)
    assert ack["outcome"].startswith("denied")
    assert ack["state"] == "ACTIVE"

    monkeypatch.setenv("BASTION_TOKEN", "forged-token")
    result = await asyncio.to_thread(CliRunner().invoke, risk_app, ["halt", "--reason", "forged"])
    assert result.exit_code == 1
    assert "refused" in result.output
    status = await asyncio.to_thread(CliRunner().invoke, risk_app, ["status"])
    assert status.exit_code == 0
    assert "ACTIVE" in status.output
    assert "data time none yet (no bar seen)" in status.output  # not the snapshot's 1970-01-01
    assert "breaker drawdown: 0.0 % (no limit) ok" in status.output  # this stack sets no limits
    assert "usage pending_orders: 0 (no limit)" in status.output

    audit = await read_subject(nc, "AUDIT", "audit.v1.exec")
    commands = [a for a in audit if a["kind"] == "bastion.risk.command"]
    assert len(commands) == 2
    assert all('"outcome":"denied' in a["payload"] for a in commands)
    assert all(viewer not in a["payload"] and "forged-token" not in a["payload"] for a in commands)
    assert await read_subject(nc, "EXECUTION", "risk.v1.state") == []


async def test_risk_positions_shows_each_position_with_the_strategies_books(nc: NATS, stack: Stack) -> None:
    await wait_snapshot(nc, "execution.positions", lambda v: True, "the positions snapshot")
    empty = await asyncio.to_thread(CliRunner().invoke, risk_app, ["positions"])
    assert empty.exit_code == 0, empty.output
    assert "no positions" in empty.output
    b0, b1 = bar(0, 100.0), bar(1, 101.0)
    await publish(nc, [b0, signal(b0, "long", strategy_id="s1"), signal(b0, "long", strategy_id="s2"), b1])
    await wait_snapshot(
        nc, "execution.positions", lambda v: v["positions"] and v["positions"][0]["quantity"] == "20", "20"
    )
    result = await asyncio.to_thread(CliRunner().invoke, risk_app, ["positions"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "position INFY: 20 at 101" in said, said
    assert "by strategy: s1 10, s2 10" in said, said


async def test_halt_flatten_closes_every_book_at_the_next_open_and_says_which_orders(
    nc: NATS, stack: Stack, tmp_path: Path
) -> None:
    b0 = bar(0, 100.0)
    await publish(nc, [b0, signal(b0, "long", strategy_id="s1"), signal(b0, "long", strategy_id="s2")])
    await publish(nc, [bar(1, 101.0, open_=100.5)])
    await wait_snapshot(nc, "execution.risk", lambda v: v["counts"]["trades"] == 2, "two buys filled")

    token_file = tmp_path / "token"
    token_file.write_text(await stack.login(nc, "admin1", ADMIN_PASSWORD))
    args = ["halt", "--reason", "flatten test", "--flatten", "--token-file", str(token_file)]
    result = await asyncio.to_thread(CliRunner().invoke, risk_app, args)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "trading state is HALTED" in said
    assert said.count(": sell 10 INFY") == 2, said
    assert "2 closing order(s) placed" in said

    await publish(nc, [bar(2, 103.0, open_=102.0)])
    await wait_snapshot(
        nc,
        "execution.positions",
        lambda v: [(p["quantity"], p["books"]) for p in v["positions"]] == [("0", {})],
        "every position closed",
    )
    trades = await read_subject(nc, "EXECUTION", "exec.v1.trade.>")
    assert [(t["side"], t["quantity"], t["price"]) for t in trades[2:]] == [("sell", "10", "102.0")] * 2
    orders = await read_subject(nc, "EXECUTION", "exec.v1.order.>")
    placed = {o["order_id"] for o in orders if o["reason"] == "flatten on halt: flatten test"}
    closing = [o for o in orders if o["order_id"] in placed]
    assert sorted((o["strategy_id"], o["status"]) for o in closing) == [
        ("s1", "accepted"),
        ("s1", "filled"),
        ("s2", "accepted"),
        ("s2", "filled"),
    ]
    audit = await read_subject(nc, "AUDIT", "audit.v1.exec")
    (cmd,) = [a for a in audit if a["kind"] == "bastion.risk.command"]
    assert {o["signal_id"] for o in closing} == {cmd["ref_id"]}  # the audited command caused them

    again = await asyncio.to_thread(CliRunner().invoke, risk_app, args)
    assert again.exit_code == 0, again.output
    assert "no open position to close" in again.output

    order_id = closing[0]["order_id"]
    payload = json.loads(cmd["payload"])
    cause = f"command   {cmd['ref_id']}  {payload['issued_at']}  halt --flatten by admin1: flatten test"
    traced = await asyncio.to_thread(CliRunner().invoke, audit_app, ["trace", order_id, "--stream"])
    assert traced.exit_code == 0, traced.output
    lines = traced.output.splitlines()
    assert [line.split()[0] for line in lines] == ["command", "order", "order", "fill"], lines
    assert lines[0] == cause
    await stack.execution.stop()  # it holds execution.duckdb
    db = stack.data / "execution.duckdb"
    from_file = await asyncio.to_thread(CliRunner().invoke, audit_app, ["trace", order_id, "--db", str(db)])
    assert from_file.exit_code == 0, from_file.output
    assert from_file.output.splitlines() == lines


async def test_reduce_allows_only_shrinking_orders(nc: NATS, stack: Stack, tmp_path: Path) -> None:
    b0 = bar(0, 100.0)
    await publish(nc, [b0, signal(b0, "long", strategy_id="s1"), bar(1, 100.0)])
    await wait_snapshot(nc, "execution.risk", lambda v: v["counts"]["trades"] == 1, "the buy filled")
    token_file = tmp_path / "token"
    token_file.write_text(await stack.login(nc, "admin1", ADMIN_PASSWORD))
    args = ["reduce", "--reason", "cutting risk", "--token-file", str(token_file)]
    result = await asyncio.to_thread(CliRunner().invoke, risk_app, args)
    assert result.exit_code == 0, result.output
    assert "trading state is REDUCING" in " ".join(result.output.split())
    b2 = bar(2, 100.0)
    await publish(nc, [b2, signal(b2, "long", strategy_id="s2"), signal(b2, "flat", strategy_id="s1")])
    await wait_snapshot(nc, "execution.risk", lambda v: v["counts"]["decisions"] == 3, "both decided")
    decisions = await read_subject(nc, "EXECUTION", "risk.v1.decision.>")
    assert [(d["strategy_id"], d["approved"]) for d in decisions[1:]] == [("s2", False), ("s1", True)]
    blank = await asyncio.to_thread(CliRunner().invoke, risk_app, ["reduce", "--reason", " "])
    assert blank.exit_code == 2
