"""`bastion up` as a user runs it: NATS + services start, sample bars flow, Ctrl-C leaves no process."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import nats
import pytest

from bastion.natsd import free_port
from tests.support.wait import eventually, wait_until


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


class Up:
    def __init__(self, home: Path) -> None:
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bastion",
                "up",
                "--home",
                str(home),
                "--nats-port",
                str(free_port()),
                "--dashboard-port",
                str(free_port()),
                "--sample-bars",
                "40",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace"))

    def saw(self, text: str) -> bool:
        while not self.lines.empty():
            self.output.append(self.lines.get())
        if self.proc.poll() is not None and not any(text in line for line in self.output):
            raise AssertionError("bastion up exited:\n" + "".join(self.output))
        return any(text in line for line in self.output)


async def test_up_runs_the_platform_loads_sample_bars_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    home = tmp_path / "state"
    up = Up(home)
    try:
        await eventually(lambda: up.saw("ready - press Ctrl-C"), timeout=90, what="bastion up to be ready")
        state = json.loads((home / "up.json").read_text())
        pids = [state["nats_pid"], *state["children"].values()]
        assert "marketdata" in state["children"]
        password = (home / "secrets" / "operator.password").read_text().strip()
        assert (home / "secrets" / "operator.password").stat().st_mode & 0o077 == 0
        nc = await nats.connect(state["nats_url"], user="operator", password=password)
        info = await nc.jetstream().stream_info("MARKETDATA")
        assert info.state.messages == 3 * 40
        await nc.close()
    finally:
        up.proc.send_signal(signal.SIGINT)
        up.proc.wait(60)
    assert up.proc.returncode == 0, "".join(up.output)
    wait_until(lambda: not any(_pid_alive(p) for p in pids), timeout=10, what="every child to exit")
    con = duckdb.connect(str(home / "data" / "marketdata.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM bars").fetchone() == (120,)


async def test_anonymous_connection_to_the_up_broker_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "state"
    up = Up(home)
    try:
        await eventually(lambda: up.saw("ready - press Ctrl-C"), timeout=90, what="bastion up to be ready")
        url = json.loads((home / "up.json").read_text())["nats_url"]
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        with pytest.raises(Exception):
            await nats.connect(
                url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, error_cb=on_error
            )
        assert any("authorization" in e.lower() for e in errors), errors
    finally:
        up.proc.send_signal(signal.SIGINT)
        up.proc.wait(60)
