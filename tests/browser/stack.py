"""The dashboard against real services: nats-server, the auth service, snapshots written as producers write
them, and ``python -m services.dashboard``'s runner serving on a free port (all in the test's event loop)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.errors import NoRespondersError

from bastion.natsd import free_port
from services.auth.__main__ import make_runner as auth_runner
from services.auth.cli import ensure_admin
from services.dashboard.__main__ import make_runner as dashboard_runner
from services.dashboard.settings import DashboardSettings
from shared.contracts import subjects
from shared.contracts.auth import TokenRequest
from shared.runtime.bus import Bus
from shared.runtime.service import ServiceRunner
from shared.runtime.settings import RuntimeSettings
from tests.support.wait import eventually
from tests.unit.dashboard.sample_snapshots import snapshots

STALE_SECONDS = 30.0


@dataclass
class Stack:
    url: str
    username: str
    password: str
    bus: Bus

    async def put(self, key: str, value: dict[str, Any]) -> None:
        await self.bus.put_snapshot(key, value)


async def _auth_ready(bus: Bus) -> bool:
    try:
        await bus.nc.request(
            subjects.AUTH_VERIFY, TokenRequest.model_validate({"token": "x"}).to_json(), timeout=1
        )
    except NoRespondersError:
        return False
    return True


async def _stop(runner: ServiceRunner, task: asyncio.Task[int]) -> None:
    runner.stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def dashboard_stack(
    nats_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    values: dict[str, Any] | None = None,
    tz: tzinfo = UTC,
) -> AsyncIterator[Stack]:
    monkeypatch.setenv("BASTION_AUTH_ROUNDS", "50000")
    monkeypatch.setenv("BASTION_AUTH_LOCK_FAILURES", "1000")
    data = tmp_path / "data"
    password = ensure_admin(data)
    assert password is not None
    auth = auth_runner(RuntimeSettings(service="auth", nats_url=nats_url, data_dir=data))
    auth_task = asyncio.create_task(auth.run())
    bus = await Bus.connect(RuntimeSettings(service="producer", nats_url=nats_url))
    for key, value in (snapshots() if values is None else values).items():
        await bus.put_snapshot(key, value)
    assert await eventually(lambda: _auth_ready(bus), timeout=20, what="auth service answering")
    port = free_port()
    web = DashboardSettings(port=port, stale_seconds=STALE_SECONDS, tz=tz)
    dash = dashboard_runner(RuntimeSettings(service="dashboard", nats_url=nats_url, data_dir=data), web)
    dash_task = asyncio.create_task(dash.run())
    url = f"http://127.0.0.1:{port}"

    async def synced() -> bool:
        if dash_task.done():
            raise AssertionError(f"dashboard exited: {dash_task.result()}")
        try:
            async with httpx.AsyncClient() as client:
                return bool((await client.get(f"{url}/healthz", timeout=2)).json()["synced"])
        except httpx.HTTPError:
            return False

    assert await eventually(synced, timeout=20, what="dashboard serving with snapshots loaded")
    try:
        yield Stack(url=url, username="admin", password=password, bus=bus)
    finally:
        await _stop(dash, dash_task)
        await _stop(auth, auth_task)
        await bus.close()


def new_bar_value(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` (an ``analytics.<SYM>`` snapshot) with one more bar, as analytics writes after a new bar."""
    bars = list(value["bars"])
    last = bars[-1]
    t = (datetime.fromisoformat(last["t"]) + timedelta(minutes=1)).isoformat()
    bars.append({"t": t, "o": last["c"], "h": last["c"] + 9, "l": last["c"] - 1, "c": last["c"] + 8, "v": 5})
    indicators = {k: [*v, v[-1]] for k, v in value["indicators"].items()}
    return {
        **value,
        "bars": bars[-300:],
        "indicators": {k: v[-300:] for k, v in indicators.items()},
        "updated_at": t,
    }
