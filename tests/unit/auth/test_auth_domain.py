from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.auth.domain.hashing import DEFAULT_ROUNDS, Hasher
from services.auth.domain.lockout import LockoutPolicy, is_locked
from services.auth.domain.rules import RuleError, check_password, check_role, normalise_username
from services.auth.domain.sessions import SessionPolicy, open_session, token_hash

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("name", ["alice", "Bob.Smith", "t-1_x", "abc", "a" * 32])
def test_valid_usernames_are_accepted_and_lower_cased(name: str) -> None:
    assert normalise_username(name) == name.lower()


@pytest.mark.parametrize(
    "name",
    ["ab", "a" * 33, "1abc", "_abc", "al ice", "alice'--", "x'; DROP TABLE users;--", 'a"b', "admin OR 1=1"],
)
def test_bad_and_sql_looking_usernames_are_rejected(name: str) -> None:
    with pytest.raises(RuleError, match="username must be"):
        normalise_username(name)


@given(st.text(max_size=40))
def test_accepted_usernames_only_contain_the_documented_charset(raw: str) -> None:
    try:
        name = normalise_username(raw)
    except RuleError:
        return
    assert 3 <= len(name) <= 32
    assert name[0].isalpha()
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789._-")


def test_password_policy_bounds() -> None:
    assert check_password("x" * 12) == "x" * 12
    with pytest.raises(RuleError, match="at least 12"):
        check_password("x" * 11)
    with pytest.raises(RuleError, match="at most 1024"):
        check_password("x" * 1025)


def test_unknown_role_is_rejected() -> None:
    assert check_role("Trader") == "trader"
    with pytest.raises(RuleError, match="role must be one of"):
        check_role("root")


def test_production_default_hash_is_pbkdf2_sha256_with_at_least_600k_rounds() -> None:
    hasher = Hasher()
    stored = hasher.hash("correct horse battery")
    scheme, rounds = stored.split("$")[1:3]
    assert scheme == "pbkdf2-sha256"
    assert int(rounds) >= 600_000
    assert DEFAULT_ROUNDS >= 600_000
    assert hasher.verify("correct horse battery", stored) == (True, None)


def test_hash_is_replaced_on_login_when_configured_rounds_rise() -> None:
    old = Hasher(rounds=1_000).hash("correct horse battery")
    ok, new_hash = Hasher(rounds=2_000).verify("correct horse battery", old)
    assert ok
    assert new_hash is not None
    assert new_hash.startswith("$pbkdf2-sha256$2000$")
    assert Hasher(rounds=1_000).verify("wrong password!!", old) == (False, None)


def test_unknown_user_verify_runs_against_a_dummy_and_fails() -> None:
    assert Hasher(rounds=1_000).verify("anything at all", None) == (False, None)


def test_session_token_is_256_bit_and_only_its_hash_is_kept() -> None:
    token, session = open_session("alice", "trader", T0, SessionPolicy())
    assert len(token) >= 43
    assert session.token_hash == token_hash(token) != token
    assert session.expires_at == T0 + timedelta(hours=12)


def test_session_fails_when_expired_idle_revoked_or_user_disabled() -> None:
    policy = SessionPolicy(absolute=timedelta(hours=1), idle=timedelta(minutes=30))
    _, s = open_session("alice", "viewer", T0, policy)
    assert s.problem(T0 + timedelta(minutes=10), policy, True) is None
    assert s.problem(T0 + timedelta(minutes=31), policy, True) == "idle"
    s2 = s.touched(T0 + timedelta(minutes=50))
    assert s2.problem(T0 + timedelta(minutes=70), policy, True) == "expired"
    assert s.problem(T0, policy, False) == "user disabled"
    assert replace(s, revoked=True).problem(T0, policy, True) == "revoked"


def test_lockout_after_five_failures_and_release_after_the_window() -> None:
    policy = LockoutPolicy(max_failures=5, window=timedelta(minutes=15))
    fails = [T0 + timedelta(seconds=i) for i in range(4)]
    assert not is_locked(fails, T0 + timedelta(seconds=5), policy)
    fails.append(T0 + timedelta(seconds=4))
    assert is_locked(fails, T0 + timedelta(seconds=5), policy)
    assert not is_locked(fails, T0 + timedelta(minutes=15, seconds=1), policy)
