"""``python -m services.auth``: the auth request/reply service."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from services.auth.adapters.nats_api import AuthApi
from services.auth.adapters.store import AuthStore
from services.auth.domain.hashing import DEFAULT_ROUNDS, Hasher
from services.auth.domain.lockout import LockoutPolicy
from services.auth.domain.sessions import SessionPolicy
from services.auth.handlers import AuthService
from shared.runtime.bus import Bus
from shared.runtime.service import ServiceParts, ServiceRunner
from shared.runtime.settings import RuntimeSettings


def _int_env(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def build_service(store: AuthStore) -> AuthService:
    """Policies from the environment (BASTION_AUTH_ROUNDS, _SESSION_HOURS, _IDLE_MINUTES, _LOCK_FAILURES,
    _LOCK_MINUTES)."""
    return AuthService(
        store=store,
        hasher=Hasher(rounds=_int_env("BASTION_AUTH_ROUNDS", DEFAULT_ROUNDS)),
        clock=lambda: datetime.now(UTC),
        sessions=SessionPolicy(
            absolute=timedelta(hours=_int_env("BASTION_AUTH_SESSION_HOURS", 12)),
            idle=timedelta(minutes=_int_env("BASTION_AUTH_IDLE_MINUTES", 30)),
        ),
        lockout=LockoutPolicy(
            max_failures=_int_env("BASTION_AUTH_LOCK_FAILURES", 5),
            window=timedelta(minutes=_int_env("BASTION_AUTH_LOCK_MINUTES", 15)),
        ),
    )


def make_runner(settings: RuntimeSettings) -> ServiceRunner:
    async def setup(bus: Bus) -> ServiceParts:
        store = AuthStore.open(settings.db_path())
        api = AuthApi(bus, build_service(store))
        await api.start()

        async def on_stop() -> None:
            await api.stop()
            store.close()

        return ServiceParts(on_stop=on_stop)

    return ServiceRunner(settings=settings, setup=setup, streams=["AUDIT"])


if __name__ == "__main__":
    raise SystemExit(make_runner(RuntimeSettings.from_env("auth")).main())
