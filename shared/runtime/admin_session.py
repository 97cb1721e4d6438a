"""An admin session for a CLI command that a running service carries out (the kill switch, user changes).

The token comes from ``--token-file``, else ``$BASTION_TOKEN``, else a login: username and password are
asked for and exchanged on ``auth.v1.login``. The service that gets the command verifies the token again;
this only saves sending a command that would be refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import nats.errors
import typer
from nats.aio.client import Client as NATS

from shared.contracts import subjects
from shared.contracts.auth import LoginRequest, SessionReply


class SessionError(Exception):
    """No admin session: the message is for the user; ``code`` 1 refused, 2 bad input."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def token_from(token_file: Path | None) -> str | None:
    """The token of ``--token-file`` or ``$BASTION_TOKEN``; None when neither gives one."""
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise SessionError(f"cannot read token file {token_file}: {exc.strerror}") from None
        if not token:
            raise SessionError(f"token file {token_file} is empty")
        return token
    return os.environ.get("BASTION_TOKEN", "").strip() or None


def ask_credentials() -> tuple[str, str]:
    """Admin username and password from the terminal (the password not echoed)."""
    return str(typer.prompt("Admin username")), str(typer.prompt("Password", hide_input=True))


async def login(nc: NATS, username: str, password: str, needed_for: str) -> str:
    """An admin's session token from ``auth.v1.login``; ``needed_for`` names what the admin is needed for."""
    request = LoginRequest.model_validate({"username": username, "password": password, "client_addr": "cli"})
    try:
        msg = await nc.request(subjects.AUTH_LOGIN, request.to_json(), timeout=10)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        raise SessionError("the auth service did not answer; is it running?") from None
    reply = SessionReply.from_json(msg.data)
    if not reply.ok or not reply.token:
        raise SessionError(f"login failed: {reply.error or 'unknown error'}", code=1)
    if reply.role != "admin":
        raise SessionError(f"{reply.username} is {reply.role}; {needed_for} needs an admin", code=1)
    return reply.token
