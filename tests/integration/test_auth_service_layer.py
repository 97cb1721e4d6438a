"""Auth use cases on a real auth.duckdb with an injected clock: lockout, session expiry, disable, re-hash."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.auth.adapters.store import AuthStore
from services.auth.domain.hashing import Hasher
from services.auth.domain.rules import RuleError
from services.auth.domain.sessions import SessionPolicy
from services.auth.handlers import BAD_LOGIN, AuthService, UserError
from shared.contracts.auth import LoginRequest, TokenRequest

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
PASSWORD = "correct horse battery"


def tok(token: str) -> TokenRequest:
    return TokenRequest.model_validate({"token": token})


def req(**fields: str) -> LoginRequest:
    return LoginRequest.model_validate(fields)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(tmp_path: Path, clock: Clock) -> Iterator[AuthService]:
    store = AuthStore.open(tmp_path / "auth.duckdb")
    service = AuthService(store=store, hasher=Hasher(rounds=1_000), clock=clock)
    service.create_user("Alice", "trader", PASSWORD)
    yield service
    store.close()


def login(
    svc: AuthService, password: str = PASSWORD, user: str = "alice", addr: str = "10.0.0.1"
) -> str | None:
    return svc.login(req(username=user, password=password, client_addr=addr)).token


def test_login_verify_and_logout_round_trip(svc: AuthService) -> None:
    token = login(svc)
    assert token is not None
    reply = svc.verify(tok(token))
    assert (reply.ok, reply.username, reply.role) == (True, "alice", "trader")
    assert svc.logout(tok(token)).ok
    assert not svc.verify(tok(token)).ok


def test_unknown_user_and_wrong_password_give_the_same_reply(svc: AuthService) -> None:
    unknown = svc.login(req(username="nobody", password=PASSWORD))
    wrong = svc.login(req(username="alice", password="wrong password!"))
    assert unknown == wrong
    assert unknown.error == BAD_LOGIN


def test_sql_looking_username_is_inert_at_login_and_rejected_at_create(svc: AuthService) -> None:
    assert not svc.login(req(username="alice' OR '1'='1", password=PASSWORD)).ok
    with pytest.raises(RuleError):
        svc.create_user("x'; DROP TABLE users;--", "viewer", PASSWORD)
    assert [u.username for u in svc.store.users()] == ["alice"]


def test_five_failures_lock_the_user_then_release_after_the_window(svc: AuthService, clock: Clock) -> None:
    for _ in range(5):
        assert login(svc, "wrong password!") is None
    assert login(svc) is None, "correct password refused while locked"
    assert ("lockout", "alice", "locked") in svc.store.audit_rows()
    clock.advance(minutes=15, seconds=1)
    assert login(svc) is not None


def test_five_failures_from_one_address_lock_that_address(svc: AuthService, clock: Clock) -> None:
    for i in range(5):
        login(svc, user=f"ghost{i}", addr="10.9.9.9")
    assert login(svc, addr="10.9.9.9") is None
    assert login(svc, addr="10.0.0.2") is not None


def test_idle_and_absolute_expiry_end_a_session(svc: AuthService, clock: Clock) -> None:
    svc.sessions = SessionPolicy(absolute=timedelta(hours=1), idle=timedelta(minutes=30))
    token = login(svc)
    assert token is not None
    for _ in range(2):
        clock.advance(minutes=25)
        assert svc.verify(tok(token)).ok, "activity keeps it alive"
    clock.advance(minutes=11)
    assert not svc.verify(tok(token)).ok, "absolute expiry"
    token2 = login(svc)
    assert token2 is not None
    clock.advance(minutes=31)
    assert not svc.verify(tok(token2)).ok, "idle expiry"


def test_disabled_user_cannot_log_in_and_their_sessions_stop_verifying(svc: AuthService) -> None:
    token = login(svc)
    assert token is not None
    svc.set_enabled("alice", False)
    assert not svc.verify(tok(token)).ok
    assert login(svc) is None
    svc.set_enabled("alice", True)
    assert login(svc) is not None


def test_login_rehashes_when_configured_rounds_rise(svc: AuthService) -> None:
    svc.hasher = Hasher(rounds=2_000)
    assert login(svc) is not None
    user = svc.store.user("alice")
    assert user is not None
    assert user.password_hash.startswith("$pbkdf2-sha256$2000$")


def test_every_login_and_user_change_is_audited(svc: AuthService) -> None:
    login(svc)
    login(svc, "wrong password!")
    svc.set_role("alice", "admin")
    rows = svc.store.audit_rows()
    assert ("user.create", "alice", "info") in rows
    assert ("login", "alice", "success") in rows
    assert ("login", "alice", "failure") in rows
    assert ("user.set_role", "alice", "info") in rows
    assert {e.action for e in svc.drain_audits()} == {"user.create", "login", "user.set_role"}


def test_the_last_enabled_admin_cannot_be_disabled_demoted_or_deleted(svc: AuthService) -> None:
    svc.create_user("root1", "admin", PASSWORD)
    for change in (
        lambda: svc.set_enabled("root1", False),
        lambda: svc.set_role("root1", "trader"),
        lambda: svc.delete_user("root1"),
    ):
        with pytest.raises(UserError, match="root1 is the only enabled admin"):
            change()
    user = svc.store.user("root1")
    assert user is not None
    assert (user.role, user.enabled) == ("admin", True)
    svc.set_role("root1", "admin")  # no change of role: allowed
    svc.create_user("root2", "admin", PASSWORD)
    svc.set_enabled("root2", False)  # a disabled admin does not count
    with pytest.raises(UserError, match="only enabled admin"):
        svc.delete_user("root1")
    svc.set_enabled("root2", True)
    svc.delete_user("root1")  # root2 is left
    assert [u.username for u in svc.store.users() if u.role == "admin"] == ["root2"]
    svc.set_enabled("alice", False)  # not an admin: no rule
