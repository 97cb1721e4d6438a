"""Fixtures shared by every test tier: a real nats-server per test, unique names, connected clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from bastion.natsd import NatsServer


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A real ``nats-server -js`` on a free port with a temporary store; stopped after the test."""
    server = NatsServer(store_dir=tmp_path / "jetstream", log_file=tmp_path / "nats.log").start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
def unique() -> str:
    """A short unique token for stream, subject and consumer names."""
    return uuid.uuid4().hex[:8]
