"""Helpers for the execution integration tests (no tests here): config files, the service in-process or as
a subprocess, the real auth service, and readers of what landed on the bus."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from nats.aio.client import Client as NATS
from nats.errors import NoRespondersError

from services.execution.__main__ import make_runner
from services.execution.adapters.config_file import load_config
from services.execution.domain.config import RiskLimits
from shared.contracts import subjects
from shared.contracts.auth import LoginRequest, SessionReply, TokenRequest
from shared.contracts.envelope import Event
from shared.runtime.bus import MSG_ID, Bus
from shared.runtime.service import ServiceRunner
from shared.runtime.settings import RuntimeSettings
from tests.support.streams import stored_messages
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
#: Every limit and breaker that can be off, off (as ``null`` in the config file).
OPEN_LIMITS: dict[str, Any] = {k: v for k, v in RiskLimits.off().model_dump(mode="json").items() if v is None}
FREE = {"slippage_bps": 0, "commission_pct": 0, "flat_fee": 0}


def write_config(tmp_path: Path, limits: dict[str, Any] | None = None, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "mode": "paper",
        "initial_cash": 100000,
        "limits": OPEN_LIMITS | (limits or {}),
        "sizing": {"policy": "fixed_qty", "quantity": 10},
        "costs": FREE,
    }
    data |= extra
    path = tmp_path / "execution.yaml"
    path.write_text(yaml.safe_dump({"execution": json.loads(json.dumps(data))}))
    return path


async def ensure_streams(nc: NATS) -> None:
    await Bus(nc, "test").ensure_streams(["MARKETDATA", "SIGNALS", "EXECUTION", "AUDIT"])


class InProcess:
    """The execution service run in this event loop, as ``python -m services.execution`` would."""

    def __init__(self, nats_url: str, data_dir: Path, config: Path) -> None:
        self.settings = RuntimeSettings(service="execution", nats_url=nats_url, data_dir=data_dir)
        self.config = config
        self.runner: ServiceRunner | None = None
        self.task: asyncio.Task[int] | None = None

    async def start(self) -> InProcess:
        self.runner = make_runner(self.settings, load_config(self.config))
        self.task = asyncio.create_task(self.runner.run())
        return self

    async def stop(self) -> None:
        assert self.runner is not None
        assert self.task is not None
        self.runner.stop.set()
        assert await asyncio.wait_for(self.task, 20) == 0


def spawn(nats_url: str, data_dir: Path, config: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "BASTION_NATS_URL": nats_url,
        "BASTION_DATA_DIR": str(data_dir),
        "BASTION_EXECUTION_CONFIG": str(config),
        "BASTION_LOG_LEVEL": "warning",
        "BASTION_HOME": str(data_dir.parent / "home"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "services.execution"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def publish(nc: NATS, events: Sequence[Event]) -> None:
    js = nc.jetstream()
    futures = [
        await js.publish_async(e.subject(), e.to_json(), headers={MSG_ID: str(e.event_id)})  # type: ignore[attr-defined]
        for e in events
    ]
    await asyncio.gather(*futures)


async def read_subject(nc: NATS, stream: str, subject: str) -> list[dict[str, Any]]:
    """Every message stored on ``subject`` (wildcards allowed), decoded."""
    return [json.loads(m.data) for m in await stored_messages(nc.jetstream(), stream, subject)]


async def snapshot(nc: NATS, key: str) -> dict[str, Any] | None:
    try:
        kv = await nc.jetstream().key_value(subjects.SNAPSHOTS_BUCKET)
        entry = await kv.get(key)
    except Exception:  # no bucket or no key yet
        return None
    return json.loads(entry.value) if entry.value else None


async def wait_snapshot(nc: NATS, key: str, pred: Any, what: str, timeout: float = 15) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        value = await snapshot(nc, key)
        return value if value is not None and pred(value) else None

    return await eventually(probe, timeout=timeout, what=what)


class Auth:
    """The real auth service in this event loop (set BASTION_AUTH_ROUNDS low with monkeypatch first)."""

    def __init__(self, nats_url: str, data_dir: Path) -> None:
        self.nats_url = nats_url
        self.data_dir = data_dir
        self.task: asyncio.Task[int] | None = None
        self.runner: ServiceRunner | None = None

    async def start(self, nc: NATS) -> Auth:
        from services.auth.__main__ import make_runner as auth_runner

        self.runner = auth_runner(
            RuntimeSettings(service="auth", nats_url=self.nats_url, data_dir=self.data_dir)
        )
        self.task = asyncio.create_task(self.runner.run())

        async def ready() -> bool:
            try:
                await nc.request(
                    subjects.AUTH_VERIFY, TokenRequest.model_validate({"token": "x"}).to_json(), 1
                )
            except NoRespondersError:
                return False
            return True

        await eventually(ready, what="auth service answering")
        return self

    def create_user(self, username: str, role: str, password: str) -> None:
        """Through ``bastion users create`` on the auth file, before the service starts."""
        from typer.testing import CliRunner

        from services.auth.cli import app as users_app

        args = ["create", "-u", username, "-r", role, "--password-stdin", "--data-dir", str(self.data_dir)]
        result = CliRunner().invoke(users_app, args, input=password + "\n")
        assert result.exit_code == 0, result.output

    async def login(self, nc: NATS, username: str, password: str) -> str:
        req = LoginRequest.model_validate({"username": username, "password": password})
        reply = SessionReply.from_json(
            (await nc.request(subjects.AUTH_LOGIN, req.to_json(), timeout=10)).data
        )
        assert reply.ok, reply
        assert reply.token is not None
        return reply.token

    async def stop(self) -> None:
        assert self.runner is not None
        assert self.task is not None
        self.runner.stop.set()
        await asyncio.wait_for(self.task, 10)
