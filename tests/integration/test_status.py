"""`bastion status` against a real nats-server: the heartbeats in SNAPSHOTS, judged fresh or stale."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.unit.dashboard.sample_snapshots import heartbeat

SERVICES = ("marketdata", "analytics", "execution", "auth", "dashboard")
Run = Callable[..., tuple[int, str]]


def beat(service: str, instance: str, ago: float, status: str = "ok") -> dict[str, Any]:
    return heartbeat(service, datetime.now(UTC) - timedelta(seconds=ago), status, instance)


@pytest.fixture
def run(nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("BASTION_NATS_URL", nats_url)
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / "home"))

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, ["status", *args], env={"COLUMNS": "200"})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.output

    return invoke


async def test_status_says_which_service_is_not_running_and_exits_1_until_all_are(
    nats_url: str, run: Run
) -> None:
    bus = await Bus.connect(RuntimeSettings(service="probe", nats_url=nats_url))
    try:
        code, said = await asyncio.to_thread(run)
        assert code == 1  # nothing has run here yet
        assert "not running: marketdata (no heartbeat); analytics (no heartbeat)" in said
        for service in SERVICES:
            await bus.put_snapshot(f"health.{service}", beat(service, service, ago=1))
        await bus.put_snapshot("health.strategy.w1", beat("strategy", "w1", ago=1))
        await bus.put_snapshot("health.strategy.w2", beat("strategy", "w2", ago=60))  # one worker gone
        code, said = await asyncio.to_thread(run)
        assert code == 0, said
        assert "all 6 services are running" in said
        rows = [line.split("│")[1:-1] for line in said.splitlines() if line.startswith("│")]
        assert [r[0].strip() for r in rows] == [
            "marketdata",
            "analytics",
            "strategy",
            "strategy",
            "execution",
            "auth",
            "dashboard",
        ]  # in the order the data flows
        w2 = next(r for r in rows if r[1].strip() == "w2")
        assert w2[3].strip() == "60s ago, stale"
        assert [c.strip() for c in rows[0][4:]] == ["42", "1", "2", "3"]  # processed, failed, dead, lag

        await bus.put_snapshot("health.execution", beat("execution", "execution", ago=40))
        await bus.put_snapshot("health.auth", beat("auth", "auth", ago=0, status="stopping"))
        code, said = await asyncio.to_thread(run)
        assert code == 1
        assert "not running: execution (last beat 40s ago, ok); auth (last beat 0s ago, stopping)" in said
        code, said = await asyncio.to_thread(run, "--stale-seconds", "60")
        assert "not running: auth (last beat 0s ago, stopping)" in said  # 40 s is fresh enough now
    finally:
        await bus.close()


def test_status_without_nats_is_one_line_and_exit_2(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_NATS_URL", "nats://127.0.0.1:1")
    code, said = run()
    assert code == 2
    assert said.startswith("error: cannot reach NATS at nats://127.0.0.1:1")
