"""Dashboard settings from the environment (the NATS side comes from ``RuntimeSettings``).

| variable | meaning | default |
|---|---|---|
| BASTION_DASHBOARD_HOST | listen address | 127.0.0.1 |
| BASTION_DASHBOARD_PORT | HTTP port (`bastion up --dashboard-port` sets it) | 8080 |
| BASTION_DASHBOARD_SECURE_COOKIES | `1`: cookies always Secure (TLS at a proxy); else only on HTTPS | 0 |
| BASTION_DASHBOARD_SECRET | key for CSRF tokens; random per process when unset | random |
| BASTION_DASHBOARD_STALE_SECONDS | a heartbeat older than this marks its service (and its data) stale | 15 |
| BASTION_DASHBOARD_TZ | zone the pages and charts show times in: IANA name (Asia/Kolkata) or UTC | UTC |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from shared.zones import not_a_zone, zone_named


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"BASTION_DASHBOARD_PORT must be a port number, not {raw!r}")
    return int(raw)


def display_zone(raw: str, what: str = "BASTION_DASHBOARD_TZ") -> tzinfo:
    """The zone ``raw`` names (``what`` is where it came from), or ``ValueError`` saying what to give."""
    raw = raw.strip()
    zone = zone_named(raw) if raw else UTC
    if zone is None:
        raise ValueError(not_a_zone(what, raw))
    return zone


@dataclass(frozen=True)
class DashboardSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    secure_cookies: bool = False
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    stale_seconds: float = 15.0
    tz: tzinfo = UTC

    @classmethod
    def from_env(cls) -> DashboardSettings:
        stale = _env("BASTION_DASHBOARD_STALE_SECONDS", "15")
        try:
            stale_seconds = float(stale)
        except ValueError:
            raise ValueError(f"BASTION_DASHBOARD_STALE_SECONDS must be a number, not {stale!r}") from None
        secret = _env("BASTION_DASHBOARD_SECRET")
        return cls(
            host=_env("BASTION_DASHBOARD_HOST") or "127.0.0.1",
            port=_port(_env("BASTION_DASHBOARD_PORT") or "8080"),
            secure_cookies=_env("BASTION_DASHBOARD_SECURE_COOKIES") in {"1", "true", "yes"},
            secret=secret.encode() if secret else secrets.token_bytes(32),
            stale_seconds=stale_seconds,
            tz=display_zone(_env("BASTION_DASHBOARD_TZ")),
        )
