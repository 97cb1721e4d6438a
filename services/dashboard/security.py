"""Sessions (a cookie holding the auth service's token), CSRF, and the security headers of every response."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.dashboard.adapters.auth_client import AuthClient, AuthUnavailableError
from services.dashboard.domain import csrf
from services.dashboard.settings import DashboardSettings

SESSION_COOKIE = "bastion_session"
CSRF_COOKIE = "bastion_csrf"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class SecurityHeaders:
    """ASGI middleware: ``HEADERS`` on every response, and ``Cache-Control: no-store`` outside /static/."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if not cacheable:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class NotAuthenticatedError(Exception):
    """No valid session: HTML requests go to the login page, API requests get 401."""


class CsrfError(Exception):
    """A form post without a valid CSRF token: 403."""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    token: str


def settings_of(request: Request) -> DashboardSettings:
    settings: DashboardSettings = request.app.state.settings
    return settings


def auth_of(request: Request) -> AuthClient:
    client: AuthClient = request.app.state.auth
    return client


def secure(request: Request) -> bool:
    return settings_of(request).secure_cookies or request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="strict", secure=secure(request)
    )


#: While the auth service does not answer, a session it verified this recently stays usable (read-only pages).
AUTH_GRACE_SECONDS = 120.0
_MAX_REMEMBERED = 1000


def _remembered(request: Request) -> dict[str, tuple[User, float]]:
    seen: dict[str, tuple[User, float]] | None = getattr(request.app.state, "verified", None)
    if seen is None:
        seen = request.app.state.verified = {}
    return seen


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def current_user(request: Request) -> User:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise NotAuthenticatedError
    seen, key, now = _remembered(request), _fingerprint(token), time.monotonic()
    try:
        reply = await auth_of(request).verify(token)
    except AuthUnavailableError:
        user, at = seen.get(key, (None, 0.0))
        if user is not None and now - at < AUTH_GRACE_SECONDS:
            return user
        raise
    if not reply.ok or not reply.username:
        seen.pop(key, None)
        raise NotAuthenticatedError
    user = User(username=reply.username, role=reply.role or "viewer", token=token)
    if len(seen) >= _MAX_REMEMBERED:
        seen.clear()
    seen[key] = (user, now)
    return user


def forget(request: Request, token: str) -> None:
    """Drop a session from the grace memory (logout)."""
    _remembered(request).pop(_fingerprint(token), None)


CurrentUser = Annotated[User, Depends(current_user)]


def csrf_nonce(request: Request) -> tuple[str, bool]:
    """This browser's CSRF nonce, and whether it is new (the response must then set the cookie)."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if 16 <= len(nonce) <= 64:
        return nonce, False
    return csrf.new_nonce(), True


def csrf_token(request: Request, nonce: str) -> str:
    return csrf.token_for(settings_of(request).secret, nonce)


def check_csrf(request: Request, token: str | None) -> None:
    if not csrf.valid(settings_of(request).secret, request.cookies.get(CSRF_COOKIE), token):
        raise CsrfError
