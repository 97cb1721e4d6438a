"""The auth service as run by ``python -m services.auth`` against a real nats-server."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from services.auth.__main__ import make_runner
from services.auth.cli import ensure_admin
from shared.contracts import subjects
from shared.contracts.auth import AuthAudit, LoginRequest, SessionReply, TokenRequest
from shared.runtime.settings import RuntimeSettings
from tests.support.wait import eventually

ROUNDS = 50_000


async def ask(nc: NATS, subject: str, payload: bytes) -> SessionReply:
    msg = await nc.request(subject, payload, timeout=10)
    return SessionReply.from_json(msg.data)


async def login(nc: NATS, user: str, password: str, addr: str = "10.0.0.1") -> SessionReply:
    req = LoginRequest.model_validate({"username": user, "password": password, "client_addr": addr})
    return await ask(nc, subjects.AUTH_LOGIN, req.to_json())


def token_req(token: str) -> bytes:
    return TokenRequest.model_validate({"token": token}).to_json()


@pytest.fixture
async def admin_password(
    nc: NATS, nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    monkeypatch.setenv("BASTION_AUTH_ROUNDS", str(ROUNDS))
    monkeypatch.setenv("BASTION_AUTH_LOCK_FAILURES", "1000")
    password = ensure_admin(tmp_path / "data")
    assert password is not None
    runner = make_runner(RuntimeSettings(service="auth", nats_url=nats_url, data_dir=tmp_path / "data"))
    task = asyncio.create_task(runner.run())

    async def ready() -> bool:
        try:
            await nc.request(subjects.AUTH_VERIFY, token_req("x"), timeout=1)
        except NoRespondersError:
            return False
        return True

    assert await eventually(ready, what="auth service answering")
    yield password
    runner.stop.set()
    assert await asyncio.wait_for(task, 10) == 0


async def test_login_verify_whoami_logout_round_trip(nc: NATS, admin_password: str) -> None:
    reply = await login(nc, "admin", admin_password)
    assert reply.ok
    assert reply.token is not None
    verified = await ask(nc, subjects.AUTH_VERIFY, token_req(reply.token))
    assert (verified.ok, verified.username, verified.role) == (True, "admin", "admin")
    assert verified.token is None
    assert (await ask(nc, subjects.AUTH_WHOAMI, token_req(reply.token))).username == "admin"
    assert (await ask(nc, subjects.AUTH_LOGOUT, token_req(reply.token))).ok
    assert not (await ask(nc, subjects.AUTH_VERIFY, token_req(reply.token))).ok


async def test_bad_payloads_get_an_error_reply_and_the_service_keeps_serving(
    nc: NATS, admin_password: str
) -> None:
    for payload in (b"{not json", b'{"schema": "bastion.auth.login", "version": "1.0"}', b""):
        reply = await ask(nc, subjects.AUTH_LOGIN, payload)
        assert not reply.ok
        assert reply.error == "bad request"
    assert (await login(nc, "admin", admin_password)).ok


async def test_unknown_user_and_wrong_password_take_the_same_time(nc: NATS, admin_password: str) -> None:
    async def timed(user: str) -> float:
        start = time.perf_counter()
        reply = await login(nc, user, "not the right password")
        assert reply.error == "invalid username or password"
        return time.perf_counter() - start

    await timed("admin")
    unknown, wrong = [], []
    for i in range(9):
        unknown.append(await timed(f"nobody{i}"))
        wrong.append(await timed("admin"))
    # Pairwise: each unknown-user login against the wrong-password login just after it, so both ran in the
    # same phase of a noisy machine (timings here jump between ~25 and ~45 ms for seconds at a time, which
    # can split two medians taken apart). Without the dummy hash an unknown user is ~3x faster.
    gaps = [(a - b) / max(a, b) for a, b in zip(unknown, wrong, strict=True)]
    assert abs(statistics.median(gaps)) < 0.2, (unknown, wrong)


async def test_login_failure_is_published_as_an_audit_event(nc: NATS, admin_password: str) -> None:
    seen: list[AuthAudit] = []

    async def on_msg(msg: Msg) -> None:
        seen.append(AuthAudit.from_json(msg.data))

    await nc.subscribe(subjects.AUDIT_AUTH, cb=on_msg)
    await login(nc, "admin", "not the right password", addr="10.1.2.3")
    await eventually(lambda: any(e.outcome == "failure" for e in seen), what="failure audit")
    assert seen[0].client_addr == "10.1.2.3"
    info = await nc.jetstream().stream_info("AUDIT")
    assert info.state.messages >= 1
