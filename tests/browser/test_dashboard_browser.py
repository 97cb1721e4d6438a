"""The dashboard in real Chromium against real nats-server, auth service and KV snapshots."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.stack import Stack, dashboard_stack, new_bar_value
from tests.support.wait import eventually
from tests.unit.dashboard.sample_snapshots import HOSTILE, analytics, risk, signal

pytestmark = pytest.mark.browser

# Counts pixels of the candle colours (#1a9850 up, #d73027 down) on the chart's canvases.
CANDLE_PIXELS = """(sel) => {
  let up = 0, down = 0;
  for (const c of document.querySelectorAll(sel + ' canvas')) {
    if (!c.width || !c.height) continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i+3] < 200) continue;
      if (Math.abs(d[i]-26) < 6 && Math.abs(d[i+1]-152) < 6 && Math.abs(d[i+2]-80) < 6) up++;
      if (Math.abs(d[i]-215) < 6 && Math.abs(d[i+1]-48) < 6 && Math.abs(d[i+2]-39) < 6) down++;
    }
  }
  return [up, down];
}"""


@pytest.fixture
async def stack(nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    async with dashboard_stack(nats_url, tmp_path, monkeypatch) as running:
        yield running


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    tab = await context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    await context.close()


def watch_console(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
    return problems


async def log_in(page: Page, stack: Stack, password: str | None = None) -> None:
    await page.fill("#username", stack.username)
    await page.fill("#password", password or stack.password)
    await page.click("#login-submit")


async def test_log_in_watch_live_updates_open_a_symbol_and_log_out(
    stack: Stack, page: Page, artifacts: Path
) -> None:
    problems = watch_console(page)
    await page.goto(f"{stack.url}/symbols/INFY")
    await expect(page).to_have_url(f"{stack.url}/login")
    await log_in(page, stack)
    await expect(page).to_have_url(f"{stack.url}/")

    await expect(page.locator("#kill-switch")).to_have_text("HALTED")
    await expect(page.locator("#kill-reason")).to_have_text("daily loss breaker tripped")
    await expect(page.locator("#kill-reason")).to_have_class("reason reason-halted")  # red, not grey
    await expect(page.locator("#kill-by")).to_have_text("by breaker:daily_loss")
    await expect(page.locator("#equity-chart")).to_have_attribute("data-bars", "300")
    await expect(page.locator("#live-status")).to_have_text("live")
    await page.screenshot(path=str(artifacts / "overview-halted.png"), full_page=True)
    await stack.put("execution.risk", risk(state="ACTIVE", reason=""))
    await expect(page.locator("#kill-switch")).to_have_text("ACTIVE")  # by SSE, no reload
    await expect(page.locator("#kill-by")).to_have_text("by admin1")
    await expect(page.locator("#kill-by")).to_have_class("reason reason-active")  # no alarm while ACTIVE

    await page.click("#symbol-list a, a[href='/symbols']")
    await page.click("a[href='/symbols/INFY']")
    await expect(page.locator("#symbol-name")).to_have_text("INFY")
    chart = page.locator("#price-chart")
    await expect(chart).to_have_attribute("data-bars", "300")
    up, down = await eventually(lambda: _drawn(page), what="candles painted")
    assert up > 50
    assert down > 50
    await expect(page.locator("#insight")).to_contain_text("MACD under its signal")
    last = int(await chart.get_attribute("data-last") or 0)
    await page.screenshot(path=str(artifacts / "symbol-before.png"), full_page=True)

    await stack.put("analytics.INFY", new_bar_value(analytics("INFY")))
    await expect(chart).to_have_attribute("data-last", str(last + 60))  # the new bar, live
    await page.screenshot(path=str(artifacts / "symbol-new-bar.png"), full_page=True)
    await expect(chart).to_have_attribute("data-marker-words", "yes")  # a signal and a fill: words too
    times = [datetime.fromisoformat(b["t"]) for b in analytics("INFY")["bars"][:60]]
    many = [signal("INFY", t, "long" if i % 2 else "flat") for i, t in enumerate(times)]
    await stack.put("strategy.signals.1", {"kind": "strategy.signals", "version": 1, "signals": many})
    await expect(chart).to_have_attribute("data-marker-words", "no")  # 61 markers: shapes alone, no smear

    await page.click("#logout")
    await expect(page).to_have_url(f"{stack.url}/login")
    await page.goto(f"{stack.url}/")
    await expect(page).to_have_url(f"{stack.url}/login")
    assert problems == [], problems


async def _drawn(page: Page) -> tuple[int, int] | None:
    up, down = await page.evaluate(CANDLE_PIXELS, "#price-chart")
    return (up, down) if up and down else None


async def test_wrong_password_shows_an_error(stack: Stack, page: Page, artifacts: Path) -> None:
    await page.goto(f"{stack.url}/")
    await log_in(page, stack, password="not the password")
    await expect(page.locator("#login-error")).to_have_text("invalid username or password")
    await expect(page).to_have_url(f"{stack.url}/login")
    await page.screenshot(path=str(artifacts / "login-error.png"))


async def test_html_in_a_kill_switch_reason_is_shown_as_text(stack: Stack, page: Page) -> None:
    problems = watch_console(page)
    await stack.put("execution.risk", risk(reason=HOSTILE))
    await page.goto(f"{stack.url}/login")
    await log_in(page, stack)
    await expect(page.locator("#kill-reason")).to_have_text(HOSTILE)
    assert await page.locator("#kill-reason img, #kill-reason script").count() == 0
    assert problems == [], problems


async def test_time_to_first_chart_with_300_bars(stack: Stack, page: Page, artifacts: Path) -> None:
    await page.goto(f"{stack.url}/login")
    await log_in(page, stack)
    await expect(page).to_have_url(f"{stack.url}/")
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        await page.goto(f"{stack.url}/symbols/INFY")
        await expect(page.locator("#price-chart")).to_have_attribute("data-drawn-at", re.compile(r"\d"))
        wall = time.perf_counter() - start
        drawn = float(await page.locator("#price-chart").get_attribute("data-drawn-at") or 0)
        timings.append({"wall_ms": round(wall * 1000, 1), "first_chart_ms": round(drawn, 1)})
    (artifacts / "bench-first-chart.json").write_text(json.dumps({"bars": 300, "runs": timings}, indent=2))
    print("time to first chart (300 bars):", timings)
    assert min(t["first_chart_ms"] for t in timings) < 5000


# What the time labels of the dashboard's charts (BastionCharts.options, every chart's) say for an instant.
CHART_LABELS = """(seconds) => {
  const o = window.BastionCharts.options(100);
  return [o.localization.timeFormatter(seconds), o.timeScale.tickMarkFormatter(seconds, 3),
          o.timeScale.tickMarkFormatter(seconds, 2), window.BastionCharts.zone,
          o.localization.priceFormatter(1000372.019)];
}"""


async def test_with_a_display_zone_pages_and_chart_labels_show_its_times(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: Page
) -> None:
    async with dashboard_stack(nats_url, tmp_path, monkeypatch, tz=ZoneInfo("Asia/Kolkata")) as stack:
        problems = watch_console(page)
        await page.goto(f"{stack.url}/login")
        await log_in(page, stack)
        await expect(page.locator("#equity-chart")).to_have_attribute("data-bars", "300")
        await expect(page.locator(".fresh.ok").first).to_contain_text(" IST")
        await page.goto(f"{stack.url}/symbols/INFY")
        await expect(page.locator("#price-chart")).to_have_attribute("data-bars", "300")
        await expect(page.locator("#insight")).to_contain_text("As of 2024-01-02 14:14:00 IST:")  # 08:44Z
        open_utc = 1704167100  # 2024-01-02T03:45:00Z, NSE's open
        assert await page.evaluate(CHART_LABELS, open_utc) == [
            "2024-01-02 09:15",
            "09:15",
            "02",
            "Asia/Kolkata",
            "1,000,372.02",  # prices as the tables show them
        ]
        await page.goto(f"{stack.url}/symbols")
        last_bar = page.locator('#symbol-list tr[data-symbol="INFY"] td').last
        await expect(last_bar).to_have_text("2024-01-02 14:14:00 IST")
        assert problems == [], problems
