"""Browser fixtures: the system Chromium (Debian package `chromium`) driven by Playwright, no download."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

REPO = Path(__file__).resolve().parents[2]
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
