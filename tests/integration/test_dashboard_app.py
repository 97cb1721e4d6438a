"""The web app (``create_app``) with the real auth service on a real nats-server, reached through the
dashboard's ``AuthClient``: sessions, CSRF, headers, escaping, read-only routes, the JSON API, and what a
page does while no auth service answers. The snapshots come from a filled ``SnapshotStore`` (no KV watch)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from nats.aio.client import Client as NATS

from services.dashboard import api, pages
from services.dashboard.adapters.auth_client import AuthClient, AuthUnavailableError
from services.dashboard.app import create_app
from services.dashboard.security import SESSION_COOKIE
from services.dashboard.settings import DashboardSettings
from shared.contracts import subjects
from tests.integration.test_execution_support import Auth, read_subject
from tests.support.wait import eventually
from tests.unit.dashboard.sample_snapshots import HOSTILE, risk, snapshots
from tests.unit.dashboard.support import filled_store

PASSWORD = "correct horse battery"
IST = ZoneInfo("Asia/Kolkata")


def make_app(auth: AuthClient, values: dict[str, object] | None = None, **settings: Any) -> FastAPI:
    store = filled_store(values if values is not None else snapshots())
    return create_app(store, auth, DashboardSettings(**settings))


@pytest.fixture
async def auth_service(
    nc: NATS, nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Auth]:
    """``python -m services.auth``'s runner in this event loop; trader ``alice`` made by ``bastion users``."""
    monkeypatch.setenv("BASTION_AUTH_ROUNDS", "1000")  # real PBKDF2, cheap: hashing cost is not tested here
    service = Auth(nats_url, tmp_path / "data")
    service.create_user("alice", "trader", PASSWORD)
    await service.start(nc)
    yield service
    await service.stop()  # a no-op when the test stopped it already


@pytest.fixture
def auth(nc: NATS, auth_service: Auth) -> AuthClient:
    return AuthClient(nc)


@pytest.fixture
async def client(auth: AuthClient) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def log_in(client: httpx.AsyncClient) -> httpx.Response:
    page = await client.get("/login")
    form = {"username": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    return await client.post("/login", data=form)


async def auth_audits(nc: NATS, action: str) -> list[dict[str, object]]:
    """What the auth service recorded on ``audit.v1.auth`` for ``action`` (it publishes before it replies)."""
    return [a for a in await read_subject(nc, "AUDIT", subjects.AUDIT_AUTH) if a["action"] == action]


async def test_unauthenticated_pages_redirect_to_login_and_api_gets_401(client: httpx.AsyncClient) -> None:
    for path in ("/", "/symbols", "/symbols/INFY", "/activity"):
        response = await client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/login")
    for path in (
        "/api/overview",
        "/api/symbols",
        "/api/symbols/INFY",
        "/api/activity",
        "/api/stream",
        "/api/me",
        "/api/openapi.json",
    ):
        assert (await client.get(path)).status_code == 401, path


async def test_a_forged_session_cookie_is_not_accepted(client: httpx.AsyncClient, auth: AuthClient) -> None:
    assert not (await auth.verify("made-up")).ok
    client.cookies.set(SESSION_COOKIE, "made-up")
    assert (await client.get("/api/overview")).status_code == 401


async def test_login_without_or_with_a_wrong_csrf_token_is_refused(
    client: httpx.AsyncClient, nc: NATS
) -> None:
    await client.get("/login")
    missing = await client.post("/login", data={"username": "alice", "password": PASSWORD})
    forged = await client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": "0" * 64}
    )
    assert (missing.status_code, forged.status_code) == (403, 403)
    assert SESSION_COOKIE not in client.cookies
    assert await auth_audits(nc, "login") == []  # the auth service was never asked
    assert (await log_in(client)).status_code == 303
    assert [a["outcome"] for a in await auth_audits(nc, "login")] == ["success"]


