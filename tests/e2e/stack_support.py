"""Helpers for driving `bastion up` end to end: the subprocess, stream reads, KV reads, dashboard login."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError

from bastion.natsd import free_port
from tests.support.streams import stored_messages

Message = tuple[str, dict[str, Any]]
#: What `bastion up` prints once every service heartbeats (not just "ready": "already in use" contains it).
READY = "ready - press Ctrl-C"


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    try:
        return status.read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class UpProcess:
    """``python -m bastion up`` in its own session, its output collected line by line."""

    def __init__(self, home: Path, sample_bars: int, env: dict[str, str] | None = None) -> None:
        """``env``: BASTION_* variables to start it with (none of the test process's own are passed)."""
        self.home = home
        self.dashboard_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")} | (env or {})
        args = [sys.executable, "-m", "bastion", "up", "--home", str(home), "--nats-port", str(free_port())]
        args += ["--dashboard-port", str(self.dashboard_port), "--sample-bars", str(sample_bars)]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace"))

    def text(self) -> str:
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return "".join(self.output)

    def saw(self, text: str) -> bool:
        seen = text in self.text()
        if self.proc.poll() is not None and not seen:
            raise AssertionError("bastion up exited:\n" + self.text())
        return seen

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.home / "up.json").read_text())
        return state

    def pids(self) -> list[int]:
        """NATS and every child `bastion up` runs now (from its up.json), or [] before it wrote one."""
        try:
            state = self.state()
        except (FileNotFoundError, json.JSONDecodeError):
            return []
        return [p for p in [state.get("nats_pid"), *state.get("children", {}).values()] if p]

    def secret(self, name: str) -> str:
        return (self.home / name).read_text().strip()

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            raise


async def read_stream(js: JetStreamContext, stream: str, subject: str = ">") -> list[Message]:
    """Every message stored in ``stream`` on ``subject``, decoded, in stream order."""
    return [(m.subject, json.loads(m.data)) for m in await stored_messages(js, stream, subject)]


async def stream_count(js: JetStreamContext, stream: str) -> int:
    return int((await js.stream_info(stream)).state.messages)


async def durable_backlog(js: JetStreamContext, streams: list[str]) -> dict[str, int]:
    """Per durable consumer: messages not yet delivered plus delivered but not yet acked."""
    backlog: dict[str, int] = {}
    for stream in streams:
        for info in await js.consumers_info(stream):
            if info.config.durable_name:
                backlog[info.config.durable_name] = (info.num_pending or 0) + (info.num_ack_pending or 0)
    return backlog


async def kv_json(js: JetStreamContext, bucket: str, key: str) -> dict[str, Any] | None:
    kv = await js.key_value(bucket)
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return None
    if not entry.value:
        return None
    value: dict[str, Any] = json.loads(entry.value)
    return value


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def dashboard_login(client: httpx.AsyncClient, username: str, password: str) -> None:
    """Log in through the HTML form (CSRF cookie + hidden field), leaving the session cookie in ``client``."""
    page = await client.get("/login")
    page.raise_for_status()
    found = _CSRF.search(page.text)
    assert found, "no csrf_token field on /login"
    reply = await client.post(
        "/login", data={"csrf_token": found.group(1), "username": username, "password": password}
    )
    assert reply.status_code == 303, (reply.status_code, reply.text[:500])
    assert client.cookies.get("bastion_session"), "login set no session cookie"
