"""The FastAPI application: pages, API, static files, security headers and error pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from services.dashboard import api, pages
from services.dashboard.adapters.auth_client import AuthClient, AuthUnavailableError
from services.dashboard.adapters.store import SnapshotStore
from services.dashboard.security import CsrfError, NotAuthenticatedError, SecurityHeaders
from services.dashboard.settings import DashboardSettings

STATIC = Path(__file__).parent / "static"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return pages.templates.TemplateResponse(
        request, "error.html", {"status": status, "message": message}, status_code=status
    )


def install_error_handlers(app: FastAPI) -> None:
    async def not_authenticated(request: Request, exc: Exception) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "not authenticated"}, status_code=401)
        return RedirectResponse("/login", status_code=303)

    async def csrf_failed(request: Request, exc: Exception) -> Response:
        return _error(request, 403, "the form expired or did not come from this site; reload and try again")

    async def auth_down(request: Request, exc: Exception) -> Response:
        return _error(request, 503, "the auth service is not answering; try again shortly")

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "error"
        return _error(request, status, str(detail))

    app.add_exception_handler(NotAuthenticatedError, not_authenticated)
    app.add_exception_handler(CsrfError, csrf_failed)
    app.add_exception_handler(AuthUnavailableError, auth_down)
    app.add_exception_handler(HTTPException, http_error)


def create_app(
    store: SnapshotStore,
    auth: AuthClient,
    settings: DashboardSettings,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Bastion dashboard API",
        version="1.0",
        description="Read-only views of the SNAPSHOTS bucket. Every route needs the session cookie.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by /api/openapi.json behind the login
    )
    app.state.store, app.state.auth, app.state.settings, app.state.clock = store, auth, settings, clock
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)
    app.include_router(pages.router)
    app.include_router(api.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, object]:
        return {"ok": True, "keys": len(store.snaps), "synced": store.synced.is_set()}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
