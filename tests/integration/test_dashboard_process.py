"""`python -m services.dashboard` as a process: serves, stops on SIGTERM, refuses bad settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from bastion.natsd import free_port
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]


def env(nats_url: str, tmp_path: Path, port: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    return base | {
        "BASTION_NATS_URL": nats_url,
        "BASTION_HOME": str(tmp_path / "home"),
        "BASTION_DASHBOARD_PORT": port,
        "PYTHONUNBUFFERED": "1",
    }


def test_the_process_serves_and_stops_cleanly_on_sigterm(nats_url: str, tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.dashboard"],
        env=env(nats_url, tmp_path, str(port)),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                return False

        wait_until(up, timeout=20, what="dashboard listening")
        assert httpx.get(f"http://127.0.0.1:{port}/api/overview").status_code == 401
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_a_bad_port_is_a_clear_error_not_a_traceback(nats_url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.dashboard"],
        env=env(nats_url, tmp_path, "eighty"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "BASTION_DASHBOARD_PORT" in done.stderr
    assert "Traceback" not in done.stderr
