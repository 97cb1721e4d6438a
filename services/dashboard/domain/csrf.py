"""CSRF tokens: an HMAC of a per-browser random nonce (kept in an HttpOnly cookie) under the server key."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def token_for(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, f"csrf|{nonce}".encode(), hashlib.sha256).hexdigest()


def valid(secret: bytes, nonce: str | None, token: str | None) -> bool:
    """True when ``token`` was issued for this browser's ``nonce``; constant-time."""
    if not nonce or not token:
        return False
    return hmac.compare_digest(token_for(secret, nonce), token)
