"""Builds the view models of the current snapshots (shared by the HTML pages and the JSON API)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import HTTPException, Request

from services.dashboard.adapters.store import SnapshotStore
from services.dashboard.domain.activity import Activity, build_activity
from services.dashboard.domain.overview import Overview, build_overview
from services.dashboard.domain.symbols import SymbolDetail, SymbolList, build_symbol_detail, build_symbol_list
from services.dashboard.settings import DashboardSettings
from shared.contracts.subjects import InvalidSymbolError, normalize_symbol


def now(request: Request) -> datetime:
    """The wall clock (the app's ``clock`` when a test gives one)."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else datetime.now(UTC)


def _context(request: Request) -> tuple[SnapshotStore, datetime, float]:
    store: SnapshotStore = request.app.state.store
    settings: DashboardSettings = request.app.state.settings
    return store, now(request), settings.stale_seconds


def overview(request: Request) -> Overview:
    store, now, stale = _context(request)
    return build_overview(dict(store.snaps), now, stale)


def symbol_list(request: Request) -> SymbolList:
    store, now, stale = _context(request)
    return build_symbol_list(dict(store.snaps), now, stale)


def symbol_detail(request: Request, symbol: str) -> SymbolDetail:
    try:
        name = normalize_symbol(symbol)
    except InvalidSymbolError:
        raise HTTPException(404, "unknown symbol") from None
    store, now, stale = _context(request)
    if f"analytics.{name}" not in store.snaps:
        listed = store.snaps.get("marketdata.symbols")
        if listed is None or name not in (listed.value.get("symbols") or {}):
            raise HTTPException(404, "unknown symbol")
    return build_symbol_detail(dict(store.snaps), name, now, stale)


def activity(request: Request) -> Activity:
    store, now, stale = _context(request)
    return build_activity(dict(store.snaps), now, stale)
