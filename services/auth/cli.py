"""``bastion users ...``: manage auth users directly in auth.duckdb (stop the auth service first)."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from services.auth.adapters.store import AuthStore, StoreLocked
from services.auth.domain.hashing import DEFAULT_ROUNDS, Hasher
from services.auth.domain.rules import RuleError
from services.auth.handlers import AuthService, UserError
from shared.runtime.settings import whole_number_env

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


@contextmanager
def _service(data_dir: Path | None) -> Iterator[AuthService]:
    """The auth service on the local file; any rule error becomes a red message and exit code 2."""
    directory = _data_dir(data_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        store = AuthStore.open(directory / "auth.duckdb")
    except (StoreLocked, OSError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        yield AuthService(store=store, hasher=_hasher(), clock=lambda: datetime.now(UTC))
    except (RuleError, UserError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        store.close()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command()
def create(
    username: Username,
    role: Annotated[str, typer.Option("--role", "-r", help="admin, trader or viewer")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a user."""
    with _service(data_dir) as svc:
        user = svc.create_user(username, role, _read_password(password_stdin))
    typer.echo(f"created {user.username} ({user.role})")


@app.command("list")
def list_users(data_dir: DataDir = None) -> None:
    """List users."""
    with _service(data_dir) as svc:
        users = svc.store.users()
    table = Table("username", "role", "enabled")
    for user in users:
        table.add_row(user.username, user.role, "yes" if user.enabled else "no")
    Console().print(table)


@app.command()
def disable(username: Username, data_dir: DataDir = None) -> None:
    """Disable a user; their sessions stop verifying."""
    with _service(data_dir) as svc:
        svc.set_enabled(username, False)
    typer.echo(f"disabled {username.lower()}")


@app.command()
def enable(username: Username, data_dir: DataDir = None) -> None:
    """Enable a user."""
    with _service(data_dir) as svc:
        svc.set_enabled(username, True)
    typer.echo(f"enabled {username.lower()}")


@app.command()
def passwd(
    username: Username,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Set a user's password; their sessions are revoked."""
    with _service(data_dir) as svc:
        svc.set_password(username, _read_password(password_stdin))
    typer.echo(f"password changed for {username.lower()}")


@app.command("set-role")
def set_role(
    username: Username,
    role: Annotated[str, typer.Option("--role", "-r", help="admin, trader or viewer")],
    data_dir: DataDir = None,
) -> None:
    """Change a user's role."""
    with _service(data_dir) as svc:
        svc.set_role(username, role)
    typer.echo(f"{username.lower()} is now {role.lower()}")


@app.command()
def delete(username: Username, data_dir: DataDir = None) -> None:
    """Delete a user and their sessions."""
    with _service(data_dir) as svc:
        svc.delete_user(username)
    typer.echo(f"deleted {username.lower()}")


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
