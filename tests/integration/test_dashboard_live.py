"""The dashboard runner against a real nats-server and the real auth service: login, API, SSE, heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.dashboard import api
from services.dashboard.security import SESSION_COOKIE
from tests.browser.stack import Stack, dashboard_stack, new_bar_value
from tests.support.wait import eventually
from tests.unit.dashboard.sample_snapshots import analytics, heartbeat, risk


@pytest.fixture
async def stack(nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    async with dashboard_stack(nats_url, tmp_path, monkeypatch) as running:
        yield running


@contextlib.asynccontextmanager
async def logged_in(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        form = {"username": stack.username, "password": stack.password, "csrf_token": token.group(1)}
        response = await client.post("/login", data=form)
        assert response.status_code == 303, response.text
        yield client


async def test_login_through_the_auth_service_then_read_the_api(stack: Stack) -> None:
    async with logged_in(stack) as client:
        assert (await client.get("/api/me")).json()["username"] == "admin"
        overview = (await client.get("/api/overview")).json()
        assert overview["risk"]["state"] == "HALTED"
        assert len((await client.get("/api/symbols/INFY")).json()["candles"]) == 300


async def test_wrong_password_is_refused_by_the_auth_service(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as client:
        page = await client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        form = {"username": "admin", "password": "wrong", "csrf_token": token.group(1)}
        response = await client.post("/login", data=form)
        assert response.status_code == 401
        assert (await client.get("/api/overview")).status_code == 401


async def test_kv_changes_reach_the_api_and_the_sse_stream(stack: Stack) -> None:
    async with logged_in(stack) as client:
        events: list[dict[str, object]] = []
        hello = asyncio.Event()

        async def listen() -> None:
            async with client.stream("GET", "/api/stream", params={"keys": "execution.risk"}) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    if line.startswith("event: hello"):
                        hello.set()
                    if line.startswith("data:") and hello.is_set():
                        events.append(json.loads(line[5:]))

        reader = asyncio.create_task(listen())
        await asyncio.wait_for(hello.wait(), 10)
        await stack.put("analytics.INFY", new_bar_value(analytics("INFY")))  # filtered out by ?keys=
        await stack.put("execution.risk", risk(state="ACTIVE", reason=""))
        await eventually(lambda: any(e.get("key") == "execution.risk" for e in events), what="SSE change")
        assert all(e.get("key") == "execution.risk" for e in events[1:])
        reader.cancel()
        assert (await client.get("/api/overview")).json()["risk"]["state"] == "ACTIVE"


async def test_deleted_snapshot_disappears_from_the_page(stack: Stack) -> None:
    kv = await stack.bus.snapshots()
    async with logged_in(stack) as client:
        await kv.delete("execution.risk")

        async def gone() -> bool:
            return (await client.get("/api/overview")).json()["risk"] is None

        await eventually(gone, what="risk snapshot removed")


async def test_the_dashboard_heartbeats_to_health_dashboard(stack: Stack) -> None:
    kv = await stack.bus.snapshots()

    async def beat() -> dict[str, object] | None:
        try:
            entry = await kv.get("health.dashboard")
        except Exception:
            return None
        return json.loads(entry.value or b"{}")

    value = await eventually(beat, what="health.dashboard")
    assert value["status"] == "ok"
    assert str(value["detail"]["url"]).startswith("http://127.0.0.1:")  # type: ignore[index]


async def test_the_sse_stream_ends_after_logout(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "PING_SECONDS", 0.2)
    async with logged_in(stack) as client, logged_in(stack) as other:
        token = client.cookies.get(SESSION_COOKIE)
        assert token is not None
        ended = asyncio.Event()

        async def listen() -> None:
            async with client.stream("GET", "/api/stream") as response:
                async for _line in response.aiter_lines():
                    pass
            ended.set()

        reader = asyncio.create_task(listen())
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', (await other.get("/")).text)
        assert csrf is not None
        other.cookies.set(SESSION_COOKIE, token)  # log that same session out from elsewhere
        assert (await other.post("/logout", data={"csrf_token": csrf.group(1)})).status_code == 303
        await asyncio.wait_for(ended.wait(), 10)
        await reader


async def test_a_silent_producer_is_shown_stale_with_its_last_update(stack: Stack) -> None:
    old = datetime.now(UTC) - timedelta(minutes=5)
    await stack.put("health.execution", heartbeat("execution", old))
    async with logged_in(stack) as client:

        async def stale_page() -> str | None:
            html = (await client.get("/")).text
            return html if "stale: execution is not reporting" in html else None

        html = await eventually(stale_page, what="execution shown stale")
        assert "last update 20" in html
        assert 'id="kill-switch" data-state="HALTED"' in html  # the last data is still shown
