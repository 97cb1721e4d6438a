"""Fixtures of the integration tier (the real nats-server ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from bastion.natsd import NatsServer
from services.execution.__main__ import STREAMS
from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings
from tests.integration.test_execution_support import Auth
from tests.support.secured import start_secured

ADMIN_PASSWORD = "admin-Password-42!"
Connect = Callable[[], Awaitable[Bus]]


@pytest.fixture
def secured_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real nats-server on the deployed config: one user per service (``tests.support.secured``)."""
    server = start_secured(tmp_path)
    yield server
    server.stop()


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A service-style connection with the MARKETDATA and DLQ streams created."""
    b = await Bus.connect(RuntimeSettings(service="testsvc", nats_url=nats_url))
    await b.ensure_streams(["MARKETDATA", "DLQ"])
    yield b
    await b.close()


@pytest.fixture
async def execution_connect(nats_url: str) -> AsyncIterator[Connect]:
    """Opens the execution service's connection as its runner does (reconnecting forever, streams
    ensured); every one opened is closed after the test."""
    opened: list[Bus] = []

    async def open_bus() -> Bus:
        bus = await Bus.connect(RuntimeSettings(service="execution", nats_url=nats_url))
        opened.append(bus)
        await bus.ensure_streams(STREAMS)
        return bus

    yield open_bus
    for bus in opened:
        await bus.close()


@pytest.fixture
async def admin_token(
    nc: NATS, nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """A session token of admin ``admin1`` from the real auth service, which keeps answering on the server."""
    monkeypatch.setenv("BASTION_AUTH_ROUNDS", "50000")
    auth = Auth(nats_url, tmp_path / "auth")
    auth.create_user("admin1", "admin", ADMIN_PASSWORD)
    await auth.start(nc)
    yield await auth.login(nc, "admin1", ADMIN_PASSWORD)
    await auth.stop()
