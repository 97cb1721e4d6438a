"""``python -m services.auth``: the auth request/reply service."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.auth.adapters.nats_api import AuthApi
from services.auth.adapters.store import AuthStore
from services.auth.domain.hashing import DEFAULT_ROUNDS, Hasher
from services.auth.domain.lockout import LockoutPolicy
from services.auth.domain.sessions import SessionPolicy
from services.auth.handlers import AuthService
from shared.runtime.bus import Bus
from shared.runtime.service import ServiceParts, ServiceRunner
from shared.runtime.settings import RuntimeSettings, SettingsError, whole_number_env


@dataclass(frozen=True)
class AuthPolicies:
    rounds: int
    sessions: SessionPolicy
    lockout: LockoutPolicy

    @classmethod
    def from_env(cls) -> AuthPolicies:
        """BASTION_AUTH_ROUNDS, _SESSION_HOURS, _IDLE_MINUTES, _LOCK_FAILURES, _LOCK_MINUTES (whole numbers
        >= 1; ``SettingsError`` names a bad one)."""
        return cls(
            rounds=whole_number_env("BASTION_AUTH_ROUNDS", DEFAULT_ROUNDS),
            sessions=SessionPolicy(
                absolute=timedelta(hours=whole_number_env("BASTION_AUTH_SESSION_HOURS", 12)),
                idle=timedelta(minutes=whole_number_env("BASTION_AUTH_IDLE_MINUTES", 30)),
            ),
            lockout=LockoutPolicy(
                max_failures=whole_number_env("BASTION_AUTH_LOCK_FAILURES", 5),
                window=timedelta(minutes=whole_number_env("BASTION_AUTH_LOCK_MINUTES", 15)),
            ),
        )


def build_service(store: AuthStore, policies: AuthPolicies) -> AuthService:
    return AuthService(
        store=store,
        hasher=Hasher(rounds=policies.rounds),
        clock=lambda: datetime.now(UTC),
        sessions=policies.sessions,
        lockout=policies.lockout,
    )


def make_runner(settings: RuntimeSettings, policies: AuthPolicies | None = None) -> ServiceRunner:
    chosen = policies or AuthPolicies.from_env()

    async def setup(bus: Bus) -> ServiceParts:
        store = AuthStore.open(settings.db_path())
        api = AuthApi(bus, build_service(store, chosen))
        await api.start()

        async def on_stop() -> None:
            await api.stop()
            store.close()

        return ServiceParts(on_stop=on_stop)

    return ServiceRunner(settings=settings, setup=setup, streams=["AUDIT"])


def main() -> int:
    try:
        runner = make_runner(RuntimeSettings.from_env("auth"))
    except SettingsError as exc:
        print(f"auth: {exc}", file=sys.stderr, flush=True)
        return 2
    return runner.main()


if __name__ == "__main__":
    raise SystemExit(main())
