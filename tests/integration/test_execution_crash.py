"""Fault injection: the service subprocess is SIGKILLed twice while it works through 2,000 signals (20
symbols x 100 bars; kept small so the test stays fast), then restarted: every signal gets exactly one
decision and one order, every order at most one fill, and no event id is ever produced twice."""

from __future__ import annotations

import signal as os_signal
import subprocess
from pathlib import Path

import duckdb
from nats.aio.client import Client as NATS
from typer.testing import CliRunner

from services.execution.cli import audit_app
from shared.contracts.envelope import Event
from tests.integration.test_execution_support import (
    ensure_streams,
    publish,
    read_subject,
    spawn,
    write_config,
)
from tests.support.wait import eventually
from tests.unit.execution.helpers import bar, signal

SYMBOLS = [f"S{i:02d}" for i in range(20)]
BARS = 100
SIGNALS = len(SYMBOLS) * BARS


def feed() -> list[Event]:
    events: list[Event] = []
    for i in range(BARS):
        for sym in SYMBOLS:
            b = bar(i, 100.0 + (i % 7), sym)
            events += [b, signal(b, "long" if i % 2 == 0 else "flat")]
    return events


async def count(nc: NATS, stream: str, subject: str) -> int:
    info = await nc.jetstream().stream_info(stream, subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


async def run_until(nc: NATS, proc: subprocess.Popen[bytes], decisions: int, kill: bool) -> None:
    async def reached() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        return await count(nc, "EXECUTION", "risk.v1.decision.>") >= decisions

    try:
        await eventually(reached, timeout=90, interval=0.05, what=f"{decisions} decisions")
    finally:
        proc.send_signal(os_signal.SIGKILL if kill else os_signal.SIGTERM)
        proc.wait(timeout=30)


async def test_sigkill_mid_stream_then_restart_loses_nothing_and_duplicates_nothing(
    nc: NATS, nats_url: str, tmp_path: Path
) -> None:
    await ensure_streams(nc)
    config, data = write_config(tmp_path), tmp_path / "data"
    await publish(nc, feed())
    for target, kill in ((SIGNALS // 4, True), (SIGNALS * 3 // 5, True), (SIGNALS, False)):
        await run_until(nc, spawn(nats_url, data, config), target, kill)

    decisions = await read_subject(nc, "EXECUTION", "risk.v1.decision.>")
    orders = await read_subject(nc, "EXECUTION", "exec.v1.order.>")
    trades = await read_subject(nc, "EXECUTION", "exec.v1.trade.>")
    assert len(decisions) == len({d["signal_id"] for d in decisions}) == SIGNALS
    assert all(d["approved"] for d in decisions)
    accepted = [o["order_id"] for o in orders if o["status"] == "accepted"]
    assert len(accepted) == len(set(accepted)) == SIGNALS
    assert len(trades) == len({t["order_id"] for t in trades}) == SIGNALS - len(SYMBOLS)  # last bar: no fill

    conn = duckdb.connect(str(data / "execution.duckdb"), read_only=True)
    dupes = conn.execute("SELECT count(*) - count(DISTINCT event_id) FROM outbox").fetchone()
    conn.close()
    assert dupes == (0,)
    result = CliRunner().invoke(audit_app, ["verify", "--db", str(data / "execution.duckdb")])
    assert result.exit_code == 0, result.output
