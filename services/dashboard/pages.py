"""HTML pages (server-rendered, autoescaped) and the login/logout forms, the only state-changing routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from services.dashboard import security, views
from services.dashboard.filters import FILTERS
from services.dashboard.security import CurrentUser

MAX_FORM_BYTES = 8192
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters.update(FILTERS)
router = APIRouter(include_in_schema=False)


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Render ``name`` (or only its content block for ``?partial=1``, used by the live refresh)."""
    nonce, new = security.csrf_nonce(request)
    partial = request.query_params.get("partial") == "1"
    template = f"_{name}" if partial else name
    zone = security.settings_of(request).tz
    full = {"csrf_token": security.csrf_token(request, nonce), "tz": zone, "tz_name": str(zone), **context}
    response = templates.TemplateResponse(request, template, full, status_code=status)
    if new:
        security.set_cookie(request, response, security.CSRF_COOKIE, nonce, max_age=None)
    return response


async def form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
    return {k: v[0] for k, v in parsed.items()}


@router.get("/login")
async def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", {"error": None, "username": ""})


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form(request)
    security.check_csrf(request, fields.get("csrf_token"))
    username = fields.get("username", "").strip()
    client = request.client.host if request.client else ""
    reply = await security.auth_of(request).login(username, fields.get("password", ""), client)
    if not reply.ok or not reply.token:
        error = reply.error or "invalid username or password"
        return render(request, "login.html", {"error": error, "username": username}, status=401)
    response = RedirectResponse("/", status_code=303)
    max_age = None
    if reply.expires_at is not None:
        max_age = max(0, int((reply.expires_at - views.now(request)).total_seconds()))
    security.set_cookie(request, response, security.SESSION_COOKIE, reply.token, max_age=max_age)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    fields = await form(request)
    security.check_csrf(request, fields.get("csrf_token"))
    token = request.cookies.get(security.SESSION_COOKIE, "")
    if token:
        security.forget(request, token)
        await security.auth_of(request).logout(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/", secure=security.secure(request), httponly=True)
    return response


@router.get("/")
async def overview_page(request: Request, user: CurrentUser) -> HTMLResponse:
    return render(request, "overview.html", {"user": user, "page": "overview", "v": views.overview(request)})


@router.get("/symbols")
async def symbols_page(request: Request, user: CurrentUser) -> HTMLResponse:
    return render(request, "symbols.html", {"user": user, "page": "symbols", "v": views.symbol_list(request)})


@router.get("/symbols/{symbol}")
async def symbol_page(request: Request, symbol: str, user: CurrentUser) -> HTMLResponse:
    detail = views.symbol_detail(request, symbol)
    return render(request, "symbol.html", {"user": user, "page": "symbols", "v": detail})


@router.get("/activity")
async def activity_page(request: Request, user: CurrentUser) -> HTMLResponse:
    return render(request, "activity.html", {"user": user, "page": "activity", "v": views.activity(request)})
