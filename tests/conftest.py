"""Fixtures shared by every test tier: a real nats-server per test, unique names, connected clients, and the
system Chromium (Debian package `chromium`) driven by Playwright, no browser download."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from playwright.async_api import Browser, async_playwright

from bastion.natsd import NatsServer

#: CLI commands read the stream ages from docker compose's .env in the current directory: a developer's own
#: .env in the checkout must not change what the tests (and the processes they start) see
os.environ["BASTION_DOTENV"] = os.devnull


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


REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
VENDOR = REPO / "services/dashboard/static/vendor/lightweight-charts.standalone.production.js"
ARTIFACTS = REPO / "test-artifacts" / "browser"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        subprocess.run([str(REPO / "scripts/install-chromium.sh")], check=False)
    if not CHROMIUM.exists():
        pytest.fail("no /usr/bin/chromium: run scripts/install-chromium.sh (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def vendor_assets() -> Path:
    """The npm-pinned chart library in static/vendor/ (``make`` builds it; built here when missing)."""
    if not VENDOR.exists():
        subprocess.run([str(REPO / "services/dashboard/web/build.sh")], check=True)
    return VENDOR


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
async def browser(chromium: Path, vendor_assets: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()
