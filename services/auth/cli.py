"""``bastion users ...``: manage auth users in auth.duckdb; while the auth service runs (it holds the file),
the service does it on request (``ctl.v1.auth.users``, operator NATS user, an admin's session)."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import nats.errors
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from services.auth.adapters.store import AuthStore, StoreLocked
from services.auth.domain.hashing import DEFAULT_ROUNDS, Hasher
from services.auth.domain.rules import RuleError
from services.auth.handlers import AuthService, UserError
from shared.contracts import subjects
from shared.contracts.auth import UserAction, UserAdminReply, UserAdminRequest, UserInfo
from shared.runtime.admin_session import SessionError, ask_credentials, login, token_from
from shared.runtime.bus import NatsUnreachable, connect_once
from shared.runtime.settings import RuntimeSettings, whole_number_env

app = typer.Typer(help="Manage Bastion users (roles: admin, trader, viewer).", no_args_is_help=True)
err = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Directory of auth.duckdb (default: $BASTION_DATA_DIR)")
]
Username = Annotated[
    str, typer.Option("--username", "-u", help="3-32 chars of a-z 0-9 . _ -, starts with a letter")
]


def _data_dir(given: Path | None) -> Path:
    home = Path(os.environ.get("BASTION_HOME") or ".bastion")
    return given or Path(os.environ.get("BASTION_DATA_DIR") or home / "data")


def _hasher() -> Hasher:
    return Hasher(rounds=whole_number_env("BASTION_AUTH_ROUNDS", DEFAULT_ROUNDS))


TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="While the auth service runs: a file with an admin session token (else $BASTION_TOKEN)",
    ),
]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _password_of(username: str, from_stdin: bool) -> Callable[[], str]:
    def read() -> str:
        if from_stdin:
            return sys.stdin.readline().rstrip("\r\n")
        return str(
            typer.prompt(f"Password for {username.lower()}", hide_input=True, confirmation_prompt=True)
        )

    return read


def _manage(
    action: UserAction,
    data_dir: Path | None,
    token_file: Path | None,
    username: str = "",
    role: str = "",
    password: Callable[[], str] | None = None,
    password_stdin: bool = False,
) -> tuple[str, list[UserInfo]]:
    """Do ``action`` on auth.duckdb; while the auth service holds it (and no ``--data-dir`` is given), ask
    the service on ``ctl.v1.auth.users`` with an admin session. What was done, and the users for list."""
    directory = _data_dir(data_dir)
    hasher = _hasher()  # a bad BASTION_AUTH_ROUNDS is named first, wherever the file is
    if action != "create" and not (directory / "auth.duckdb").exists():
        raise _fail(
            f"no auth database at {directory / 'auth.duckdb'}, so no user here yet: `bastion up` makes it"
            " with the admin user, `bastion users create` with the first user (another home? set"
            " BASTION_HOME, or give --data-dir)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        store = AuthStore.open(directory / "auth.duckdb")
    except StoreLocked as exc:
        if data_dir is not None:
            raise _fail(str(exc)) from None
        return _ask_service(action, token_file, username, role, password, password_stdin)
    except OSError as exc:
        raise _fail(str(exc)) from None
    try:
        svc = AuthService(store=store, hasher=hasher, clock=lambda: datetime.now(UTC))
        done = svc.manage(action, username, role, password() if password else "")
        listed = store.users() if action == "list" else []
    except (RuleError, UserError) as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    return done, [UserInfo(username=u.username, role=u.role, enabled=u.enabled) for u in listed]


def _ask_service(
    action: UserAction,
    token_file: Path | None,
    username: str,
    role: str,
    password: Callable[[], str] | None,
    password_stdin: bool,
) -> tuple[str, list[UserInfo]]:
    """``_manage`` by the running auth service: an admin session (``--token-file``, ``$BASTION_TOKEN`` or a
    login), then the request as the operator NATS user, which alone may send it."""
    err.print("the auth service is running (it holds auth.duckdb): asking it, with an admin session")
    try:
        token = token_from(token_file)
    except SessionError as exc:
        raise _fail(str(exc), exc.code) from None
    if token is None and password_stdin:
        raise _fail(
            "with --password-stdin, give the admin session as --token-file FILE or $BASTION_TOKEN"
            " (stdin holds the password)"
        )
    credentials = ask_credentials() if token is None else None
    secret = password() if password else None

    async def ask() -> UserAdminReply:
        nc = await connect_once(RuntimeSettings.from_env("cli", user="operator"))
        try:
            session = token or await login(nc, *credentials, needed_for="managing users")  # type: ignore[misc]
            request = UserAdminRequest.model_validate(
                {
                    "token": session,
                    "action": action,
                    "username": username,
                    "role": role or None,
                    "password": secret,
                }
            )
            try:
                msg = await nc.request(subjects.AUTH_USERS, request.to_json(), timeout=30)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                raise SessionError("the auth service did not answer; is it running?", 1) from None
            return UserAdminReply.from_json(msg.data)
        finally:
            await nc.close()

    try:
        reply = asyncio.run(ask())
    except NatsUnreachable as exc:
        raise _fail(str(exc)) from None
    except SessionError as exc:
        raise _fail(str(exc), exc.code) from None
    except ValidationError as exc:  # longer than a request may carry (the service's rules say more)
        first = exc.errors()[0]
        raise _fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    if not reply.ok:
        raise _fail(reply.error or "refused", 1 if reply.refused else 2)
    return reply.done, list(reply.users)


@app.command()
def create(
    username: Username,
    role: Annotated[str, typer.Option("--role", "-r", help="admin, trader or viewer")],
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    token_file: TokenFile = None,
) -> None:
    """Create a user."""
    password = _password_of(username, password_stdin)
    done, _ = _manage("create", data_dir, token_file, username, role, password, password_stdin)
    typer.echo(done)


@app.command("list")
def list_users(data_dir: DataDir = None, token_file: TokenFile = None) -> None:
    """List users."""
    _, users = _manage("list", data_dir, token_file)
    table = Table("username", "role", "enabled")
    for user in users:
        table.add_row(user.username, user.role, "yes" if user.enabled else "no")
    Console().print(table)


@app.command()
def disable(username: Username, data_dir: DataDir = None, token_file: TokenFile = None) -> None:
    """Disable a user; their sessions stop verifying."""
    typer.echo(_manage("disable", data_dir, token_file, username)[0])


@app.command()
def enable(username: Username, data_dir: DataDir = None, token_file: TokenFile = None) -> None:
    """Enable a user."""
    typer.echo(_manage("enable", data_dir, token_file, username)[0])


@app.command()
def passwd(
    username: Username,
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    token_file: TokenFile = None,
) -> None:
    """Set a user's password; their sessions are revoked."""
    password = _password_of(username, password_stdin)
    typer.echo(_manage("passwd", data_dir, token_file, username, "", password, password_stdin)[0])


@app.command("set-role")
def set_role(
    username: Username,
    role: Annotated[str, typer.Option("--role", "-r", help="admin, trader or viewer")],
    data_dir: DataDir = None,
    token_file: TokenFile = None,
) -> None:
    """Change a user's role."""
    typer.echo(_manage("set-role", data_dir, token_file, username, role)[0])


@app.command()
def delete(username: Username, data_dir: DataDir = None, token_file: TokenFile = None) -> None:
    """Delete a user and their sessions."""
    typer.echo(_manage("delete", data_dir, token_file, username)[0])


def ensure_admin(data_dir: Path) -> str | None:
    """Create user ``admin`` with a random password when no user exists; return that password (else None).

    Raises StoreLocked when the auth service holds the file.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    store = AuthStore.open(data_dir / "auth.duckdb")
    try:
        if store.count_users():
            return None
        password = secrets.token_urlsafe(18)
        AuthService(store=store, hasher=_hasher(), clock=lambda: datetime.now(UTC)).create_user(
            "admin", "admin", password
        )
        return password
    finally:
        store.close()
