"""``bastion users ...`` on a real auth.duckdb via typer's CliRunner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.auth.adapters.store import AuthStore
from services.auth.cli import app, ensure_admin

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_AUTH_ROUNDS", "1000")


def run(data: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data)], input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_create_list_disable_enable_set_role_passwd_delete(tmp_path: Path) -> None:
    assert (
        run(
            tmp_path,
            "create",
            "--username",
            "Bob",
            "--role",
            "trader",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )[0]
        == 0
    )
    code, out = run(tmp_path, "list")
    assert code == 0
    assert "bob" in out
    assert "trader" in out
    assert run(tmp_path, "disable", "-u", "bob")[0] == 0
    assert run(tmp_path, "enable", "-u", "bob")[0] == 0
    assert run(tmp_path, "set-role", "-u", "bob", "--role", "viewer")[0] == 0
    assert run(tmp_path, "passwd", "-u", "bob", stdin=f"{PASSWORD}x\n{PASSWORD}x\n")[0] == 0
    store = AuthStore.open(tmp_path / "auth.duckdb")
    user = store.user("bob")
    store.close()
    assert user is not None
    assert user.role == "viewer"
    assert user.password_hash.startswith("$pbkdf2-sha256$1000$")
    assert run(tmp_path, "delete", "-u", "bob")[0] == 0
    assert "bob" not in run(tmp_path, "list")[1]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ["create", "-u", "x'; DROP TABLE users;--", "-r", "viewer", "--password-stdin"],
            PASSWORD,
            "username must",
        ),
        (["create", "-u", "carol", "-r", "root", "--password-stdin"], PASSWORD, "role must be one of"),
        (["create", "-u", "carol", "-r", "viewer", "--password-stdin"], "short", "at least 12"),
        (["disable", "-u", "nobody"], None, "no such user"),
    ],
)
def test_bad_input_gives_a_clear_error_and_exit_2(
    tmp_path: Path, args: list[str], stdin: str, message: str
) -> None:
    AuthStore.open(tmp_path / "auth.duckdb").close()  # a home that has its database, without users
    code, out = run(tmp_path, *args, stdin=stdin)
    assert code == 2
    assert message in out
    assert "Traceback" not in out


def test_duplicate_user_is_refused(tmp_path: Path) -> None:
    args = ["create", "-u", "dave", "-r", "viewer", "--password-stdin"]
    assert run(tmp_path, *args, stdin=PASSWORD)[0] == 0
    code, out = run(tmp_path, *args, stdin=PASSWORD)
    assert code == 2
    assert "already exists" in out


def test_locked_database_is_reported_clearly(tmp_path: Path) -> None:
    AuthStore.open(tmp_path / "auth.duckdb").close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,sys; c=duckdb.connect({str(tmp_path / 'auth.duckdb')!r}); "
            "print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        code, out = run(tmp_path, "list")
        assert code == 2
        assert "locked by another process" in out
    finally:
        holder.communicate("")


def test_ensure_admin_creates_admin_once(tmp_path: Path) -> None:
    password = ensure_admin(tmp_path)
    assert password is not None
    assert len(password) >= 12
    assert ensure_admin(tmp_path) is None
    assert "admin" in run(tmp_path, "list")[1]


@pytest.mark.parametrize(
    "args", [("list",), ("disable", "-u", "bob"), ("set-role", "-u", "bob", "--role", "viewer")]
)
def test_a_home_without_users_is_named_and_left_alone(tmp_path: Path, args: tuple[str, ...]) -> None:
    data = tmp_path / "typo-home" / "data"
    code, out = run(data, *args)
    assert code == 2
    assert f"noauthdatabaseat{data / 'auth.duckdb'}" in "".join(out.split())  # rich wraps inside paths
    assert not (tmp_path / "typo-home").exists()  # nothing made in a home that may be a typo
