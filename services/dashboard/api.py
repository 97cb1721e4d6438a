"""JSON API mirroring the pages (same session cookie), the SSE change stream, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from services.dashboard import views
from services.dashboard.adapters.auth_client import AuthUnavailableError
from services.dashboard.adapters.store import Change, SnapshotStore
from services.dashboard.domain.activity import Activity
from services.dashboard.domain.overview import Overview
from services.dashboard.domain.symbols import SymbolDetail, SymbolList
from services.dashboard.security import CurrentUser, auth_of

router = APIRouter(prefix="/api", tags=["dashboard"])
PING_SECONDS = 15.0


class Me(BaseModel):
    username: str
    role: str


@router.get("/me", response_model=Me)
async def me(user: CurrentUser) -> Me:
    """Who is logged in."""
    return Me(username=user.username, role=user.role)


@router.get("/overview", response_model=Overview)
async def overview(request: Request, user: CurrentUser) -> Overview:
    """Account, equity curve, positions, trading state with breakers, and service health."""
    return views.overview(request)


@router.get("/symbols", response_model=SymbolList)
async def symbols(request: Request, user: CurrentUser) -> SymbolList:
    """Every known symbol with last price, change, bias and position."""
    return views.symbol_list(request)


@router.get("/symbols/{symbol}", response_model=SymbolDetail)
async def symbol(request: Request, symbol: str, user: CurrentUser) -> SymbolDetail:
    """Candles, indicator lines, signal and fill markers, and the latest insight of one symbol."""
    return views.symbol_detail(request, symbol)


@router.get("/activity", response_model=Activity)
async def activity(request: Request, user: CurrentUser) -> Activity:
    """Recent orders, trades, risk decisions (with rejection reasons) and the audit chain status."""
    return views.activity(request)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, user: CurrentUser) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def still_logged_in(request: Request, token: str) -> bool:
    try:
        return (await auth_of(request).verify(token)).ok
    except AuthUnavailableError:
        return True  # auth down: keep streaming read-only data to an already verified session


async def changes(
    request: Request, store: SnapshotStore, prefixes: tuple[str, ...], token: str
) -> AsyncIterator[bytes]:
    """Change notices for keys under ``prefixes``, and a ping every ``PING_SECONDS`` that also re-checks
    the session, so the stream of a logged-out or expired session ends."""
    queue = store.subscribe()
    try:
        yield sse("hello", {"keys": len(store.snaps)})
        while True:
            try:
                change: Change | None = await asyncio.wait_for(queue.get(), PING_SECONDS)
            except TimeoutError:
                if await request.is_disconnected() or not await still_logged_in(request, token):
                    return
                yield b": ping\n\n"
                continue
            if change is None:
                return
            if not prefixes or change.key.startswith(prefixes):
                yield sse(
                    "change", {"key": change.key, "revision": change.revision, "deleted": change.deleted}
                )
    finally:
        store.unsubscribe(queue)


@router.get("/stream", response_class=StreamingResponse)
async def stream(
    request: Request,
    user: CurrentUser,
    keys: str = Query("", max_length=2000, description="Comma-separated key prefixes; empty for all"),
) -> StreamingResponse:
    """Server-sent events: one ``change`` event per KV snapshot update (key and revision)."""
    prefixes = tuple(p.strip() for p in keys.split(",") if p.strip())
    store: SnapshotStore = request.app.state.store
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        changes(request, store, prefixes, user.token), media_type="text/event-stream", headers=headers
    )
