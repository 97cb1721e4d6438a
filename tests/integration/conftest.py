"""Fixtures of the integration tier (the real nats-server ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.runtime.bus import Bus
from shared.runtime.settings import RuntimeSettings


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A service-style connection with the MARKETDATA and DLQ streams created."""
    b = await Bus.connect(RuntimeSettings(service="testsvc", nats_url=nats_url))
    await b.ensure_streams(["MARKETDATA", "DLQ"])
    yield b
    await b.close()
