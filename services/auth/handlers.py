"""Auth use cases: login, verify, whoami, logout and user admin; audit events queue up for publishing."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.auth.adapters.store import AuthStore, User
from services.auth.domain.hashing import Hasher
from services.auth.domain.lockout import LockoutPolicy, is_locked
from services.auth.domain.rules import RuleError, check_password, check_role, normalise_username
from services.auth.domain.sessions import SessionPolicy, open_session, token_hash
from shared.contracts.auth import (
    AuthAudit,
    LoginRequest,
    SessionReply,
    TokenRequest,
    UserAction,
    UserAdminReply,
    UserAdminRequest,
)

PRODUCER = "auth"
BAD_LOGIN = "invalid username or password"
BAD_TOKEN = "invalid or expired session"  # noqa: S105 - a message, not a secret

Clock = Callable[[], datetime]


def reply(**fields: Any) -> SessionReply:
    return SessionReply.model_validate(fields)


class UserError(ValueError):
    """A user-admin request that cannot be done; the message is safe to show."""


@dataclass
class AuthService:
    store: AuthStore
    hasher: Hasher
    clock: Clock
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    audits: list[AuthAudit] = field(default_factory=list)

    def drain_audits(self) -> list[AuthAudit]:
        out, self.audits = self.audits, []
        return out

    def _audit(self, action: str, username: str, outcome: str, *, addr: str = "", detail: str = "") -> None:
        now = self.clock()
        self.store.add_audit(now, action, username, addr, outcome, detail)
        key = f"{action}:{username}:{now.isoformat()}:{secrets.token_hex(8)}"
        self.audits.append(
            AuthAudit.build(
                producer=PRODUCER,
                key=key,
                occurred_at=now,
                action=action,
                username=username[:64],
                client_addr=addr,
                outcome=outcome,
                detail=detail,
            )
        )

    # login / sessions
    def _locked(self, username: str, addr: str) -> bool:
        now = self.clock()
        since = now - self.lockout.window
        if is_locked(self.store.failures_since(since, username=username), now, self.lockout):
            return True
        return bool(addr) and is_locked(self.store.failures_since(since, client_addr=addr), now, self.lockout)

    def login(self, req: LoginRequest) -> SessionReply:
        try:
            username = normalise_username(req.username)
        except RuleError:
            username = ""
        addr = req.client_addr
        user = self.store.user(username) if username else None
        ok, new_hash = self.hasher.verify(req.password, user.password_hash if user else None)
        if self._locked(username or req.username, addr):
            self._audit("login", username or req.username, "locked", addr=addr, detail="locked out")
            return reply(ok=False, error=BAD_LOGIN)
        if not ok or user is None or not user.enabled:
            return self._fail(username or req.username, addr, "disabled" if ok else "")
        if new_hash:
            self.store.update_user(User(user.username, new_hash, user.role, user.enabled), self.clock())
        self.store.record_attempt(self.clock(), user.username, addr, True)
        token, session = open_session(user.username, user.role, self.clock(), self.sessions)
        self.store.save_session(session)
        self._audit("login", user.username, "success", addr=addr)
        return reply(
            ok=True,
            token=token,
            username=user.username,
            role=user.role,
            expires_at=session.expires_at,
            idle_expires_at=session.idle_expires_at(self.sessions),
        )

    def _fail(self, username: str, addr: str, detail: str) -> SessionReply:
        self.store.record_attempt(self.clock(), username, addr, False)
        self._audit("login", username, "failure", addr=addr, detail=detail)
        if self._locked(username, addr):
            self._audit("lockout", username, "locked", addr=addr)
        return reply(ok=False, error=BAD_LOGIN)

    def verify(self, req: TokenRequest) -> SessionReply:
        session = self.store.session(token_hash(req.token))
        if session is None:
            return reply(ok=False, error=BAD_TOKEN)
        user = self.store.user(session.username)
        now = self.clock()
        if session.problem(now, self.sessions, bool(user and user.enabled)) is not None:
            return reply(ok=False, error=BAD_TOKEN)
        session = session.touched(now)
        self.store.save_session(session)
        role = user.role if user else session.role
        return reply(
            ok=True,
            username=session.username,
            role=role,
            expires_at=session.expires_at,
            idle_expires_at=session.idle_expires_at(self.sessions),
        )

    whoami = verify

    def logout(self, req: TokenRequest) -> SessionReply:
        checked = self.verify(req)
        if not checked.ok:
            return checked
        session = self.store.session(token_hash(req.token))
        if session is not None:
            self.store.save_session(replace(session, revoked=True))
        self._audit("logout", checked.username or "", "info")
        return reply(ok=True, username=checked.username, role=checked.role)

    # user admin
    def _existing(self, username: str) -> User:
        user = self.store.user(normalise_username(username))
        if user is None:
            raise UserError(f"no such user: {normalise_username(username)}")
        return user

    def _keeps_an_admin(self, user: User, change: str) -> None:
        """Refuse a change that leaves no enabled admin: nobody could manage users or use the kill switch
        until someone with the files creates one (with the services stopped)."""
        if user.role != "admin" or not user.enabled:
            return
        if any(u.role == "admin" and u.enabled and u.username != user.username for u in self.store.users()):
            return
        raise UserError(
            f"{user.username} is the only enabled admin; {change} would leave none (create or "
            "enable another admin first)"
        )

    def create_user(self, username: str, role: str, password: str, by: str = "") -> User:
        name, checked_role = normalise_username(username), check_role(role)
        if self.store.user(name) is not None:
            raise UserError(f"user already exists: {name}")
        user = User(name, self.hasher.hash(check_password(password)), checked_role, True)
        self.store.add_user(user, self.clock())
        self._audit("user.create", name, "info", detail=_by(f"role={checked_role}", by))
        return user

    def set_enabled(self, username: str, enabled: bool, by: str = "") -> None:
        user = self._existing(username)
        if not enabled:
            self._keeps_an_admin(user, "disabling them")
        self.store.update_user(User(user.username, user.password_hash, user.role, enabled), self.clock())
        if not enabled:
            self.store.revoke_user_sessions(user.username)
        self._audit("user.enable" if enabled else "user.disable", user.username, "info", detail=_by("", by))

    def set_password(self, username: str, password: str, by: str = "") -> None:
        user = self._existing(username)
        new_hash = self.hasher.hash(check_password(password))
        self.store.update_user(User(user.username, new_hash, user.role, user.enabled), self.clock())
        self.store.revoke_user_sessions(user.username)
        self._audit("user.passwd", user.username, "info", detail=_by("", by))

    def set_role(self, username: str, role: str, by: str = "") -> None:
        user = self._existing(username)
        new_role = check_role(role)
        if new_role != "admin":
            self._keeps_an_admin(user, f"making them {new_role}")
        self.store.update_user(User(user.username, user.password_hash, new_role, user.enabled), self.clock())
        self._audit("user.set_role", user.username, "info", detail=_by(f"role={new_role}", by))

    def delete_user(self, username: str, by: str = "") -> None:
        user = self._existing(username)
        self._keeps_an_admin(user, "deleting them")
        self.store.delete_user(user.username)
        self._audit("user.delete", user.username, "info", detail=_by("", by))

    def manage(
        self, action: UserAction, username: str = "", role: str = "", password: str = "", by: str = ""
    ) -> str:
        """One ``bastion users`` action, on the file or asked of the running service; what was done, as the
        CLI says it. ``by``: the admin who asked (audited). Raises RuleError/UserError."""
        if action == "create":
            user = self.create_user(username, role, password, by=by)
            return f"created {user.username} ({user.role})"
        if action in ("disable", "enable"):
            self.set_enabled(username, action == "enable", by=by)
            return f"{action}d {normalise_username(username)}"
        if action == "passwd":
            self.set_password(username, password, by=by)
            return f"password changed for {normalise_username(username)}"
        if action == "set-role":
            self.set_role(username, role, by=by)
            return f"{normalise_username(username)} is now {check_role(role)}"
        if action == "delete":
            self.delete_user(username, by=by)
            return f"deleted {normalise_username(username)}"
        return ""  # list: nothing to do; the caller reads the users

    def admin(self, req: UserAdminRequest) -> UserAdminReply:
        """``ctl.v1.auth.users``: ``manage`` for an admin's session; anyone else is refused (and audited)."""
        checked = self.verify(TokenRequest.model_validate({"token": req.token}))
        if not checked.ok:
            return admin_reply(ok=False, refused=True, error=BAD_TOKEN)
        who = checked.username or ""
        if checked.role != "admin":
            self._audit("user.admin", who, "failure", detail=f"{req.action} refused: role {checked.role}")
            error = f"{who} is {checked.role}; managing users needs an admin"
            return admin_reply(ok=False, refused=True, error=error)
        try:
            done = self.manage(req.action, req.username, req.role or "", req.password or "", by=who)
        except (RuleError, UserError) as exc:
            return admin_reply(ok=False, error=str(exc))
        users = self.store.users() if req.action == "list" else []
        rows = [{"username": u.username, "role": u.role, "enabled": u.enabled} for u in users]
        return admin_reply(ok=True, done=done, users=rows)


def _by(detail: str, by: str) -> str:
    """An audit detail with the admin who asked for the change, when one did (over NATS)."""
    return "; ".join(part for part in (detail, f"by {by}" if by else "") if part)


def admin_reply(**fields: Any) -> UserAdminReply:
    return UserAdminReply.model_validate(fields)
