"""auth.duckdb: users, sessions, login attempts and audit rows. Parameterised SQL only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import cast

import duckdb

from services.auth.domain.sessions import Session
from shared.contracts.auth import Role
from shared.runtime.duck import is_lock_error, open_db

MIGRATIONS = [
    """
    CREATE TABLE users (
        username VARCHAR PRIMARY KEY, password_hash VARCHAR NOT NULL, role VARCHAR NOT NULL,
        enabled BOOLEAN NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
    CREATE TABLE sessions (
        token_hash VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, role VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL, last_seen TIMESTAMPTZ NOT NULL,
        revoked BOOLEAN NOT NULL);
    CREATE TABLE login_attempts (
        ts TIMESTAMPTZ NOT NULL, username VARCHAR NOT NULL, client_addr VARCHAR NOT NULL,
        ok BOOLEAN NOT NULL);
    CREATE TABLE audit (
        ts TIMESTAMPTZ NOT NULL, action VARCHAR NOT NULL, username VARCHAR NOT NULL,
        client_addr VARCHAR NOT NULL, outcome VARCHAR NOT NULL, detail VARCHAR NOT NULL);
    """,
]


@dataclass(frozen=True)
class User:
    username: str
    password_hash: str
    role: Role
    enabled: bool


class StoreLocked(RuntimeError):
    """auth.duckdb is held by another process (usually the running auth service)."""


class AuthStore:
    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn

    @classmethod
    def open(cls, path: Path | str) -> AuthStore:
        try:
            return cls(open_db(path, MIGRATIONS))
        except duckdb.IOException as exc:
            if not is_lock_error(exc):
                raise
            raise StoreLocked(f"{path} is locked by another process (is the auth service running?)") from exc

    def close(self) -> None:
        self.conn.close()

    # users
    def user(self, username: str) -> User | None:
        row = self.conn.execute(
            "SELECT username, password_hash, role, enabled FROM users WHERE username = ?", [username]
        ).fetchone()
        return User(row[0], row[1], cast(Role, row[2]), bool(row[3])) if row else None

    def users(self) -> list[User]:
        rows = self.conn.execute("SELECT username, password_hash, role, enabled FROM users ORDER BY username")
        return [User(r[0], r[1], cast(Role, r[2]), bool(r[3])) for r in rows.fetchall()]

    def count_users(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM users").fetchone()
        return int(row[0]) if row else 0

    def add_user(self, user: User, now: datetime) -> None:
        self.conn.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?)",
            [user.username, user.password_hash, user.role, user.enabled, now, now],
        )

    def update_user(self, user: User, now: datetime) -> None:
        self.conn.execute(
            "UPDATE users SET password_hash = ?, role = ?, enabled = ?, updated_at = ? WHERE username = ?",
            [user.password_hash, user.role, user.enabled, now, user.username],
        )

    def delete_user(self, username: str) -> None:
        self.conn.execute("DELETE FROM sessions WHERE username = ?", [username])
        self.conn.execute("DELETE FROM users WHERE username = ?", [username])

    # sessions
    def save_session(self, s: Session) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [s.token_hash, s.username, s.role, s.created_at, s.expires_at, s.last_seen, s.revoked],
        )

    def session(self, token_hash: str) -> Session | None:
        row = self.conn.execute(
            "SELECT token_hash, username, role, created_at, expires_at, last_seen, revoked"
            " FROM sessions WHERE token_hash = ?",
            [token_hash],
        ).fetchone()
        if not row:
            return None
        return Session(row[0], row[1], cast(Role, row[2]), row[3], row[4], row[5], bool(row[6]))

    def revoke_user_sessions(self, username: str) -> None:
        self.conn.execute("UPDATE sessions SET revoked = true WHERE username = ?", [username])

    # attempts and audit
    def record_attempt(self, at: datetime, username: str, client_addr: str, ok: bool) -> None:
        self.conn.execute("INSERT INTO login_attempts VALUES (?, ?, ?, ?)", [at, username, client_addr, ok])

    def failures_since(self, since: datetime, *, username: str = "", client_addr: str = "") -> list[datetime]:
        column = "username" if username else "client_addr"
        value = username or client_addr
        sql = f"SELECT ts FROM login_attempts WHERE NOT ok AND ts > ? AND {column} = ?"  # noqa: S608 fixed column
        return [r[0] for r in self.conn.execute(sql, [since, value]).fetchall()]

    def add_audit(self, at: datetime, action: str, user: str, addr: str, outcome: str, detail: str) -> None:
        row = [at, action, user, addr, outcome, detail]
        self.conn.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)", row)

    def audit_rows(self) -> list[tuple[str, str, str]]:
        rows = self.conn.execute("SELECT action, username, outcome FROM audit ORDER BY ts").fetchall()
        return [(r[0], r[1], r[2]) for r in rows]
