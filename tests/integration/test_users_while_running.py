"""`bastion users ...` while the auth service runs and holds auth.duckdb: the CLI asks the service on
``ctl.v1.auth.users`` as the operator NATS user, with an admin's session, on the deployed broker config."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from typer.testing import CliRunner

from bastion.natsd import NatsServer
from services.auth.__main__ import make_runner
from services.auth.cli import app as users_app
from shared.contracts import subjects
from shared.contracts.auth import LoginRequest, SessionReply, TokenRequest
from shared.runtime.settings import RuntimeSettings
from tests.support.secured import PASSWORDS, operator_home
from tests.support.streams import stored_messages
from tests.support.wait import eventually

ADMIN, VIEWER, CAROL = "admin-Password-42!", "viewer-Password-42!", "carol-Password-42!"


@pytest.fixture
async def operator(
    secured_server: NatsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[NATS]:
    """The auth service running on ``tmp_path/data`` (an admin and a viewer made on the file first), and an
    operator connection."""
    monkeypatch.setenv("BASTION_AUTH_ROUNDS", "50000")
    data = tmp_path / "data"
    for name, role, password in (("admin1", "admin", ADMIN), ("viewer1", "viewer", VIEWER)):
        args = ["create", "-u", name, "-r", role, "--password-stdin", "--data-dir", str(data)]
        made = CliRunner().invoke(users_app, args, input=password + "\n")
        assert made.exit_code == 0, made.output
    settings = RuntimeSettings(
        service="auth",
        nats_url=secured_server.url,
        nats_user="auth",
        nats_password=PASSWORDS["auth"],
        data_dir=data,
    )
    runner = make_runner(settings)
    task = asyncio.create_task(runner.run())
    nc = await nats.connect(secured_server.url, user="operator", password=PASSWORDS["operator"])

    async def answering() -> bool:
        try:
            await nc.request(subjects.AUTH_VERIFY, TokenRequest.model_validate({"token": "x"}).to_json(), 1)
        except nats.errors.NoRespondersError:
            return False
        return True

    await eventually(answering, what="the auth service answering")
    yield nc
    await nc.close()
    runner.stop.set()
    await task


async def login(nc: NATS, username: str, password: str) -> SessionReply:
    req = LoginRequest.model_validate({"username": username, "password": password})
    return SessionReply.from_json((await nc.request(subjects.AUTH_LOGIN, req.to_json(), timeout=10)).data)


def users(
    home: Path, data: Path, token: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``bastion users ARGS`` in its own process (so the service's DuckDB lock holds), beside ``home``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    env = clean | {"BASTION_HOME": str(home), "BASTION_DATA_DIR": str(data), "BASTION_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "bastion", "users", *args],
        env=env | {"COLUMNS": "200"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_an_admin_manages_users_through_the_running_auth_service(
    operator: NATS, secured_server: NatsServer, tmp_path: Path
) -> None:
    home, data = operator_home(secured_server, tmp_path / "home"), tmp_path / "data"
    admin = (await login(operator, "admin1", ADMIN)).token
    assert admin is not None

    def run(*args: str, stdin: str = "", token: str = admin) -> subprocess.CompletedProcess[str]:
        return users(home, data, token, *args, stdin=stdin)

    made = await asyncio.to_thread(
        run, "create", "-u", "Carol", "-r", "trader", "--password-stdin", stdin=CAROL
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "created carol (trader)"
    assert "the auth service is running (it holds auth.duckdb): asking it" in made.stderr
    carol = await login(operator, "carol", CAROL)  # at once: the running service made her
    assert (carol.ok, carol.role) == (True, "trader")

    listed = await asyncio.to_thread(run, "list")
    assert listed.returncode == 0, listed.stderr
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in listed.stdout.splitlines()
        if "│" in line
    }
    assert rows == {"admin1": "admin", "carol": "trader", "viewer1": "viewer"}

    assert (await asyncio.to_thread(run, "disable", "-u", "carol")).stdout.strip() == "disabled carol"
    verify = TokenRequest.model_validate({"token": carol.token})
    checked = SessionReply.from_json((await operator.request(subjects.AUTH_VERIFY, verify.to_json(), 5)).data)
    assert not checked.ok  # her session stopped verifying with the change

    viewer = (await login(operator, "viewer1", VIEWER)).token
    assert viewer is not None
    refused = await asyncio.to_thread(run, "delete", "-u", "carol", token=viewer)
    assert refused.returncode == 1
    assert "viewer1 is viewer; managing users needs an admin" in refused.stderr
    unknown = await asyncio.to_thread(run, "set-role", "-u", "nobody", "-r", "admin")
    assert (unknown.returncode, unknown.stderr.strip().splitlines()[-1]) == (2, "error: no such user: nobody")
    last = await asyncio.to_thread(run, "disable", "-u", "admin1")
    assert (last.returncode, last.stderr.strip().splitlines()[-1]) == (
        2,
        "error: admin1 is the only enabled admin; disabling them would leave none (create or enable another "
        "admin first)",
    )
    assert (await login(operator, "admin1", ADMIN)).ok
    long = await asyncio.to_thread(run, "set-role", "-u", "carol", "-r", "x" * 40)
    assert (long.returncode, long.stderr.strip().splitlines()[-1]) == (
        2,
        "error: role: String should have at most 16 characters",
    )
    no_token = await asyncio.to_thread(
        run, "passwd", "-u", "carol", "--password-stdin", stdin=CAROL, token=""
    )
    assert no_token.returncode == 2
    assert "give the admin session as --token-file FILE or $BASTION_TOKEN" in no_token.stderr

    audits = [m.data.decode() for m in await stored_messages(operator.jetstream(), "AUDIT", "audit.v1.auth")]
    assert any('"action":"user.create"' in a and "role=trader; by admin1" in a for a in audits)
    assert any('"action":"user.disable"' in a and "by admin1" in a for a in audits)
    assert any('"action":"user.admin"' in a and "delete refused: role viewer" in a for a in audits)
    assert not any(CAROL in a for a in audits)
