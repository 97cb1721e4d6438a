"""The dashboard's NATS user under the real deploy/nats/nats.conf: it can watch snapshots and ask auth,
and it cannot publish anything else (no command, order, bar or snapshot of another service)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest

from bastion.natsd import NatsServer, free_port
from bastion.up import NATS_CONFIG
from services.dashboard.__main__ import make_runner
from services.dashboard.settings import DashboardSettings
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.support.secured import PASSWORDS, start_secured
from tests.support.wait import eventually
from tests.unit.dashboard.sample_snapshots import risk

#: What the dashboard user needs beyond the seed config: its own heartbeat, and the ordered consumer of a KV
#: watch (nats-py creates it with the un-filtered CREATE subject and reads its info). Added to the dashboard's
#: publish allow list here when deploy/nats/nats.conf does not have them yet (the lead adds them there).
DASHBOARD_NEEDS = (
    "$KV.SNAPSHOTS.health.dashboard",
    "$JS.API.CONSUMER.CREATE.KV_SNAPSHOTS",
    "$JS.API.CONSUMER.INFO.KV_SNAPSHOTS.>",
)
DASHBOARD_ALLOW = '{ publish: { allow: ["auth.v1.login", '


def dashboard_config(tmp_path: Path) -> Path:
    text = NATS_CONFIG.read_text()
    missing = [s for s in DASHBOARD_NEEDS if f'"{s}"' not in text]
    assert text.count(DASHBOARD_ALLOW) == 1, "the dashboard's allow list moved; update this test"
    extra = "".join(f'"{s}", ' for s in missing)
    path = tmp_path / "nats.conf"
    path.write_text(text.replace(DASHBOARD_ALLOW, DASHBOARD_ALLOW.replace("allow: [", "allow: [" + extra)))
    return path


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[NatsServer]:
    server = start_secured(tmp_path, dashboard_config(tmp_path))
    yield server
    server.stop()


def settings(server: NatsServer, user: str) -> RuntimeSettings:
    return RuntimeSettings(service=user, nats_url=server.url, nats_user=user, nats_password=PASSWORDS[user])


@pytest.mark.parametrize(
    "subject",
    [
        "risk.v1.command",
        "exec.v1.order.INFY",
        "md.v1.bar.INFY",
        "$KV.SNAPSHOTS.execution.risk",
        "auth.v1.users",
    ],
)
async def test_dashboard_credentials_cannot_publish(secured: NatsServer, subject: str) -> None:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        secured.url,
        user="dashboard",
        password=PASSWORDS["dashboard"],
        error_cb=on_error,
        allow_reconnect=False,
    )
    try:
        await nc.publish(subject, b"{}")
        await nc.flush()
        await eventually(lambda: errors, timeout=3, what=f"a permissions error on {subject}")
    finally:
        await nc.close()
    assert any("permissions violation" in e.lower() for e in errors)


async def test_dashboard_user_watches_snapshots_live(secured: NatsServer) -> None:
    producer = await Bus.connect(settings(secured, "execution"))
    await producer.put_snapshot("execution.risk", risk())
    port = free_port()
    runner = make_runner(settings(secured, "dashboard"), DashboardSettings(port=port))
    task = asyncio.create_task(runner.run())
    try:

        async def keys() -> int:
            try:
                async with httpx.AsyncClient() as client:
                    health = (await client.get(f"http://127.0.0.1:{port}/healthz", timeout=2)).json()
            except httpx.HTTPError:
                return 0
            return int(health["keys"]) if health["synced"] else 0

        assert await eventually(keys, timeout=15, what="snapshots loaded under the dashboard user") >= 1
        await producer.put_snapshot("execution.orders.recent", {"orders": [], "decisions": []})
        assert await eventually(lambda: keys(), timeout=10, what="live change") >= 2
    finally:
        runner.stop.set()
        await asyncio.wait_for(task, 15)
        await producer.close()