async def test_a_csrf_token_from_another_browser_is_refused(auth: AuthClient) -> None:
    app = make_app(auth)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as victim,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as attacker,
    ):
        token = csrf_of((await attacker.get("/login")).text)
        await victim.get("/login")
        response = await victim.post(
            "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 403
        assert SESSION_COOKIE not in victim.cookies


async def test_login_sets_a_strict_httponly_session_cookie(client: httpx.AsyncClient) -> None:
    response = await log_in(client)
    assert (response.status_code, response.headers["location"]) == (303, "/")
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie
    assert (await client.get("/api/me")).json() == {"username": "alice", "role": "trader"}


async def test_cookies_are_secure_over_https(auth: AuthClient) -> None:
    transport = httpx.ASGITransport(app=make_app(auth))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
        response = await log_in(c)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "Secure" in cookie


async def test_wrong_password_shows_an_error_on_the_login_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    response = await client.post(
        "/login", data={"username": HOSTILE, "password": "nope", "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 401
    assert "invalid username or password" in response.text
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;" in response.text


async def test_logout_needs_csrf_then_ends_the_session(
    client: httpx.AsyncClient, auth: AuthClient, nc: NATS
) -> None:
    await log_in(client)
    token = client.cookies[SESSION_COOKIE]
    assert (await client.post("/logout", data={})).status_code == 403
    assert (await auth.verify(token)).ok  # the refused logout did not reach the auth service
    page = await client.get("/")
    response = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert SESSION_COOKIE not in client.cookies
    assert [a["username"] for a in await auth_audits(nc, "logout")] == ["alice"]
    assert not (await auth.verify(token)).ok
    assert (await client.get("/api/overview")).status_code == 401
    client.cookies.set(SESSION_COOKIE, token)  # the old cookie, replayed
    assert (await client.get("/api/overview")).status_code == 401


async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    await log_in(client)
    for path in ("/login", "/", "/api/overview", "/api/nothing", "/static/app.css"):
        headers = (await client.get(path)).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


async def test_pages_have_no_inline_script(client: httpx.AsyncClient) -> None:
    await log_in(client)
    for path in ("/login", "/", "/symbols", "/symbols/INFY", "/activity"):
        html = (await client.get(path)).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\son[a-z]+=", html), path


async def test_symbol_and_reason_text_with_html_is_shown_escaped(auth: AuthClient) -> None:
    values = snapshots()
    values["execution.risk"] = risk(reason=HOSTILE)
    values["execution.positions"]["positions"][0]["symbol"] = HOSTILE
    values["execution.positions"]["positions"][0]["books"] = {HOSTILE: "1"}
    values["execution.orders.recent"]["orders"][0]["reason"] = HOSTILE
    transport = httpx.ASGITransport(app=make_app(auth, values))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await log_in(c)
        for path in ("/", "/activity", "/symbols/%3Cscript%3E"):
            html = (await c.get(path)).text
            assert "<script>alert" not in html, path
            assert "<img src=x" not in html, path
        assert "&lt;script&gt;alert" in (await c.get("/")).text


async def test_unknown_or_invalid_symbol_is_404(client: httpx.AsyncClient) -> None:
    await log_in(client)
    assert (await client.get("/symbols/NOPE")).status_code == 404
    assert (await client.get("/api/symbols/a.b")).status_code == 404


async def test_no_route_changes_state_except_login_and_logout(nc: NATS) -> None:
    app = make_app(AuthClient(nc))  # only the route table is read: no auth service needed
    every = [*app.routes, *pages.router.routes, *api.router.routes]
    routes = [r for r in every if getattr(r, "methods", None)]
    assert len(routes) > 10
    writers = {r.path for r in routes if set(r.methods) - {"GET", "HEAD"}}  # type: ignore[attr-defined]
    assert writers == {"/login", "/logout"}


async def test_writes_to_read_routes_are_refused(client: httpx.AsyncClient) -> None:
    await log_in(client)
    for path in ("/", "/api/overview", "/api/symbols/INFY", "/api/activity"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert (await client.request(method, path)).status_code == 405, (method, path)


async def test_api_mirrors_the_pages(client: httpx.AsyncClient) -> None:
    await log_in(client)
    overview = (await client.get("/api/overview")).json()
    assert overview["risk"]["state"] == "HALTED"
    assert overview["positions"][0]["books"] == [["ehma-16", 4.0], ["sma-10-30", 6.0]]
    page = (await client.get("/")).text
    assert '<span class="book">ehma-16 4</span>, <span class="book">sma-10-30 6</span>' in page
    detail = (await client.get("/api/symbols/infy")).json()
    assert detail["symbol"] == "INFY"
    assert len(detail["candles"]) == 300
    assert {r["symbol"] for r in (await client.get("/api/symbols")).json()["symbols"]} == {"INFY", "TCS"}
    assert (await client.get("/api/activity")).json()["audit"]["ok"] is True


async def test_openapi_documents_the_api_behind_the_login(client: httpx.AsyncClient) -> None:
    await log_in(client)
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    assert {"/api/overview", "/api/symbols", "/api/symbols/{symbol}", "/api/activity", "/api/stream"} <= set(
        paths
    )
    assert "/login" not in paths


async def test_partial_refresh_returns_only_the_content_block(client: httpx.AsyncClient) -> None:
    await log_in(client)
    html = (await client.get("/?partial=1")).text
    assert 'id="kill-switch"' in html
    assert "<html" not in html


async def test_pages_render_with_an_empty_bucket(auth: AuthClient) -> None:
    transport = httpx.ASGITransport(app=make_app(auth, {}))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await log_in(c)
        for path in ("/", "/symbols", "/activity"):
            response = await c.get(path)
            assert response.status_code == 200, path
        assert "no data yet" in (await c.get("/")).text


async def test_pages_stay_usable_for_a_recent_session_while_auth_is_down(
    client: httpx.AsyncClient, auth: AuthClient, auth_service: Auth, nc: NATS
) -> None:
    await log_in(client)
    assert (await client.get("/api/overview")).status_code == 200
    await auth_service.stop()

    async def unanswered() -> bool:
        try:
            await AuthClient(nc, timeout=1).verify("probe")
        except AuthUnavailableError:
            return True
        return False

    await eventually(unanswered, what="no auth service answering")
    with pytest.raises(AuthUnavailableError):
        await auth.verify(client.cookies[SESSION_COOKIE])
    assert (await client.get("/")).status_code == 200
    client.cookies.set(SESSION_COOKIE, "never-verified")
    response = await client.get("/api/overview")
    assert response.status_code == 503
    assert "auth service" in response.json()["detail"]


@pytest.mark.parametrize(
    ("zone", "order_time"), [(None, "2024-01-02 05:26:05 UTC"), (IST, "2024-01-02 10:56:05 IST")]
)
async def test_pages_show_times_in_the_configured_zone(
    auth: AuthClient, zone: ZoneInfo | None, order_time: str
) -> None:
    app = make_app(auth, tz=zone) if zone is not None else make_app(auth)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        await log_in(c)
        pages = {path: (await c.get(path)).text for path in ("/", "/activity", "/symbols", "/symbols/INFY")}
        api_orders = (await c.get("/api/activity")).json()["orders"]
    assert f"<td>{order_time}</td>" in pages["/activity"]  # the order's occurred_at, 2024-01-02T05:26:05Z
    assert api_orders[0]["time"] == "2024-01-02T05:26:05Z"  # the data stays UTC
    shown = "Asia/Kolkata" if zone else "UTC"
    for path, html in pages.items():
        assert f'data-tz="{shown}"' in html, path  # the charts' labels follow it (charts.js)
        stamps = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ([A-Z]+)", html)
        assert stamps, path
        assert set(stamps) == {"IST" if zone else "UTC"}, (path, set(stamps))
